//! Requests no honest member sends, each refused by its code: a pull under
//! an agreement the provider never made, feed streams under a pull that was
//! never opened, under another member's pull and after the agreement was
//! suspended, a roster version the trust anchor did not sign, a roster
//! chain longer than a message may carry, a checkpoint
//! to witness that does not verify, and a frame over its kind's limit. Each
//! is sent from a bare libp2p client holding a member's key (what a
//! hostile member has), and each refusal is asserted by name.

use dxmesh_protocol::agreement::Refusal;
use dxmesh_protocol::codec;
use dxmesh_protocol::feed::{ChunkRequest, FEED_PROTOCOL};
use dxmesh_protocol::roster::Roster;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::wire::{self, CONTROL_PROTOCOL, Request, Response};
use dxmesh_tests::{Setup, raw_request, raw_stream, registry_terms, setup};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

fn agreement_bytes(s: &Setup) -> [u8; 32] {
    hex::decode(&s.agreement).unwrap().try_into().unwrap()
}

/// Waits until the provider's status shows a refusal of `what` with `code`.
fn provider_refused(s: &mut Setup, what: &str, code: &str) {
    let (what, code) = (what.to_string(), format!("[{code}]"));
    s.pps.wait_for(
        &format!("a {what} refusal {code}"),
        Duration::from_secs(20),
        |st| {
            st.refusals
                .iter()
                .any(|r| r.reason.starts_with(&what) && r.reason.contains(&code))
        },
    );
}

#[test]
fn requests_no_honest_member_sends_are_refused_by_name() {
    let (mut s, _) = setup(BIN, 200, &registry_terms(2, 10));
    s.pps.cli(&["publish"]);
    let addr = s.pps.addr();
    let cmp_key = s.cmp.dir.join("node.key");
    let min_key = s.min.dir.join("node.key");
    let agreement = agreement_bytes(&s);
    let epoch = 1; // daily cycle anchored yesterday
    let open = |pull_id: [u8; 16], agreement: [u8; 32]| Request::PullOpen {
        agreement,
        epoch,
        fields: vec!["id_number".into()],
        pull_id,
    };

    // A pull under an agreement the provider never made.
    let r = raw_request(&cmp_key, &addr, open([1; 16], [0xAB; 32])).unwrap();
    assert_eq!(
        r,
        Response::Denied {
            refusal: Refusal::UnknownAgreement
        }
    );
    provider_refused(&mut s, "pull", "unknown_agreement");

    // The comparator opens a pull (counted), and its stream is served.
    let r = raw_request(&cmp_key, &addr, open([7; 16], agreement)).unwrap();
    assert!(matches!(r, Response::PullGranted { .. }), "{r:?}");
    let stream = |key: &std::path::Path, pull_id: [u8; 16]| {
        let body = codec::encode(&ChunkRequest {
            agreement,
            epoch,
            pull_id,
            from: 0,
            to: 1,
        })
        .unwrap();
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend(body);
        raw_stream(key, &addr, FEED_PROTOCOL, frame).unwrap()
    };
    assert!(stream(&cmp_key, [7; 16]).len() > 4, "the pull's own stream");
    // A stream under a pull id never opened gets nothing.
    assert!(stream(&cmp_key, [8; 16]).is_empty());
    provider_refused(&mut s, "feed stream", "pull_not_opened");
    // Another member streaming under the comparator's pull gets nothing.
    assert!(stream(&min_key, [7; 16]).is_empty());
    provider_refused(&mut s, "feed stream", "wrong_consumer");
    // Once the agreement is suspended, the opened pull is served no more.
    s.pps
        .cli(&["agreement", "suspend", &s.thread[..12], "--reason", "audit"]);
    assert!(stream(&cmp_key, [7; 16]).is_empty());
    provider_refused(&mut s, "feed stream", "suspended");

    // A roster version 2 signed by the comparator, not the trust anchor.
    let v1: Signed<Roster> =
        codec::decode(&std::fs::read(s.mesh.path().join("roster-v1")).unwrap()).unwrap();
    let mut v2: Roster = codec::decode(v1.body()).unwrap();
    v2.version = 2;
    v2.previous = Some(v1.digest());
    let cmp_identity = dxmesh_node::base::keyfile::read_identity(&cmp_key).unwrap();
    let forged = Signed::sign(&cmp_identity, &v2).unwrap();
    let r = raw_request(
        &cmp_key,
        &addr,
        Request::RosterPush {
            chain: vec![forged],
        },
    )
    .unwrap();
    match &r {
        Response::Refused {
            reason: wire::Refusal::BadRoster(why),
        } => assert!(
            why.contains("roster version 2 is not validly signed by the trust anchor"),
            "{why}"
        ),
        other => panic!("a forged roster was answered {other:?}"),
    }
    assert_eq!(
        s.pps.status().roster_version,
        1,
        "the forged version is not held"
    );
    // A chain of 1,001 versions (copies of the real version 1) is refused
    // by its length, before a single signature is checked.
    let r = raw_request(
        &cmp_key,
        &addr,
        Request::RosterPush {
            chain: vec![v1.clone(); dxmesh_protocol::roster::MAX_CHAIN_VERSIONS + 1],
        },
    )
    .unwrap();
    match &r {
        Response::Refused {
            reason: wire::Refusal::BadRoster(why),
        } => assert_eq!(
            why,
            "a chain of 1001 roster versions is offered; at most 1000 are read"
        ),
        other => panic!("a chain of 1,001 versions was answered {other:?}"),
    }

    // A checkpoint to witness that is not a signed checkpoint.
    let r = raw_request(
        &cmp_key,
        &addr,
        Request::Witness {
            note: "dxmesh/audit\n9\nAAAA\n\n— forged".into(),
            proof: None,
        },
    )
    .unwrap();
    match &r {
        Response::Refused {
            reason: wire::Refusal::Fork(why),
        } => assert!(why.contains("does not verify"), "{why}"),
        other => panic!("a forged checkpoint was answered {other:?}"),
    }

    // A `Peers` request announcing 2 KiB (its kind allows 1 KiB).
    let mut frame = 2048u32.to_be_bytes().to_vec();
    frame.push(2);
    frame.resize(4 + 2048, 0);
    let answer = raw_stream(&cmp_key, &addr, CONTROL_PROTOCOL, frame).unwrap();
    let (len, body) = answer.split_first_chunk::<4>().expect("an answer");
    assert_eq!(u32::from_be_bytes(*len) as usize, body.len());
    match codec::decode::<Response>(body).unwrap() {
        Response::Refused {
            reason: wire::Refusal::Frame(why),
        } => assert_eq!(
            why,
            "a Peers frame of 2048 bytes exceeds its limit of 1024 bytes"
        ),
        other => panic!("an oversized frame was answered {other:?}"),
    }
    s.pps
        .wait_for("the frame refusal", Duration::from_secs(20), |st| {
            st.refusals
                .iter()
                .any(|r| r.reason.starts_with("control frame refused: a Peers frame"))
        });
}
