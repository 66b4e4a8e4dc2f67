//! Token group keys (issues 5 and 15): the custodian creates the group key
//! and hands it only to other providers whose accepted agreement names the
//! group for the group's consumer: the consumer of the custodian's own
//! agreement in it (for any purpose there). A comparator or ministry asking
//! is refused, and so is a provider whose agreement names another consumer;
//! every hand-over and refusal is in the custodian's audit log.
//! Feeds of the same group and epoch then carry equal tokens for equal ID
//! numbers, which is what lets the comparator compare them without seeing
//! the numbers.

use dxmesh_protocol::wire::{Refusal, Request, Response};
use dxmesh_tests::{
    Mesh, NodeDir, NodeProc, RegistryRow, agree, day, edit_config, manual_schedule, raw_request,
    registry_csv, registry_rows, registry_terms, set_custodian,
};
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

fn insured_terms() -> String {
    insured_terms_for("registration/uninsured-outreach")
}

/// The insured persons' feed in group `registration`, for `purpose_code`.
fn insured_terms_for(purpose_code: &str) -> String {
    format!(
        r#"dataset = "insured"
token_group = "registration"
purpose_code = "{purpose_code}"
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

/// A mesh of the nodes named (of `ps`, `hr`, `cmp`, `min`), on a manual
/// schedule, with one roster of them all: public security is the custodian
/// of `registration`, hr asks it for the key.
fn key_mesh<const N: usize>(names: [&str; N]) -> (Mesh, [NodeDir; N]) {
    let mut mesh = Mesh::new(BIN);
    let nodes = names.map(|name| {
        let (department, role) = match name {
            "ps" => ("public_security", "provider"),
            "hr" => ("hr", "provider"),
            "cmp" => ("comparator", "comparator"),
            _ => ("ministry", "ministry"),
        };
        let n = mesh.init(name, department, role);
        manual_schedule(&n);
        n
    });
    let find = |name: &str| nodes.iter().find(|n| n.dir.ends_with(name));
    if let (Some(ps), Some(hr)) = (find("ps"), find("hr")) {
        set_custodian(ps, "registration", "self");
        set_custodian(hr, "registration", &ps.peer_id);
    }
    let members: Vec<&NodeDir> = nodes.iter().collect();
    let roster = mesh.sign_roster("roster-v1", None, &members, &[]);
    for n in &nodes {
        mesh.install(n, &[&roster]);
    }
    (mesh, nodes)
}

#[test]
fn the_custodian_hands_the_group_key_to_providers_only_and_tokens_match_across_feeds() {
    let (mesh, [ps, hr, cmp]) = key_mesh(["ps", "hr", "cmp"]);
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

/// The signed transcript of `agreement` as `node` holds it.
fn transcript_of(
    node: &NodeProc,
    agreement: &str,
) -> Vec<dxmesh_protocol::signed::Signed<dxmesh_protocol::agreement::Step>> {
    let v: serde_json::Value =
        serde_json::from_str(&node.cli(&["agreement", "show", &agreement[..12], "--json"]))
            .unwrap();
    let hex_text = v["transcript_hex"].as_str().unwrap();
    dxmesh_protocol::codec::decode(&hex::decode(hex_text).unwrap()).unwrap()
}

/// The custodian's audit log entries (`kind`, `event`), from an exported bundle.
fn audit_entries(mesh: &Mesh, node: &NodeProc, name: &str) -> Vec<(String, String)> {
    let bundle = mesh.path().join(name);
    node.cli(&["audit", "export", "--out", bundle.to_str().unwrap()]);
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("entries.json")).unwrap())
            .unwrap();
    entries
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["event"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Starts the comparator first (on a fixed port) and then `others`
/// bootstrapping from it; waits until every node sees all the others.
fn start_all(mesh: &Mesh, cmp: &NodeDir, others: &[&NodeDir]) -> (NodeProc, Vec<NodeProc>) {
    let pc = mesh.start(cmp);
    pc.pin_port();
    let addr = pc.addr();
    for n in others {
        edit_config(
            &n.dir,
            "bootstrap = []",
            &format!("bootstrap = [\"{addr}\"]"),
        );
    }
    let mut procs: Vec<NodeProc> = others.iter().map(|n| mesh.start(n)).collect();
    for p in &mut procs {
        p.wait_for("the rest of the mesh", Duration::from_secs(30), |s| {
            s.connected.len() == others.len()
        });
    }
    (pc, procs)
}

#[test]
fn a_provider_with_the_groups_consumer_gets_the_key_and_the_custodian_logs_it() {
    let (mesh, [ps, hr, cmp]) = key_mesh(["ps", "hr", "cmp"]);
    std::fs::write(mesh.path().join("registry.toml"), registry_terms(1, 0)).unwrap();
    std::fs::write(
        mesh.path().join("insured.toml"),
        insured_terms_for("registration/deceased-check"),
    )
    .unwrap();
    let (mut pc, mut procs) = start_all(&mesh, &cmp, &[&ps, &hr]);
    let [pps, phr] = &mut procs[..] else {
        unreachable!()
    };
    // The group's purpose: the custodian's own agreement with the comparator.
    agree(
        &mut pc,
        pps,
        &ps.peer_id,
        &mesh.path().join("registry.toml"),
        "active",
    );
    // hr's agreement: the same consumer, for another purpose.
    agree(
        &mut pc,
        phr,
        &hr.peer_id,
        &mesh.path().join("insured.toml"),
        "active",
    );
    let e = phr.cli_fails(&["publish"]);
    assert!(
        e.contains("waiting for the key of token group \"registration\""),
        "{e}"
    );
    let key_file = hr.dir.join("keys/registration.key");
    let start = Instant::now();
    while !key_file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "hr never got the key; custodian log:\n{}",
            pps.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap(),
        std::fs::read_to_string(ps.dir.join("keys/registration.key")).unwrap()
    );
    assert!(phr.log_text().contains("received the token group key"));
    // The custodian's audit log has the hand-over, to hr, and no refusal.
    let entries = audit_entries(&mesh, pps, "bundle-ps");
    let handed: Vec<&String> = entries
        .iter()
        .filter(|(kind, _)| kind == "key_distributed")
        .map(|(_, event)| event)
        .collect();
    assert_eq!(handed.len(), 1, "{entries:?}");
    assert!(
        handed[0].contains("\"registration\"") && handed[0].contains(&hr.peer_id),
        "{}",
        handed[0]
    );
    assert!(
        !entries
            .iter()
            .any(|(kind, event)| kind == "peer_refused" && event.contains("group key")),
        "{entries:?}"
    );
    assert!(
        !pps.status()
            .refusals
            .iter()
            .any(|r| r.reason.contains("group key"))
    );
}

#[test]
fn a_provider_whose_agreement_names_another_consumer_is_refused_and_recorded() {
    let (mesh, [ps, hr, cmp, min]) = key_mesh(["ps", "hr", "cmp", "min"]);
    let file = |name: &str, text: String| {
        let path = mesh.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let registry = file("registry.toml", registry_terms(1, 0));
    let outreach = file("outreach.toml", insured_terms());
    let (mut pc, procs) = start_all(&mesh, &cmp, &[&ps, &hr, &min]);
    let [mut pps, mut phr, mut pmin] = <[NodeProc; 3]>::try_from(procs).ok().unwrap();
    // hr's agreement in the group names the ministry as its consumer.
    let (_, a_ministry) = agree(&mut pmin, &mut phr, &hr.peer_id, &outreach, "active");
    let t_ministry = transcript_of(&phr, &a_ministry);

    // The custodian has no agreement of its own in the group yet: it hands
    // out no key at all.
    let e = phr.cli_fails(&["publish"]);
    assert!(
        e.contains("waiting for the key of token group \"registration\""),
        "{e}"
    );
    let no_purpose = "group key for \"registration\": group key refused: the custodian has no agreement in group \"registration\" that defines its purpose";
    pps.wait_for("the refusal recorded", Duration::from_secs(10), |s| {
        s.refusals.iter().any(|r| r.reason == no_purpose)
    });
    let refused_at_hr = Instant::now();
    while !phr
        .log_text()
        .contains("the custodian refused our key request")
    {
        assert!(refused_at_hr.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(phr.stop());
    assert!(pmin.stop());

    // Now the group's purpose is the custodian's registry feed to the comparator.
    agree(&mut pc, &mut pps, &ps.peer_id, &registry, "active");
    let ask = |key_node: &NodeDir, transcript| match raw_request(
        &key_node.dir.join("node.key"),
        &pps.addr(),
        Request::GroupKey {
            group: "registration".into(),
            transcript,
        },
    )
    .unwrap()
    {
        Response::Refused {
            reason: Refusal::Key(m),
        } => m,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let other_consumer = format!(
        "group key refused: the agreement's consumer ministry ({}) is not the consumer of group \"registration\" (comparator ({}))",
        min.peer_id, cmp.peer_id
    );
    assert_eq!(ask(&hr, t_ministry.clone()), other_consumer);
    // The ministry itself, with its agreement of the group's purpose.
    let m = ask(&min, t_ministry);
    assert!(
        m.contains("roster role is ministry; only providers may hold token group keys"),
        "{m}"
    );

    // Each refusal is in the custodian's status and audit log; no key left it.
    let status = pps.status();
    let reason = format!("group key for \"registration\": {other_consumer}");
    assert!(
        status
            .refusals
            .iter()
            .any(|r| r.reason == reason && r.peer_id.as_deref() == Some(hr.peer_id.as_str())),
        "{reason} not in {:?}",
        status.refusals
    );
    let entries = audit_entries(&mesh, &pps, "bundle-ps");
    let refusals: Vec<&String> = entries
        .iter()
        .filter(|(kind, event)| kind == "peer_refused" && event.contains("group key"))
        .map(|(_, event)| event)
        .collect();
    assert_eq!(refusals.len(), 3, "{entries:?}");
    for needle in [
        "defines its purpose",
        "is not the consumer of group",
        "roster role is ministry",
    ] {
        assert!(
            refusals.iter().any(|e| e.contains(needle)),
            "{needle} not in {refusals:?}"
        );
    }
    assert!(
        !entries.iter().any(|(kind, _)| kind == "key_distributed"),
        "{entries:?}"
    );
    assert!(!hr.dir.join("keys").exists(), "hr holds no key");
}

/// A provider refused a group key (the custodian had no agreement in the
/// group yet) does not ask again on its own; once the custodian's agreement
/// is in place, the operator's next `dxmesh publish` asks again and gets it.
#[test]
fn after_a_refusal_the_next_publish_asks_the_custodian_again() {
    let (mesh, [ps, hr, cmp]) = key_mesh(["ps", "hr", "cmp"]);
    std::fs::write(mesh.path().join("registry.toml"), registry_terms(1, 0)).unwrap();
    std::fs::write(mesh.path().join("insured.toml"), insured_terms()).unwrap();
    let (mut pc, mut procs) = start_all(&mesh, &cmp, &[&ps, &hr]);
    let [pps, phr] = &mut procs[..] else {
        unreachable!()
    };
    agree(
        &mut pc,
        phr,
        &hr.peer_id,
        &mesh.path().join("insured.toml"),
        "active",
    );
    let e = phr.cli_fails(&["publish"]);
    assert!(e.contains("waiting for the key"), "{e}");
    let start = Instant::now();
    while !phr
        .log_text()
        .contains("the custodian refused our key request")
    {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(100));
    }
    // The custodian's own agreement defines the group's consumer now.
    agree(
        &mut pc,
        pps,
        &ps.peer_id,
        &mesh.path().join("registry.toml"),
        "active",
    );
    let key_file = hr.dir.join("keys/registration.key");
    assert!(!key_file.exists());
    let e = phr.cli_fails(&["publish"]);
    assert!(e.contains("waiting for the key"), "{e}");
    let start = Instant::now();
    while !key_file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "hr never got the key; custodian log:\n{}",
            pps.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
