//! The disclosure and ministry-query checks against a result commitment:
//! every refusal of the request, of the commitment and of the proofs.

mod common;

use common::{accepted, consumer, provider, t};
use dxmesh_protocol::agreement::{
    AgreedInput, CommitmentCheck, DisclosureCheck, Negotiation, Refusal,
};
use dxmesh_protocol::commitment::{
    CommittedInput, MultiProof, ResultCommitment, set_root, token_leaves,
};
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::roster::Admission;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::token::IdToken;

/// A commitment by `by` to the `count` tokens `[k; 16]` (k = 1..=count)
/// as the result of `expr`, reading the registry feed whose manifest
/// digest is `manifest`.
fn commitment(
    by: &Identity,
    expr: &str,
    count: u8,
    manifest: [u8; 32],
) -> Signed<ResultCommitment> {
    let tokens: Vec<IdToken> = (1..=count).map(|k| IdToken([k; 16])).collect();
    let (count, root) = set_root(&tokens);
    let input = AgreedInput {
        name: "registry".into(),
        dataset: "registry".into(),
        provider: "public_security".into(),
        filter: vec![],
    };
    Signed::sign(
        by,
        &ResultCommitment {
            epoch: 0,
            result_kind: "uninsured".into(),
            expr: expr.into(),
            inputs: vec![CommittedInput { input, manifest }],
            sets: vec![],
            count,
            root,
        },
    )
    .unwrap()
}

#[test]
fn every_disclosure_refusal() {
    let (n, _) = accepted();
    let c = consumer().public();
    let now = t("2026-12-15");
    let own = [5u8; 32];
    let agreed = "(registry - other_province)";
    let good = commitment(&consumer(), agreed, 20, own);
    let leaves = token_leaves(&(1..=20u8).map(|k| IdToken([k; 16])).collect::<Vec<_>>());
    // Tokens 3..=12 (leaves 2..12) with their proof.
    let tokens: Vec<IdToken> = (3..=12u8).map(|k| IdToken([k; 16])).collect();
    let indices: Vec<u64> = (2..12).collect();
    let proof = MultiProof::prove(&leaves, &indices).unwrap();
    let check = |kind: &str, f: &[&str], used: u64, bound: &CommitmentCheck<'_>| {
        let f: Vec<String> = f.iter().map(|s| s.to_string()).collect();
        n.check_disclosure(
            now,
            false,
            &DisclosureCheck {
                requester: &c,
                admission: Admission::Admitted,
                epoch: 0,
                result_kind: kind,
                fields: &f,
                records_requested: bound.tokens.len() as u64,
                records_used: used,
            },
            bound,
        )
    };
    let ok = CommitmentCheck {
        commitment: &good,
        own_manifest: own,
        own_department: "public_security",
        tokens: &tokens,
        indices: &indices,
        proof: &proof,
    };
    assert_eq!(check("uninsured", &["id_number", "name"], 0, &ok), Ok(()));
    assert_eq!(
        check("uninsured", &["id_number"], 91, &ok),
        Err(Refusal::DisclosureOverQuota {
            requested: 10,
            remaining: 9
        })
    );
    assert_eq!(
        check("uninsured", &["id_number", "phone"], 0, &ok),
        Err(Refusal::DisclosureFieldNotAllowed {
            field: "phone".into()
        })
    );
    let code = |r: Result<(), Refusal>| r.unwrap_err().code();
    // A result kind the agreement does not name.
    assert_eq!(
        code(check("deceased_insured", &["id_number"], 0, &ok)),
        "job_not_agreed"
    );
    // Another expression than the agreed one ("everyone").
    let everyone = commitment(&consumer(), "registry", 20, own);
    let b = CommitmentCheck {
        commitment: &everyone,
        ..ok.clone()
    };
    assert_eq!(
        code(check("uninsured", &["id_number"], 0, &b)),
        "job_not_agreed"
    );
    // A commitment the requester did not sign (forged).
    let forged = commitment(&provider(), agreed, 20, own);
    let b = CommitmentCheck {
        commitment: &forged,
        ..ok.clone()
    };
    assert_eq!(
        code(check("uninsured", &["id_number"], 0, &b)),
        "commitment_invalid"
    );
    // One that does not read this provider's feed of the epoch.
    let b = CommitmentCheck {
        own_manifest: [6; 32],
        ..ok.clone()
    };
    assert_eq!(
        code(check("uninsured", &["id_number"], 0, &b)),
        "commitment_invalid"
    );
    // One that reads this provider's feed as an input defined as another
    // department's feed (the registry is public security's).
    let b = CommitmentCheck {
        own_department: "health",
        ..ok.clone()
    };
    let r = check("uninsured", &["id_number"], 0, &b);
    assert!(
        matches!(&r, Err(Refusal::CommitmentInvalid { reason }) if reason.contains("which the agreement defines as another feed")),
        "{r:?}"
    );
    // One whose count is over the quota (100 per epoch).
    let big = commitment(&consumer(), agreed, 101, own);
    let big_leaves = token_leaves(&(1..=101u8).map(|k| IdToken([k; 16])).collect::<Vec<_>>());
    let big_proof = MultiProof::prove(&big_leaves, &indices).unwrap();
    let b = CommitmentCheck {
        commitment: &big,
        proof: &big_proof,
        ..ok.clone()
    };
    assert_eq!(
        code(check("uninsured", &["id_number"], 0, &b)),
        "commitment_invalid"
    );
}

