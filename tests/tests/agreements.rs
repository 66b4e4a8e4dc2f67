//! Sharing agreements between real nodes (issue 4): negotiation with a
//! counter-offer, suspension and termination, identical signed transcripts
//! on both sides, offline verification of an export and detection of a
//! tampered one, and convergence after a node is killed between a message
//! and its answer.

use dxmesh_tests::{Mesh, NodeDir, NodeProc, edit_config, field, registry_terms};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

struct Pair {
    mesh: Mesh,
    provider: NodeDir,
    consumer: NodeDir,
}

/// A provider (public security) and the comparator; the provider dials the
/// comparator, so a restarted provider finds it again.
fn pair() -> Pair {
    let mut mesh = Mesh::new(BIN);
    let provider = mesh.init("ps", "public_security", "provider");
    let consumer = mesh.init("cmp", "comparator", "comparator");
    let roster = mesh.sign_roster("roster-v1", None, &[&provider, &consumer], &[]);
    mesh.install(&provider, &[&roster]);
    mesh.install(&consumer, &[&roster]);
    std::fs::write(mesh.path().join("terms.toml"), registry_terms(2, 100)).unwrap();
    std::fs::write(mesh.path().join("counter.toml"), registry_terms(1, 100)).unwrap();
    Pair {
        mesh,
        provider,
        consumer,
    }
}

fn start_consumer(p: &Pair) -> NodeProc {
    let c = p.mesh.start(&p.consumer);
    c.pin_port();
    c
}

fn start_provider(p: &Pair, consumer: &NodeProc, env: &[(&str, &str)]) -> NodeProc {
    let addr = consumer.addr();
    let cfg = std::fs::read_to_string(p.provider.dir.join("config.toml")).unwrap();
    if cfg.contains("bootstrap = []") {
        edit_config(
            &p.provider.dir,
            "bootstrap = []",
            &format!("bootstrap = [\"{addr}\"]"),
        );
    }
    let mut pp = NodeProc::start_with_env(&p.mesh.dx, &p.provider, env);
    pp.wait_for("the comparator", Duration::from_secs(30), |s| {
        s.connected.len() == 1
    });
    pp
}

fn path(p: &Pair, f: &str) -> String {
    p.mesh.path().join(f).to_str().unwrap().to_string()
}

#[test]
fn negotiation_with_a_counter_offer_gives_both_sides_the_same_signed_transcript() {
    let p = pair();
    let mut c = start_consumer(&p);
    let mut pr = start_provider(&p, &c, &[]);
    // The comparator proposes.
    let out = c.cli(&[
        "agreement",
        "propose",
        "--to",
        &p.provider.peer_id,
        "--terms",
        &path(&p, "terms.toml"),
    ]);
    let thread = field(&out, "thread");
    assert!(out.contains("status:    proposed"), "{out}");
    pr.wait_agreement(&thread, "proposed", 1);
    // The provider counters with one pull per epoch instead of two.
    let out = pr.cli(&[
        "agreement",
        "counter",
        &thread[..12],
        "--terms",
        &path(&p, "counter.toml"),
    ]);
    assert!(out.contains("countered"), "{out}");
    c.wait_agreement(&thread, "countered", 2);
    // The comparator cannot accept its own offer twice, but accepts the counter.
    let out = c.cli(&["agreement", "accept", &thread[..12]]);
    assert!(
        out.contains("status:    active") && out.contains("recorded by the provider"),
        "{out}"
    );
    pr.wait_agreement(&thread, "active", 3);
    // Both hold the same signed transcript.
    let show_p = pr.cli(&["agreement", "show", &thread, "--json"]);
    let show_c = c.cli(&["agreement", "show", &thread, "--json"]);
    let jp: serde_json::Value = serde_json::from_str(&show_p).unwrap();
    let jc: serde_json::Value = serde_json::from_str(&show_c).unwrap();
    assert_eq!(jp["transcript_hex"], jc["transcript_hex"]);
    assert!(jp["terms_toml"].as_str().unwrap().contains("max_pulls = 1"));
    let text = pr.cli(&["agreement", "show", &thread]);
    assert!(
        text.contains("#0")
            && text.contains("propose terms")
            && text.contains("#2")
            && text.contains("accept"),
        "{text}"
    );
    assert!(
        text.contains("comparator (") && text.contains("public_security ("),
        "{text}"
    );
    // Export and verify offline; a tampered copy fails.
    let export = path(&p, "agreement.dxt");
    c.cli(&["agreement", "export", &thread, "--out", &export]);
    let ok = p
        .mesh
        .dx
        .ok(p.mesh.path(), &["agreement", "verify", &export]);
    assert!(
        ok.contains("OK: 3 steps") && ok.contains("Accepted"),
        "{ok}"
    );
    // One bit of the last step's signature (the file's last bytes): the
    // transcript still decodes, and the signature check refuses it.
    let mut bytes = std::fs::read(&export).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(mesh_path(&p, "tampered.dxt"), &bytes).unwrap();
    let e = p.mesh.dx.fails(
        p.mesh.path(),
        &["agreement", "verify", &path(&p, "tampered.dxt")],
    );
    assert!(
        e.contains("tampered.dxt")
            && e.contains("step 2")
            && e.to_lowercase().contains("signature"),
        "{e}"
    );
    // Accepting again is refused by the state machine, with the reason.
    let e = c.cli_fails(&["agreement", "accept", &thread[..12]]);
    assert!(e.contains("cannot accept"), "{e}");
}

