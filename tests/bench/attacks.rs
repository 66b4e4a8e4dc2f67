//! Attacks on a running node, measured from outside (issue 26). One node
//! (public security: provider, custodian of the token group
//! `registration`) faces, in turn:
//!
//! 1. **frames**: a member opening 30 control streams on each of the 4
//!    connections it may hold, each announcing a 15 MiB disclosure frame
//!    and sending 8 MiB of it, held open;
//! 2. **group keys**: a provider member sending 200 group key requests at
//!    once (its whole burst), each with a transcript of 1,000 validly
//!    signed steps (its real agreement, then suspend/resume steps it
//!    signs itself), which the custodian must replay before refusing;
//! 3. **logins**: 150 parallel console logins under names that do not
//!    exist.
//!
//! For each it prints the node's peak memory above idle (`VmHWM` after the
//! attack minus `VmRSS` before the first one), the time `dxmesh status`
//! takes during the attack (median and worst of the samples, each a whole
//! `dxmesh status --json` process, as an operator runs it), and whether
//! another member is served right after. Targets: under 256 MiB above idle,
//! `status` under 100 ms.
//!
//! Run: `cargo bench -p dxmesh-tests --bench attacks`. Figures go to
//! docs/benchmarks.md as printed.

use dxmesh_protocol::agreement::{Action, Negotiation, Step, sign_step};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::wire::{CONTROL_PROTOCOL, MAX_CONTROL_FRAME, Request, Response};
use dxmesh_tests::{
    Mesh, NodeProc, agree, hold_streams, manual_schedule, raw_request, raw_requests,
    registry_terms, set_custodian,
};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

fn proc_kib(pid: u32, field: &str) -> u64 {
    dxmesh_tests::bench::status_kib(&pid.to_string(), field)
}

/// Samples `dxmesh status` while `running` says the attack goes on (at
/// least three samples); returns (median, worst) in milliseconds.
fn status_latency(node: &NodeProc, running: impl Fn() -> bool) -> (u128, u128) {
    let mut samples = Vec::new();
    while running() || samples.len() < 3 {
        let t = Instant::now();
        assert!(
            node.try_status().is_some(),
            "the node did not answer status"
        );
        samples.push(t.elapsed().as_millis());
        std::thread::sleep(Duration::from_millis(50));
    }
    samples.sort();
    (samples[samples.len() / 2], samples[samples.len() - 1])
}

