//! Token group keys (issue 5): the custodian creates the group key and hands
//! it only to other providers whose accepted agreement names the group; a
//! comparator asking for it is refused. Feeds of the same group and epoch
//! then carry equal tokens for equal ID numbers, which is what lets the
//! comparator compare them without seeing the numbers.

use dxmesh_protocol::wire::{Refusal, Request, Response};
use dxmesh_tests::{
    Mesh, NodeProc, RegistryRow, agree, day, edit_config, manual_schedule, raw_request,
    registry_csv, registry_rows, registry_terms, set_custodian,
};
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

fn insured_terms() -> String {
    format!(
        r#"dataset = "insured"
token_group = "registration"
purpose_code = "registration/uninsured-outreach"
purpose = "Who is insured in the province."
not_before = "{from}"
not_after = "{until}"
retention_days = 90
fields = [ {{ name = "id_number", treatment = "token" }}, {{ name = "insurance_type", treatment = "clear" }} ]
rows = [ {{ equals = {{ field = "status", value = "active" }} }} ]
[cycle]
period = "daily"
anchor = "{from}"
window = "P1D"
max_pulls = 2
[disclosure]
fields = []
result_kinds = []
max_records_per_epoch = 0
"#,
        from = day(-1),
        until = day(365)
    )
}

/// Writes the insured persons' export to `path`: every third registry person
/// plus 50 strangers from another province; returns the registry people's IDs.
fn write_insured(path: &Path, rows: &[RegistryRow]) -> BTreeSet<String> {
    let mut insured = String::from("id_number,name,insurance_type,status,since\n");
    let mut insured_ids = BTreeSet::new();
    for r in rows.iter().step_by(3) {
        insured.push_str(&format!(
            "{},{},resident_pension,active,2015-01-01\n",
            r.id, r.name
        ));
        insured_ids.insert(r.id.clone());
    }
    for i in 0..50 {
        let id = dxmesh_tests::make_id("510104", "19700101", i);
        insured.push_str(&format!(
            "{id},外省{i},enterprise_pension,active,2010-01-01\n"
        ));
    }
    std::fs::write(path, insured).unwrap();
    insured_ids
}