fn mesh_path(p: &Pair, f: &str) -> std::path::PathBuf {
    p.mesh.path().join(f)
}

#[test]
fn suspend_resume_and_terminate_reach_both_sides() {
    let p = pair();
    let mut c = start_consumer(&p);
    let mut pr = start_provider(&p, &c, &[]);
    let out = pr.cli(&[
        "agreement",
        "propose",
        "--to",
        &p.consumer.peer_id,
        "--terms",
        &path(&p, "terms.toml"),
    ]);
    let thread = field(&out, "thread");
    assert!(out.contains("notified"), "{out}");
    c.wait_agreement(&thread, "proposed", 1);
    c.cli(&["agreement", "accept", &thread[..12]]);
    pr.wait_agreement(&thread, "active", 2);
    pr.cli(&[
        "agreement",
        "suspend",
        &thread[..12],
        "--reason",
        "security incident",
    ]);
    c.wait_agreement(&thread, "suspended", 3);
    let e = c.cli_fails(&["agreement", "resume", &thread[..12]]);
    assert!(
        e.contains("only the party that suspended may resume"),
        "{e}"
    );
    pr.cli(&["agreement", "resume", &thread[..12]]);
    c.wait_agreement(&thread, "active", 4);
    c.cli(&[
        "agreement",
        "terminate",
        &thread[..12],
        "--reason",
        "replaced",
    ]);
    pr.wait_agreement(&thread, "terminated", 5);
    c.wait_agreement(&thread, "terminated", 5);
    let e = pr.cli_fails(&["agreement", "resume", &thread[..12]]);
    assert!(e.contains("Terminated"), "{e}");
}

#[test]
fn a_provider_killed_between_storing_a_step_and_answering_converges_after_restart() {
    let p = pair();
    let mut c = start_consumer(&p);
    let mut pr = start_provider(&p, &c, &[("DXMESH_FAILPOINTS", "agreement-step-persisted")]);
    // The proposal reaches the provider, which stores it and dies before answering.
    let e = c.cli_fails(&[
        "agreement",
        "propose",
        "--to",
        &p.provider.peer_id,
        "--terms",
        &path(&p, "terms.toml"),
    ]);
    assert!(
        e.contains("did not answer") || e.contains("queued"),
        "{e}\n{}",
        c.log_text()
    );
    assert!(
        pr.wait_exit(Duration::from_secs(10)),
        "the failpoint aborted the provider"
    );
    drop(pr);
    let list = c.agreements();
    assert!(
        list.is_empty(),
        "the comparator has not recorded an unconfirmed proposal: {list:?}"
    );
    // Restarted, the provider has the proposal; on reconnection the comparator adopts it.
    let mut pr = start_provider(&p, &c, &[]);
    let threads = pr.agreements();
    assert_eq!(threads.len(), 1, "{threads:?}");
    let thread = threads[0]["thread"].as_str().unwrap().to_string();
    c.wait_agreement(&thread, "proposed", 1);
    pr.wait_agreement(&thread, "proposed", 1);
}

#[test]
fn a_consumer_killed_before_processing_the_answer_converges_after_restart() {
    let p = pair();
    let mut c = start_consumer(&p);
    let mut pr = start_provider(&p, &c, &[]);
    let out = pr.cli(&[
        "agreement",
        "propose",
        "--to",
        &p.consumer.peer_id,
        "--terms",
        &path(&p, "terms.toml"),
    ]);
    let thread = field(&out, "thread");
    c.wait_agreement(&thread, "proposed", 1);
    // Restart the comparator with a crash point right after the provider's answer arrives.
    assert!(c.stop());
    let mut c = NodeProc::start_with_env(
        &p.mesh.dx,
        &p.consumer,
        &[("DXMESH_FAILPOINTS", "agreement-answer-received")],
    );
    pr.wait_for("the comparator again", Duration::from_secs(30), |s| {
        s.connected.len() == 1
    });
    c.wait_for("the provider", Duration::from_secs(30), |s| {
        s.connected.len() == 1
    });
    let _ = c.cli_fails(&["agreement", "accept", &thread[..12]]);
    assert!(
        c.wait_exit(Duration::from_secs(10)),
        "the failpoint aborted the comparator"
    );
    drop(c);
    // The provider recorded the acceptance; the comparator catches up when it returns.
    pr.wait_agreement(&thread, "active", 2);
    let mut c = p.mesh.start(&p.consumer);
    c.wait_agreement(&thread, "active", 2);
    let a = pr.cli(&["agreement", "show", &thread, "--json"]);
    let b = c.cli(&["agreement", "show", &thread, "--json"]);
    let ja: serde_json::Value = serde_json::from_str(&a).unwrap();
    let jb: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(ja["transcript_hex"], jb["transcript_hex"]);
}