fn report(name: &str, node: &NodeProc, idle_kib: u64, latency: (u128, u128), served: bool) {
    let peak = proc_kib(node.pid(), "VmHWM:");
    println!(
        "{name:<12} peak above idle {:>5} MiB   status median {:>4} ms, worst {:>4} ms   another member served: {served}",
        peak.saturating_sub(idle_kib) / 1024,
        latency.0,
        latency.1
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` support
    }
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
    let mut pcmp = mesh.start(&cmp);
    let bootstrap = format!("bootstrap = [\"{}\"]", pcmp.addr());
    for n in [&ps, &hr] {
        dxmesh_tests::edit_config(&n.dir, "bootstrap = []", &bootstrap);
    }
    let node = mesh.start(&ps);
    let mut phr = mesh.start(&hr);
    let terms = mesh.path().join("terms.toml");
    std::fs::write(&terms, registry_terms(2, 10)).unwrap();
    pcmp.wait_for("hr connected", Duration::from_secs(30), |s| {
        s.connected.iter().any(|p| p.peer_id == hr.peer_id)
    });
    let (_, agreement) = agree(&mut pcmp, &mut phr, &hr.peer_id, &terms, "active");
    let v: serde_json::Value =
        serde_json::from_str(&phr.cli(&["agreement", "show", &agreement[..12], "--json"])).unwrap();
    let mut transcript: Vec<Signed<Step>> = dxmesh_protocol::codec::decode(
        &hex::decode(v["transcript_hex"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert!(phr.stop());
    let hr_identity = dxmesh_node::base::keyfile::read_identity(&hr.dir.join("node.key")).unwrap();
    let mut n = Negotiation::replay(&transcript).unwrap();
    let at = dxmesh_protocol::time::Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    );
    while transcript.len() < dxmesh_protocol::agreement::MAX_TRANSCRIPT_STEPS {
        let action = if n.phase == dxmesh_protocol::agreement::Phase::Suspended {
            Action::Resume
        } else {
            Action::Suspend {
                reason: "bench".into(),
            }
        };
        let step = sign_step(&hr_identity, Some(&n), at, action).unwrap();
        n.apply(&step).unwrap();
        transcript.push(step);
    }
    let addr = node.addr();
    let idle = proc_kib(node.pid(), "VmRSS:");
    println!(
        "node idle at {} MiB; transcript of {} steps",
        idle / 1024,
        transcript.len()
    );
    let cmp_key = cmp.dir.join("node.key");
    let other_served = || {
        matches!(
            raw_request(&cmp_key, &addr, Request::Peers),
            Ok(Response::Peers { .. })
        )
    };
    let attacker = hr.dir.join("node.key");
    frames(&node, &attacker, idle, &other_served);
    group_keys(&node, &attacker, transcript, idle, &other_served);
    logins(&node, &ps.dir.join("console/cert.pem"), idle, &other_served);
    assert!(node.stop());
    assert!(pcmp.stop());
}

/// Attack 1: half-sent largest frames on every stream and connection.
fn frames(node: &NodeProc, attacker: &Path, idle: u64, other_served: &dyn Fn() -> bool) {
    let addr = node.addr();
    let mut frame = (MAX_CONTROL_FRAME as u32).to_be_bytes().to_vec();
    frame.push(6);
    frame.resize(8 * 1024 * 1024, 0);
    let holders: Vec<_> = (0..4)
        .map(|_| hold_streams(attacker, &addr, CONTROL_PROTOCOL, 30, frame.clone()).unwrap())
        .collect();
    let started = Instant::now();
    let latency = status_latency(node, || {
        started.elapsed() < Duration::from_secs(5)
            || holders.iter().any(|h| h.written() + h.ended() < 30)
    });
    report("frames", node, idle, latency, other_served());
    for h in holders {
        h.release().unwrap();
    }
}

/// Attack 2: a burst of group key requests with the longest transcripts.
fn group_keys(
    node: &NodeProc,
    attacker: &Path,
    transcript: Vec<Signed<Step>>,
    idle: u64,
    other_served: &dyn Fn() -> bool,
) {
    let addr = node.addr();
    let request = Request::GroupKey {
        group: "registration".into(),
        transcript,
    };
    // Four connections of 50 requests each: the member's whole burst,
    // within the streams a connection may hold.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let (key, addr, done) = (attacker.to_path_buf(), addr.clone(), done.clone());
        std::thread::spawn(move || {
            let t = Instant::now();
            let answers: Vec<Response> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..4)
                    .map(|_| scope.spawn(|| raw_requests(&key, &addr, vec![request.clone(); 50])))
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap().unwrap_or_else(|e| panic!("{e}")))
                    .collect()
            });
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            (answers, t.elapsed())
        })
    };
    let latency = status_latency(node, || !done.load(std::sync::atomic::Ordering::SeqCst));
    let (answers, took) = flood.join().unwrap();
    let refused = answers
        .iter()
        .filter(|r| matches!(r, Response::Refused { .. }))
        .count();
    report("group keys", node, idle, latency, other_served());
    println!(
        "             200 requests refused ({refused} answered Refused) in {:.1} s",
        took.as_secs_f64()
    );
}

/// Attack 3: parallel console logins under names that do not exist.
fn logins(node: &NodeProc, cert: &Path, idle: u64, other_served: &dyn Fn() -> bool) {
    let url = node.status().console_url.expect("a console");
    let pem = std::fs::read(cert).unwrap();
    let cert = ureq::tls::Certificate::from_pem(&pem).unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![cert])))
                .build(),
        )
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let (agent, url, done) = (agent.clone(), url.clone(), done.clone());
        std::thread::spawn(move || {
            let codes: Vec<u16> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..150)
                    .map(|i| {
                        let (agent, url) = (agent.clone(), url.clone());
                        scope.spawn(move || {
                            let name = format!("nobody-{i}");
                            agent
                                .post(format!("{url}login"))
                                .send_form([("user", name.as_str()), ("password", "guess")])
                                .map(|r| r.status().as_u16())
                                .unwrap_or(0)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
            });
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            codes
        })
    };
    let latency = status_latency(node, || !done.load(std::sync::atomic::Ordering::SeqCst));
    let codes = flood.join().unwrap();
    report("logins", node, idle, latency, other_served());
    let checked = codes.iter().filter(|c| **c == 401).count();
    println!(
        "             150 logins: {checked} password checks, {} refused unchecked",
        codes.iter().filter(|c| [429, 503].contains(*c)).count()
    );
}