/// Publishes at `node` until it succeeds (once the group key has arrived),
/// for at most 20 s.
fn publish_once_the_key_arrives(node: &NodeProc) {
    let start = Instant::now();
    loop {
        let out = node.dx_run(&["publish"]);
        if out.0 {
            assert!(out.1.contains("published insured"), "{}", out.1);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "hr never got the key: {}",
            out.1
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The ID tokens of a pulled feed in `dir`, every chunk verified against
/// its signed manifest.
fn pulled_tokens(dir: &Path) -> BTreeSet<Vec<u8>> {
    let m: dxmesh_protocol::signed::Signed<dxmesh_protocol::feed::Manifest> =
        dxmesh_protocol::codec::decode(&std::fs::read(dir.join("manifest.bin")).unwrap()).unwrap();
    let m = m.verify().unwrap();
    let mut out = BTreeSet::new();
    for i in 0..m.chunks() {
        let (_, bytes) = dxmesh_node::pull::pulls::stored_chunk(dir, i).unwrap();
        let c = m.verify_chunk(i, &bytes).unwrap();
        for r in 0..c.count as usize {
            out.insert(c.id(r).0.to_vec());
        }
    }
    out
}

#[test]
fn the_custodian_hands_the_group_key_to_providers_only_and_tokens_match_across_feeds() {
    let mut mesh = Mesh::new(BIN);
    let ps = mesh.init("ps", "public_security", "provider");
    let hr = mesh.init("hr", "hr", "provider");
    let cmp = mesh.init("cmp", "comparator", "comparator");
    for n in [&ps, &hr, &cmp] {
        manual_schedule(n);
    }
    set_custodian(&ps, "registration", "self");
    set_custodian(&hr, "registration", &ps.peer_id);
    let roster = mesh.sign_roster("roster-v1", None, &[&ps, &hr, &cmp], &[]);
    for n in [&ps, &hr, &cmp] {
        mesh.install(n, &[&roster]);
    }
    // Data: the registry, and insured persons: every third registry person plus strangers.
    let rows = registry_rows(600);
    std::fs::write(mesh.path().join("registry.csv"), registry_csv(&rows)).unwrap();
    let insured_ids = write_insured(&mesh.path().join("insured.csv"), &rows);
    std::fs::write(mesh.path().join("registry.toml"), registry_terms(2, 10)).unwrap();
    std::fs::write(mesh.path().join("insured.toml"), insured_terms()).unwrap();
    mesh.import("ps", "registry", "registry.csv");
    mesh.import("hr", "insured", "insured.csv");

    let mut pc = mesh.start(&cmp);
    pc.pin_port();
    let addr = pc.addr();
    for n in [&ps, &hr] {
        edit_config(
            &n.dir,
            "bootstrap = []",
            &format!("bootstrap = [\"{addr}\"]"),
        );
    }
    let mut pps = mesh.start(&ps);
    let mut phr = mesh.start(&hr);
    for p in [&mut pps, &mut phr] {
        p.wait_for("the rest of the mesh", Duration::from_secs(30), |s| {
            s.connected.len() == 2
        });
    }
    let terms = |name: &str| mesh.path().join(name);
    let (_, a_reg) = agree(
        &mut pc,
        &mut pps,
        &ps.peer_id,
        &terms("registry.toml"),
        "active",
    );
    let (_, a_ins) = agree(
        &mut pc,
        &mut phr,
        &hr.peer_id,
        &terms("insured.toml"),
        "active",
    );

    pps.cli(&["publish"]);
    // hr has no key yet: the first publish asks the custodian and says so.
    let e = phr.cli_fails(&["publish"]);
    assert!(
        e.contains("waiting for the key of token group \"registration\""),
        "{e}"
    );
    publish_once_the_key_arrives(&phr);
    let k_ps = std::fs::read_to_string(ps.dir.join("keys/registration.key")).unwrap();
    let k_hr = std::fs::read_to_string(hr.dir.join("keys/registration.key")).unwrap();
    assert_eq!(k_ps, k_hr);
    for n in [&ps, &hr] {
        let mode = std::fs::metadata(n.dir.join("keys/registration.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(
        !cmp.dir.join("keys").exists(),
        "the comparator holds no keys"
    );
    assert!(phr.log_text().contains("received the token group key"));
    assert!(
        pps.log_text()
            .contains("token group key handed to a provider")
    );

    // The comparator asks for the key with its own (valid) agreement: refused.
    let transcript_hex = {
        let v: serde_json::Value =
            serde_json::from_str(&pc.cli(&["agreement", "show", &a_reg[..12], "--json"])).unwrap();
        v["transcript_hex"].as_str().unwrap().to_string()
    };
    let transcript = dxmesh_protocol::codec::decode(&hex::decode(transcript_hex).unwrap()).unwrap();
    pc.stop();
    let r = raw_request(
        &cmp.dir.join("node.key"),
        &pps.addr(),
        Request::GroupKey {
            group: "registration".into(),
            transcript,
        },
    )
    .unwrap();
    match r {
        Response::Refused {
            reason: Refusal::Key(m),
        } => {
            assert!(
                m.contains("roster role is comparator; only providers may hold token group keys"),
                "{m}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    pps.wait_for("the refusal recorded", Duration::from_secs(10), |s| {
        s.refusals.iter().any(|r| r.reason.contains("group key"))
    });

    // Restart the comparator and pull both feeds: equal IDs have equal tokens.
    let pc = mesh.start(&cmp);
    phr.wait_for("the comparator again", Duration::from_secs(30), |s| {
        s.connected.len() == 2
    });
    pc.cli(&["pull", "--agreement", &a_reg[..12]]);
    pc.cli(&["pull", "--agreement", &a_ins[..12]]);
    let tokens =
        |agreement: &str| pulled_tokens(&cmp.dir.join("data/pulls").join(agreement).join("1"));
    let reg = tokens(&a_reg);
    let ins = tokens(&a_ins);
    let expected = rows
        .iter()
        .filter(|r| r.in_scope() && insured_ids.contains(&r.id))
        .count();
    assert_eq!(reg.intersection(&ins).count(), expected);
    assert_eq!(ins.len(), insured_ids.len() + 50);
}