/// The refusal code of a one-field disclosure of `uninsured` bound to `b`.
fn proof_code(n: &Negotiation, b: &CommitmentCheck<'_>) -> &'static str {
    let fields = vec!["id_number".to_string()];
    let req = DisclosureCheck {
        requester: &consumer().public(),
        admission: Admission::Admitted,
        epoch: 0,
        result_kind: "uninsured",
        fields: &fields,
        records_requested: b.tokens.len() as u64,
        records_used: 0,
    };
    match n.check_disclosure(t("2026-12-15"), false, &req, b) {
        Ok(()) => "ok",
        Err(r) => r.code(),
    }
}

/// The proof and commitment-identity refusals of a disclosure request.
#[test]
fn every_proof_refusal() {
    let (n, _) = accepted();
    let own = [5u8; 32];
    let good = commitment(&consumer(), "(registry - other_province)", 20, own);
    let leaves = token_leaves(&(1..=20u8).map(|k| IdToken([k; 16])).collect::<Vec<_>>());
    let tokens: Vec<IdToken> = (3..=12u8).map(|k| IdToken([k; 16])).collect();
    let indices: Vec<u64> = (2..12).collect();
    let proof = MultiProof::prove(&leaves, &indices).unwrap();
    let ok = CommitmentCheck {
        commitment: &good,
        own_manifest: own,
        own_department: "public_security",
        tokens: &tokens,
        indices: &indices,
        proof: &proof,
    };
    assert_eq!(proof_code(&n, &ok), "ok");
    let statement: ResultCommitment = dxmesh_protocol::codec::decode(good.body()).unwrap();
    let resigned = |change: &dyn Fn(&mut ResultCommitment)| {
        let mut c = statement.clone();
        change(&mut c);
        Signed::sign(&consumer(), &c).unwrap()
    };
    let mut outside = tokens.clone();
    outside[0] = IdToken([200; 16]);
    let short: Vec<u64> = (2..11).collect();
    let shifted: Vec<u64> = (3..13).collect();
    let other_epoch = resigned(&|c| c.epoch = 1);
    let filtered =
        resigned(&|c| c.inputs[0].input.filter = vec![("status".into(), vec!["active".into()])]);
    for (what, b, want) in [
        (
            "a token outside the result",
            CommitmentCheck {
                tokens: &outside,
                ..ok.clone()
            },
            "not_in_commitment",
        ),
        (
            "fewer indices than tokens",
            CommitmentCheck {
                indices: &short,
                ..ok.clone()
            },
            "not_in_commitment",
        ),
        (
            "tokens claimed at other leaves",
            CommitmentCheck {
                indices: &shifted,
                ..ok.clone()
            },
            "not_in_commitment",
        ),
        (
            "a commitment of another epoch",
            CommitmentCheck {
                commitment: &other_epoch,
                ..ok.clone()
            },
            "commitment_invalid",
        ),
        (
            "an input defined otherwise",
            CommitmentCheck {
                commitment: &filtered,
                ..ok.clone()
            },
            "job_not_agreed",
        ),
    ] {
        assert_eq!(proof_code(&n, &b), want, "{what}");
    }
}

/// A ministry query is bound to the candidates' commitment: it may ask
/// about no more IDs in the epoch than the candidates committed to, under a
/// commitment the requester signed for the agreed job.
#[test]
fn every_ministry_query_refusal() {
    let (n, _) = accepted();
    let c = consumer().public();
    let now = t("2026-12-15");
    let agreed = "(registry - other_province)";
    let good = commitment(&consumer(), agreed, 20, [5; 32]);
    let fields = vec!["id_number".to_string()];
    let check = |requested: u64, used: u64, commitment: &Signed<ResultCommitment>| {
        n.check_ministry_query(
            now,
            false,
            &DisclosureCheck {
                requester: &c,
                admission: Admission::Admitted,
                epoch: 0,
                result_kind: "uninsured",
                fields: &fields,
                records_requested: requested,
                records_used: used,
            },
            commitment,
        )
        .map_err(|r| r.code())
    };
    assert_eq!(check(15, 5, &good), Ok(()));
    // More IDs in the epoch than candidates committed: enumeration.
    assert_eq!(check(16, 5, &good), Err("not_in_commitment"));
    let forged = commitment(&provider(), agreed, 20, [5; 32]);
    assert_eq!(check(1, 0, &forged), Err("commitment_invalid"));
    let other = commitment(&consumer(), "registry", 20, [5; 32]);
    assert_eq!(check(1, 0, &other), Err("job_not_agreed"));
    let big = commitment(&consumer(), agreed, 101, [5; 32]);
    assert_eq!(check(1, 0, &big), Err("commitment_invalid"));
}
