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
use dxmesh_protocol::date::Date;
use dxmesh_protocol::feed::{Manifest, Quality};
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::roster::{Admission, Member, Role, Roster};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;
use dxmesh_protocol::token::IdToken;

/// An empty feed of `dataset` for epoch 0 to `to`, signed by `by`.
fn manifest(by: &Identity, dataset: &str, to: &Identity) -> Signed<Manifest> {
    let m = Manifest {
        provider: by.public(),
        agreement: [9; 32],
        consumer: to.public(),
        dataset: dataset.into(),
        epoch: 0,
        reference_date: Date::new(2026, 12, 1).unwrap(),
        schema: vec![],
        records: 0,
        chunk_hashes: vec![],
        first_tokens: vec![],
        root: dxmesh_protocol::merkle::empty_root(),
        quality: Quality::default(),
        created_at: Timestamp(0),
        previous: None,
    };
    Signed::sign(by, &m).unwrap()
}

/// The registry's signed manifest of epoch 0 for the consumer.
fn registry_manifest() -> Signed<Manifest> {
    manifest(&provider(), "registry", &consumer())
}

/// A stranger's identity (no roster member).
fn stranger() -> Identity {
    Identity::from_seed([77; 32]).unwrap()
}

/// HR's identity.
fn hr() -> Identity {
    Identity::from_seed([5; 32]).unwrap()
}

/// The roster: public security and HR as providers, the consumer as the
/// comparator.
fn roster() -> Roster {
    let member = |id: &Identity, department: &str, role: Role| Member {
        public_key: id.public(),
        department: department.into(),
        role,
        display_name: department.into(),
        addresses: vec![],
        valid_from: t("2026-01-01"),
        valid_until: t("2028-01-01"),
    };
    let mut r = Roster {
        mesh: "test".into(),
        version: 1,
        previous: None,
        issued_at: t("2026-01-01"),
        members: vec![
            member(&provider(), "public_security", Role::Provider),
            member(&consumer(), "comparator", Role::Comparator),
            member(&hr(), "hr", Role::Provider),
        ],
        revoked: vec![],
    };
    r.canonicalize();
    r
}

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
            ministry: None,
        },
    )
    .unwrap()
}

