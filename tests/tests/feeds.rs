//! Datasets and feeds across real nodes (issue 5): import with quarantine,
//! publish, a verified pull, disclosure, and a scan proving the comparator
//! holds none of the provider's plaintext identifiers, names or addresses.

use dxmesh_tests::{
    Mesh, NodeDir, NodeProc, edit_config, field, manual_schedule, registry_csv, registry_rows,
    registry_terms, scan_for, set_custodian,
};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

pub struct Setup {
    pub mesh: Mesh,
    pub ps: NodeDir,
    pub cmp: NodeDir,
    pub pps: NodeProc,
    pub pcmp: NodeProc,
    pub agreement: String,
}

/// Public security (provider, custodian of `registration`) and the
/// comparator, with the registry imported and an agreement made from `terms`.
pub fn setup(rows: usize, terms: &str) -> (Setup, Vec<dxmesh_tests::RegistryRow>) {
    let mut mesh = Mesh::new(BIN);
    let ps = mesh.init("ps", "public_security", "provider");
    let cmp = mesh.init("cmp", "comparator", "comparator");
    set_custodian(&ps, "registration", "self");
    manual_schedule(&ps);
    manual_schedule(&cmp);
    let roster = mesh.sign_roster("roster-v1", None, &[&ps, &cmp], &[]);
    mesh.install(&ps, &[&roster]);
    mesh.install(&cmp, &[&roster]);
    let data = registry_rows(rows);
    std::fs::write(mesh.path().join("registry.csv"), registry_csv(&data)).unwrap();
    std::fs::write(mesh.path().join("terms.toml"), terms).unwrap();
    let out = mesh.dx.ok(
        mesh.path(),
        &[
            "dataset",
            "import",
            "--dir",
            "ps",
            "--dataset",
            "registry",
            "--file",
            "registry.csv",
        ],
    );
    assert!(
        out.contains(&format!("rows read:           {rows}")),
        "{out}"
    );
    let pcmp = mesh.start(&cmp);
    pcmp.pin_port();
    edit_config(
        &ps.dir,
        "bootstrap = []",
        &format!("bootstrap = [\"{}\"]", pcmp.addr()),
    );
    let mut pps = mesh.start(&ps);
    pps.wait_for("the comparator", Duration::from_secs(30), |s| {
        s.connected.len() == 1
    });
    let terms_path = mesh.path().join("terms.toml");
    let out = pcmp.cli(&[
        "agreement",
        "propose",
        "--to",
        &ps.peer_id,
        "--terms",
        terms_path.to_str().unwrap(),
    ]);
    let thread = field(&out, "thread");
    let agreement = field(&out, "agreement");
    pps.wait_agreement(&thread, "proposed", 1);
    pps.cli(&["agreement", "accept", &thread[..12]]);
    let mut pcmp = pcmp;
    pcmp.wait_agreement(&thread, "active", 2);
    (
        Setup {
            mesh,
            ps,
            cmp,
            pps,
            pcmp,
            agreement,
        },
        data,
    )
}

#[test]
fn import_publish_pull_disclose_and_no_raw_copy_at_the_comparator() {
    let (s, rows) = setup(3000, &registry_terms(2, 100));
    let expected = rows.iter().filter(|r| r.in_scope()).count();
    let out = s.pps.cli(&["publish"]);
    assert!(
        out.contains(&format!("{expected} records")),
        "expected {expected} in-scope records: {out}"
    );
    let out = s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    assert!(
        out.contains(&format!("{expected} records")) && out.contains("every chunk verified"),
        "{out}"
    );
    // Disclosure of the first 10 tokens: the provider resolves them to records.
    let disclosed = s.mesh.path().join("disclosed.csv");
    let out = s.pcmp.cli(&[
        "disclose",
        "--agreement",
        &s.agreement[..12],
        "--kind",
        "uninsured",
        "--fields",
        "id_number,name,address",
        "--first",
        "10",
        "--out",
        disclosed.to_str().unwrap(),
    ]);
    assert!(out.contains("disclosed 10 records"), "{out}");
    let text = std::fs::read_to_string(&disclosed).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "id_number,name,address");
    assert_eq!(lines.len(), 11);
    for line in &lines[1..] {
        let id = line.split(',').next().unwrap();
        let row = rows
            .iter()
            .find(|r| r.id == id)
            .expect("a disclosed ID is a registry ID");
        assert!(row.in_scope());
        assert_eq!(*line, format!("{},{},{}", row.id, row.name, row.address));
    }
    // Nothing under the comparator's directory (state, pulled chunks, logs)
    // holds a plaintext ID number (normalised or raw), name or address.
    let mut needles = Vec::new();
    for r in &rows {
        needles.push(r.id.clone());
        needles.push(r.raw_id.trim().to_string());
        needles.push(r.name.clone());
        needles.push(r.address.clone());
    }
    let hits = scan_for(&s.cmp.dir, &needles);
    assert!(
        hits.is_empty(),
        "raw data found at the comparator: {:?}",
        &hits[..hits.len().min(5)]
    );
    // The provider does hold its own data (the scan can find things).
    assert!(!scan_for(&s.ps.dir, &needles[..4]).is_empty());
}
