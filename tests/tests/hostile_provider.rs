//! A dishonest provider: it holds its own key and signs whatever it likes
//! in answer to a disclosure request. The comparator takes a disclosure
//! only if the agreement's provider signed it, about exactly what was
//! asked (agreement, epoch, result kind, fields, one value a field, and no
//! token it did not ask for); anything else is refused, nothing of it is written, and the
//! refusal is in the comparator's status.

use dxmesh_protocol::feed::{DisclosedRecord, Disclosure};
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::token::IdToken;
use dxmesh_protocol::wire::{Request, Response};
use dxmesh_tests::{NodeProc, fake_member, registry_terms, setup};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

/// What the fake provider does to its answer.
#[derive(Clone, Copy, Debug)]
enum Lie {
    /// None: an honest answer.
    Honest,
    /// Signed by another member's key.
    OtherSigner,
    /// A record of a token the comparator did not ask for.
    ExtraPerson,
    /// The answer of another epoch.
    OtherEpoch,
    /// More fields than asked for.
    MoreFields,
    /// The fields asked for, and a record with one value more (its column
    /// would shift in the result file).
    ExtraValue,
}

fn answer(request: &Request, lie: Lie, provider: &Identity, other: &Identity) -> Option<Response> {
    let Request::Disclose(r) = request else {
        return None;
    };
    let mut d = Disclosure {
        agreement: r.agreement,
        epoch: r.epoch,
        result_kind: r.result_kind.clone(),
        fields: r.fields.clone(),
        records: r
            .tokens
            .iter()
            .map(|t| DisclosedRecord {
                token: *t,
                values: vec!["某人".into()],
            })
            .collect(),
        unknown: vec![],
        at: dxmesh_protocol::time::Timestamp(1),
    };
    let mut signer = provider;
    match lie {
        Lie::Honest => {}
        Lie::OtherSigner => signer = other,
        Lie::ExtraPerson => d.records.push(DisclosedRecord {
            token: IdToken([0xEE; 16]),
            values: vec!["a person nobody asked about".into()],
        }),
        Lie::OtherEpoch => d.epoch += 1,
        Lie::MoreFields => {
            d.fields.push("address".into());
            for r in &mut d.records {
                r.values.push("an address".into());
            }
        }
        Lie::ExtraValue => {
            if let Some(r) = d.records.first_mut() {
                r.values.push("a value nobody asked for".into());
            }
        }
    }
    Some(Response::Disclosed {
        disclosure: Signed::sign(signer, &d).unwrap(),
        receipt: None,
    })
}

#[test]
fn a_disclosure_not_signed_by_the_provider_or_not_what_was_asked_is_refused() {
    let (mut s, _) = setup(BIN, 200, &registry_terms(2, 10));
    s.pps.cli(&["publish"]);
    s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    s.commit_results();
    // The provider's operator stops its node and answers with its key by hand.
    let real = std::mem::replace(&mut s.pps, NodeProc::placeholder(&s.mesh.dx, &s.ps));
    assert!(real.stop());
    let ps_key = s.ps.dir.join("node.key");
    let provider = dxmesh_node::base::keyfile::read_identity(&ps_key).unwrap();
    let other = dxmesh_node::base::keyfile::read_identity(&s.min.dir.join("node.key")).unwrap();
    let lie = Arc::new(Mutex::new(Lie::Honest));
    let current = lie.clone();
    let fake = fake_member(
        &ps_key,
        &s.pcmp.addr(),
        Box::new(move |r| answer(r, *current.lock().unwrap(), &provider, &other)),
    )
    .unwrap();
    let ps_peer = s.ps.peer_id.clone();
    s.pcmp
        .wait_for("the fake provider", Duration::from_secs(30), |st| {
            st.connected.iter().any(|p| p.peer_id == ps_peer)
        });
    assert!(fake.connected());
    // Answered honestly by hand, the disclosure is taken.
    *lie.lock().unwrap() = Lie::Honest;
    let out = s.disclose("uninsured", "name", "3").unwrap();
    assert!(out.contains("disclosed 3 records"), "{out}");
    for (told, expected) in [
        (Lie::OtherSigner, "the disclosure does not verify"),
        (
            Lie::ExtraPerson,
            "a record of token eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee not asked for",
        ),
        (Lie::OtherEpoch, "it answers another request: agreement"),
        (
            Lie::MoreFields,
            "it answers another request: result kind \"uninsured\" with fields [\"name\", \"address\"]",
        ),
        (Lie::ExtraValue, "holds 2 values for 1 fields"),
    ] {
        *lie.lock().unwrap() = told;
        let e = s.disclose("uninsured", "name", "3").unwrap_err();
        assert!(e.contains(expected), "{told:?}: {e}");
    }
    // Only the honest disclosure was received (and logged as received).
    let bundle = s.mesh.path().join("bundle-cmp");
    s.pcmp
        .cli(&["audit", "export", "--out", bundle.to_str().unwrap()]);
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("entries.json")).unwrap())
            .unwrap();
    let received = entries
        .iter()
        .filter(|e| e["kind"] == "disclosure_received")
        .count();
    assert_eq!(received, 1, "{entries:?}");
    // The refusals are on record at the comparator, naming the provider.
    let st = s.pcmp.status();
    assert!(
        st.refusals
            .iter()
            .any(|r| r.reason.starts_with("disclosure from public_security")
                && r.peer_id.as_deref() == Some(s.ps.peer_id.as_str())),
        "{:?}",
        st.refusals
    );
}
