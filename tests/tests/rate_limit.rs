//! Per-member request rate limits at a running node (`[network]
//! requests_per_sec`, `request_burst`): a member that floods a node with
//! control requests is served its burst, then refused (`RateLimited`, with
//! the time to wait) while another member is served as usual; the flood
//! leaves one audit entry, not one per request; the member is served again
//! once it slows down.

use dxmesh_protocol::wire::{Refusal, Request, Response};
use dxmesh_tests::{Mesh, edit_config, manual_schedule, raw_request, raw_requests};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

#[test]
fn a_flooding_member_is_refused_past_its_burst_and_others_are_served() {
    let mut mesh = Mesh::new(BIN);
    let ps = mesh.init("ps", "public_security", "provider");
    let cmp = mesh.init("cmp", "comparator", "comparator");
    let min = mesh.init("min", "ministry", "ministry");
    manual_schedule(&ps);
    edit_config(&ps.dir, "requests_per_sec = 50", "requests_per_sec = 2");
    edit_config(&ps.dir, "request_burst = 200", "request_burst = 5");
    let roster = mesh.sign_roster("roster-v1", None, &[&ps, &cmp, &min], &[]);
    mesh.install(&ps, &[&roster]);
    let node = mesh.start(&ps);
    let addr = node.addr();

    // Twelve requests at once over one connection: the burst of five is
    // served, the rest are refused until a token comes back (2 a second).
    let answers = raw_requests(&cmp.dir.join("node.key"), &addr, vec![Request::Peers; 12]).unwrap();
    let served = answers
        .iter()
        .filter(|r| matches!(r, Response::Peers { .. }))
        .count();
    let refused: Vec<u64> = answers
        .iter()
        .filter_map(|r| match r {
            Response::Refused {
                reason: Refusal::RateLimited { retry_after_ms },
            } => Some(*retry_after_ms),
            _ => None,
        })
        .collect();
    assert!(
        (5..=6).contains(&served) && served + refused.len() == 12,
        "{answers:?}"
    );
    assert!(
        answers[..5]
            .iter()
            .all(|r| matches!(r, Response::Peers { .. })),
        "{answers:?}"
    );
    assert!(
        refused.iter().all(|&ms| (1..=500).contains(&ms)),
        "{refused:?}"
    );

    // Another member is served at once.
    let other = raw_request(&min.dir.join("node.key"), &addr, Request::Peers).unwrap();
    assert!(matches!(other, Response::Peers { .. }), "{other:?}");

    // Once it has waited, the flooding member is served again.
    std::thread::sleep(Duration::from_millis(1100));
    let again = raw_request(&cmp.dir.join("node.key"), &addr, Request::Peers).unwrap();
    assert!(matches!(again, Response::Peers { .. }), "{again:?}");

    // The status names the refusal; the audit log holds one entry for the
    // flood (the first refusal; the others are counted into the next entry,
    // at most a minute later), naming the member and the limits.
    let status = node.status();
    assert!(
        status
            .refusals
            .iter()
            .any(|r| r.reason.contains("rate limited")
                && r.peer_id.as_deref() == Some(cmp.peer_id.as_str())),
        "{:?}",
        status.refusals
    );
    let bundle = mesh.path().join("bundle");
    node.cli(&["audit", "export", "--out", bundle.to_str().unwrap()]);
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("entries.json")).unwrap())
            .unwrap();
    let limited: Vec<String> = entries
        .iter()
        .filter(|e| e["kind"] == "peer_refused")
        .filter_map(|e| e["event"].as_str().map(str::to_string))
        .filter(|e| e.contains("rate limited"))
        .collect();
    assert_eq!(limited.len(), 1, "{limited:?}");
    assert!(
        limited[0].contains("1 request(s) refused") && limited[0].contains("2 a second, 5 at once"),
        "{}",
        limited[0]
    );
    assert!(node.stop());
}
