//! A roster member that misbehaves at the frame level: it opens many
//! control streams on every connection it may hold, each announcing the
//! largest frame and sending most of it, and holds them open. The node
//! reads at most its inbound budget per connection, refuses the rest at
//! once, logs the refusals once (not once per frame), stays within 256 MiB
//! of its idle memory, refuses the member a fifth connection and keeps
//! serving the other members and its operator.

use dxmesh_protocol::wire::{CONTROL_PROTOCOL, MAX_CONTROL_FRAME, Request, Response};
use dxmesh_tests::{Mesh, hold_streams, manual_schedule, raw_request};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

/// A memory line of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in bytes.
fn proc_bytes(pid: u32, field: &str) -> u64 {
    dxmesh_tests::bench::status_kib(&pid.to_string(), field) * 1024
}

#[test]
fn a_member_announcing_the_largest_frames_on_many_streams_holds_at_most_its_budget() {
    let mut mesh = Mesh::new(BIN);
    let ps = mesh.init("ps", "public_security", "provider");
    let cmp = mesh.init("cmp", "comparator", "comparator");
    let min = mesh.init("min", "ministry", "ministry");
    manual_schedule(&ps);
    let roster = mesh.sign_roster("roster-v1", None, &[&ps, &cmp, &min], &[]);
    mesh.install(&ps, &[&roster]);
    let node = mesh.start(&ps);
    let addr = node.addr();
    let idle = proc_bytes(node.pid(), "VmRSS:");
    assert!(idle > 0, "the node's memory is read from /proc");

    // A disclosure frame (kind 6) announcing 15 MiB, 8 MiB of it sent, on
    // 30 streams of each of the 4 connections a member may hold.
    let mut frame = (MAX_CONTROL_FRAME as u32).to_be_bytes().to_vec();
    frame.push(6);
    frame.resize(8 * 1024 * 1024, 0);
    let holders: Vec<_> = (0..4)
        .map(|_| {
            hold_streams(
                &cmp.dir.join("node.key"),
                &addr,
                CONTROL_PROTOCOL,
                30,
                frame.clone(),
            )
            .unwrap()
        })
        .collect();
    for h in &holders {
        assert!(h.wait_settled(30, Duration::from_secs(90)));
    }
    // Each connection's budget holds two such frames; the node ends every
    // other stream at once instead of reading it.
    for h in &holders {
        assert!(
            h.written() <= 2 && h.ended() >= 28,
            "{} written, {} ended",
            h.written(),
            h.ended()
        );
    }
    let peak = proc_bytes(node.pid(), "VmHWM:");
    assert!(
        peak.saturating_sub(idle) < 256 << 20,
        "the node went from {} MiB idle to a peak of {} MiB",
        idle >> 20,
        peak >> 20
    );

    // A fifth connection of the same member is refused; its four stay.
    let fifth = hold_streams(
        &cmp.dir.join("node.key"),
        &addr,
        CONTROL_PROTOCOL,
        0,
        vec![],
    )
    .unwrap();
    assert!(
        fifth.wait_down(Duration::from_secs(20)),
        "a fifth connection of one member"
    );
    assert!(!fifth.connected());
    assert!(holders.iter().all(|h| h.connected()));
    drop(fifth);

    // While the streams are held, the operator and the other members are served.
    assert!(node.try_status().is_some());
    let other = raw_request(&min.dir.join("node.key"), &addr, Request::Peers).unwrap();
    assert!(matches!(other, Response::Peers { .. }), "{other:?}");
    for h in holders {
        h.release().unwrap();
    }

    // The audit log names the member and the refusal once for the flood,
    // not once per frame.
    let bundle = mesh.path().join("bundle");
    node.cli(&["audit", "export", "--out", bundle.to_str().unwrap()]);
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("entries.json")).unwrap())
            .unwrap();
    let refused: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e["kind"] == "peer_refused")
        .filter(|e| {
            e["event"]
                .as_str()
                .is_some_and(|t| t.contains("control frame refused"))
        })
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    let text = refused[0]["event"].as_str().unwrap();
    assert!(
        text.contains("over the connection's inbound budget") && text.contains(&cmp.peer_id),
        "{text}"
    );
    assert!(node.stop());
}

/// A member whose membership ends while it is connected is refused at the
/// gate every control request passes (`NotAdmitted(Expired)`), before the
/// node's next tick drops its connection.
#[test]
fn a_member_whose_membership_ended_while_connected_is_refused_at_the_gate() {
    let mut mesh = Mesh::new(BIN);
    let ps = mesh.init("ps", "public_security", "provider");
    let cmp = mesh.init("cmp", "comparator", "comparator");
    let min = mesh.init("min", "ministry", "ministry");
    manual_schedule(&ps);
    // No tick (which re-applies the roster) for an hour after the first.
    dxmesh_tests::edit_config(
        &ps.dir,
        "peer_exchange_secs = 1",
        "peer_exchange_secs = 3600",
    );
    mesh.sign_roster("roster-v1", None, &[&ps, &cmp, &min], &[]);
    // The ministry's membership ends four seconds from now.
    let until = dxmesh_protocol::time::Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 4,
    )
    .to_string();
    mesh.dx.ok(
        mesh.path(),
        &[
            "roster",
            "add-member",
            "roster-v1.toml",
            "--peer-id",
            &min.peer_id,
            "--department",
            &min.department,
            "--role",
            &min.role,
            "--valid-from",
            "2020-01-01",
            "--valid-until",
            &until,
        ],
    );
    mesh.dx.ok(
        mesh.path(),
        &[
            "roster",
            "sign",
            "roster-v1.toml",
            "--anchor-key",
            "anchor.key",
            "--out",
            "roster-v1-short",
        ],
    );
    mesh.install(&ps, &[&mesh.path().join("roster-v1-short")]);
    let node = mesh.start(&ps);
    let addr = node.addr();
    let answers = dxmesh_tests::raw_requests_after(
        &min.dir.join("node.key"),
        &addr,
        vec![Request::Peers],
        Duration::from_secs(6),
    )
    .unwrap();
    assert_eq!(
        answers,
        vec![Response::Refused {
            reason: dxmesh_protocol::wire::Refusal::NotAdmitted(
                dxmesh_protocol::roster::Admission::Expired
            )
        }]
    );
    let status = node.status();
    assert!(
        status
            .refusals
            .iter()
            .any(|r| r.reason == "control request: membership expired"
                && r.peer_id.as_deref() == Some(min.peer_id.as_str())),
        "{:?}",
        status.refusals
    );
    // The comparator, still a member, is served.
    let other = raw_request(&cmp.dir.join("node.key"), &addr, Request::Peers).unwrap();
    assert!(matches!(other, Response::Peers { .. }), "{other:?}");
    assert!(node.stop());
}