#[test]
fn every_disclosure_refusal() {
    let (n, _) = accepted();
    let c = consumer().public();
    let now = t("2026-12-15");
    let registry = registry_manifest();
    let own = registry.digest();
    let manifests = [registry];
    let roster = roster();
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
        manifests: &manifests,
        roster: Some(&roster),
        now: t("2026-12-15"),
        candidates: None,
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
    // One whose input's manifest the request does not carry.
    let b = CommitmentCheck {
        manifests: &[],
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
    let registry = registry_manifest();
    let own = registry.digest();
    let manifests = [registry];
    let roster = roster();
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
        manifests: &manifests,
        roster: Some(&roster),
        now: t("2026-12-15"),
        candidates: None,
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

/// Terms whose `uninsured` reads the registry and HR's pension feed,
/// proposed by the consumer and accepted by the provider.
fn accepted_two_inputs() -> Negotiation {
    use dxmesh_protocol::agreement::{Action, sign_step};
    let mut terms = common::terms();
    terms.disclosure.inputs.insert(
        0,
        AgreedInput {
            name: "insured_pension".into(),
            dataset: "insured".into(),
            provider: "hr".into(),
            filter: vec![("insurance_type".into(), vec!["enterprise_pension".into()])],
        },
    );
    terms.disclosure.jobs[0].expr = "((registry - insured_pension) - other_province)".into();
    terms.disclosure.jobs[0].inputs = vec!["insured_pension".into(), "registry".into()];
    let s0 = sign_step(
        &consumer(),
        None,
        t("2026-11-20"),
        Action::Propose(terms.clone()),
    )
    .unwrap();
    let mut n = Negotiation::start(&s0).unwrap();
    let s1 = sign_step(
        &provider(),
        Some(&n),
        t("2026-11-21"),
        Action::Accept {
            agreement: terms.id(),
        },
    )
    .unwrap();
    n.apply(&s1).unwrap();
    n
}

/// A hostile comparator's commitment to `registry - insured_pension`
/// whose `insured_pension` manifest is not HR's feed for it (signed by a
/// stranger, by another department, for another consumer or epoch or
/// dataset, or not carried at all): the registry provider refuses it, so
/// an empty forged feed cannot widen the result it discloses.
#[test]
fn a_forged_input_feed_is_refused() {
    let n = accepted_two_inputs();
    let registry = registry_manifest();
    let roster = roster();
    let tokens: Vec<IdToken> = (1..=5u8).map(|k| IdToken([k; 16])).collect();
    let leaves = token_leaves(&tokens);
    let indices: Vec<u64> = (0..5).collect();
    let proof = MultiProof::prove(&leaves, &indices).unwrap();
    let (count, root) = set_root(&tokens);
    let fields = vec!["id_number".to_string(), "name".to_string()];
    let try_with = |pension: Signed<Manifest>, carried: bool| {
        let input = |name: &str, dataset: &str, provider: &str, filter, manifest| CommittedInput {
            input: AgreedInput {
                name: name.into(),
                dataset: dataset.into(),
                provider: provider.into(),
                filter,
            },
            manifest,
        };
        let c = ResultCommitment {
            epoch: 0,
            result_kind: "uninsured".into(),
            expr: "((registry - insured_pension) - other_province)".into(),
            inputs: vec![
                input(
                    "insured_pension",
                    "insured",
                    "hr",
                    vec![("insurance_type".into(), vec!["enterprise_pension".into()])],
                    pension.digest(),
                ),
                input(
                    "registry",
                    "registry",
                    "public_security",
                    vec![],
                    registry.digest(),
                ),
            ],
            sets: vec![],
            count,
            root,
            ministry: None,
        };
        let signed = Signed::sign(&consumer(), &c).unwrap();
        let carried: Vec<Signed<Manifest>> = if carried {
            vec![registry.clone(), pension]
        } else {
            vec![registry.clone()]
        };
        let bound = CommitmentCheck {
            commitment: &signed,
            own_manifest: registry.digest(),
            own_department: "public_security",
            tokens: &tokens,
            indices: &indices,
            proof: &proof,
            manifests: &carried,
            roster: Some(&roster),
            now: t("2026-12-15"),
            candidates: None,
        };
        let req = DisclosureCheck {
            requester: &consumer().public(),
            admission: Admission::Admitted,
            epoch: 0,
            result_kind: "uninsured",
            fields: &fields,
            records_requested: 5,
            records_used: 0,
        };
        n.check_disclosure(t("2026-12-15"), false, &req, &bound)
    };
    // HR's own feed for the comparator: accepted.
    assert_eq!(
        try_with(manifest(&hr(), "insured", &consumer()), true),
        Ok(())
    );
    let refused = |r: Result<(), Refusal>, needle: &str| match r {
        Err(Refusal::CommitmentInvalid { reason }) => {
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}")
        }
        other => panic!("{other:?}: not commitment_invalid ({needle})"),
    };
    for (signer, dataset, to, carried, needle) in [
        (
            stranger(),
            "insured",
            consumer(),
            true,
            "which is not a roster member",
        ),
        (
            consumer(),
            "insured",
            consumer(),
            true,
            "signed by comparator (comparator",
        ),
        (
            provider(),
            "insured",
            consumer(),
            true,
            "signed by public_security (provider",
        ),
        (
            hr(),
            "insured",
            stranger(),
            true,
            "not of \"insured\" for epoch 0 to the requester",
        ),
        (hr(), "deaths", consumer(), true, "is of dataset \"deaths\""),
        (
            hr(),
            "insured",
            consumer(),
            false,
            "carries no signed manifest",
        ),
    ] {
        refused(try_with(manifest(&signer, dataset, &to), carried), needle);
    }
}

/// Registry terms with the ministry check as two agreed jobs: the
/// candidates (ID numbers only) and the final result that subtracts the
/// ministry's answer about them.
fn accepted_with_candidates() -> Negotiation {
    use dxmesh_protocol::agreement::{Action, AgreedJob, sign_step};
    let mut terms = common::terms();
    let uninsured = terms.disclosure.jobs[0].clone();
    terms.disclosure.jobs = vec![
        AgreedJob {
            kind: "uninsured_candidates".into(),
            fields: vec!["id_number".into()],
            ..uninsured.clone()
        },
        AgreedJob {
            candidates: Some("uninsured_candidates".into()),
            ..uninsured
        },
    ];
    terms.validate().unwrap();
    let s0 = sign_step(
        &consumer(),
        None,
        t("2026-11-20"),
        Action::Propose(terms.clone()),
    )
    .unwrap();
    let mut n = Negotiation::start(&s0).unwrap();
    let accept = Action::Accept {
        agreement: terms.id(),
    };
    n.apply(&sign_step(&provider(), Some(&n), t("2026-11-21"), accept).unwrap())
        .unwrap();
    n
}

/// A hostile comparator's ways around the ministry check, each refused:
/// the candidates' commitment reused as the final result (attack: the
/// names of those the ministry removed), names asked for the candidates,
/// a final result that names no candidates, or does not carry them, or
/// states more results than candidates, and candidates that subtract a
/// set of their own.
#[test]
fn the_candidates_commitment_is_its_own_kind_and_the_final_one_names_it() {
    use dxmesh_protocol::commitment::{CommittedSet, MinistryBasis};
    let n = accepted_with_candidates();
    let registry = registry_manifest();
    let manifests = [registry.clone()];
    let roster = roster();
    let agreed = "(registry - other_province)";
    let sign = |c: &ResultCommitment| Signed::sign(&consumer(), c).unwrap();
    let base: ResultCommitment = dxmesh_protocol::codec::decode(
        commitment(&consumer(), agreed, 20, registry.digest()).body(),
    )
    .unwrap();
    let candidates = sign(&ResultCommitment {
        result_kind: "uninsured_candidates".into(),
        ..base.clone()
    });
    let basis = MinistryBasis {
        candidates: candidates.digest(),
        answers: vec![[3; 32]],
        home_province: "44".into(),
        insurance_types: vec!["enterprise_pension".into()],
    };
    // The final result: 5 of the 20 candidates were insured elsewhere.
    let tokens: Vec<IdToken> = (1..=15u8).map(|k| IdToken([k; 16])).collect();
    let (count, root) = set_root(&tokens);
    let removed: Vec<IdToken> = (16..=20u8).map(|k| IdToken([k; 16])).collect();
    let (op_count, op_root) = set_root(&removed);
    let final_one = |ministry: Option<MinistryBasis>, count: u64| ResultCommitment {
        count,
        root,
        sets: vec![CommittedSet {
            name: "other_province".into(),
            count: op_count,
            root: op_root,
        }],
        ministry,
        ..base.clone()
    };
    let asked: Vec<IdToken> = (1..=3u8).map(|k| IdToken([k; 16])).collect();
    let indices: Vec<u64> = (0..3).collect();
    let proof_of = |all: &[IdToken]| MultiProof::prove(&token_leaves(all), &indices).unwrap();
    let check = |kind: &str,
                 fields: &[&str],
                 c: &Signed<ResultCommitment>,
                 carried: Option<&Signed<ResultCommitment>>,
                 proof: &MultiProof| {
        let fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        let bound = CommitmentCheck {
            commitment: c,
            own_manifest: registry.digest(),
            own_department: "public_security",
            tokens: &asked,
            indices: &indices,
            proof,
            manifests: &manifests,
            roster: Some(&roster),
            now: t("2026-12-15"),
            candidates: carried,
        };
        let req = DisclosureCheck {
            requester: &consumer().public(),
            admission: Admission::Admitted,
            epoch: 0,
            result_kind: kind,
            fields: &fields,
            records_requested: 3,
            records_used: 0,
        };
        n.check_disclosure(t("2026-12-15"), false, &req, &bound)
            .map_err(|r| (r.code(), r.to_string()))
    };
    let p20 = proof_of(&(1..=20u8).map(|k| IdToken([k; 16])).collect::<Vec<_>>());
    let p15 = proof_of(&tokens);
    // The candidates: their ID numbers, nothing more.
    assert_eq!(
        check(
            "uninsured_candidates",
            &["id_number"],
            &candidates,
            None,
            &p20
        ),
        Ok(())
    );
    let e = check(
        "uninsured_candidates",
        &["id_number", "name"],
        &candidates,
        None,
        &p20,
    );
    assert_eq!(e.unwrap_err().0, "disclosure_field_not_allowed");
    // The candidates' commitment presented as the final result.
    let e = check("uninsured", &["id_number", "name"], &candidates, None, &p20).unwrap_err();
    assert_eq!(e.0, "commitment_invalid", "{}", e.1);
    // The honest final result: names the candidates and carries them.
    let honest = sign(&final_one(Some(basis.clone()), count));
    assert_eq!(
        check(
            "uninsured",
            &["id_number", "name"],
            &honest,
            Some(&candidates),
            &p15
        ),
        Ok(())
    );
    // A final result that names no candidates (the candidates re-signed
    // as "uninsured", skipping the ministry).
    let skipped = sign(&ResultCommitment {
        result_kind: "uninsured".into(),
        ..base.clone()
    });
    let e = check("uninsured", &["name"], &skipped, None, &p20).unwrap_err();
    assert!(
        e.0 == "commitment_invalid" && e.1.contains("names no candidates commitment"),
        "{e:?}"
    );
    // Names them but does not carry them, or carries other ones.
    let e = check("uninsured", &["name"], &honest, None, &p15).unwrap_err();
    assert!(
        e.1.contains("carries no commitment to the candidates"),
        "{e:?}"
    );
    let e = check("uninsured", &["name"], &honest, Some(&honest), &p15).unwrap_err();
    assert!(e.1.contains("is not the one the commitment names"), "{e:?}");
    // States more results than there were candidates.
    let big_tokens: Vec<IdToken> = (1..=21u8).map(|k| IdToken([k; 16])).collect();
    let (big_count, big_root) = set_root(&big_tokens);
    let big = sign(&ResultCommitment {
        root: big_root,
        ..final_one(Some(basis.clone()), big_count)
    });
    let e = check(
        "uninsured",
        &["name"],
        &big,
        Some(&candidates),
        &proof_of(&big_tokens),
    )
    .unwrap_err();
    assert!(e.1.contains("but to only 20 candidates"), "{e:?}");
    // Candidates that subtract a set of their own.
    let greedy = sign(&ResultCommitment {
        result_kind: "uninsured_candidates".into(),
        ..final_one(None, count)
    });
    let e = check("uninsured_candidates", &["id_number"], &greedy, None, &p15).unwrap_err();
    assert!(e.1.contains("subtracts no ministry answer"), "{e:?}");
}

/// Terms that name a candidates job that is not agreed, or a field that
/// is not a disclosure field, are refused as they are written.
#[test]
fn terms_with_a_bad_candidates_job_or_field_are_refused() {
    let mut terms = common::terms();
    terms.disclosure.jobs[0].candidates = Some("nobody".into());
    let e = terms.validate().unwrap_err();
    assert!(e.0.contains("names candidates \"nobody\""), "{e}");
    let mut terms = common::terms();
    terms.disclosure.jobs[0].fields = vec!["phone".into()];
    let e = terms.validate().unwrap_err();
    assert!(e.0.contains("discloses field \"phone\""), "{e}");
}
