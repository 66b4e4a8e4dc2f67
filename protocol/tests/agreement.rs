//! Sharing agreements in the pure crate: negotiation with a counter-offer,
//! every refused transition, transcript tampering, time-derived status,
//! every refusal of the provider's pull checks, and a
//! property test that two parties exchanging random steps over a lossy link
//! never end in different states.

use dxmesh_protocol::agreement::{
    Action, FieldTerm, Negotiation, Phase, PullCheck, Refusal, Status, Step, StepError, SyncError,
    Treatment, reconcile, sign_step,
};
use dxmesh_protocol::codec::{decode, encode};
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::roster::Admission;
use dxmesh_protocol::signed::Signed;
use proptest::prelude::*;

mod common;

use common::{accepted, consumer, provider, t, terms};

#[test]
fn negotiation_with_a_counter_offer() {
    let (n, steps) = accepted();
    assert_eq!(n.phase, Phase::Accepted);
    assert_eq!(
        n.terms.cycle.max_pulls, 1,
        "the counter-offer's terms are what was accepted"
    );
    assert_eq!(n.len, 3);
    assert_eq!(Negotiation::replay(&steps).unwrap(), n);
    assert_eq!(n.status(t("2026-11-30"), false), Status::Accepted);
    assert_eq!(n.status(t("2026-12-01"), false), Status::Active);
    assert_eq!(n.status(t("2027-12-01"), false), Status::Expired);
    assert_eq!(n.status(t("2026-12-05"), true), Status::Superseded);
}

#[test]
fn invalid_transitions_are_refused_by_the_state_machine() {
    let (p, c) = (provider(), consumer());
    let s0 = sign_step(&c, None, t("2026-11-20"), Action::Propose(terms())).unwrap();
    let n = Negotiation::start(&s0).unwrap();
    let at = t("2026-11-21");
    let refused = |n: &Negotiation, who: &Identity, a: Action| {
        let s = sign_step(who, Some(n), at, a).unwrap();
        n.clone().apply(&s).unwrap_err()
    };
    // Own offer: cannot accept or counter it.
    assert!(matches!(
        refused(
            &n,
            &c,
            Action::Accept {
                agreement: terms().id()
            }
        ),
        StepError::Transition { .. }
    ));
    assert!(matches!(
        refused(&n, &c, Action::Counter(terms())),
        StepError::Transition { .. }
    ));
    // Accepting other terms than the last offer.
    let mut other = terms();
    other.retention_days = 1;
    assert!(matches!(
        refused(
            &n,
            &p,
            Action::Accept {
                agreement: other.id()
            }
        ),
        StepError::Transition { .. }
    ));
    // Suspend or resume before acceptance; a second proposal in a thread.
    assert!(matches!(
        refused(&n, &p, Action::Suspend { reason: "x".into() }),
        StepError::Transition { .. }
    ));
    assert!(matches!(
        refused(&n, &p, Action::Resume),
        StepError::Transition { .. }
    ));
    assert!(matches!(
        refused(&n, &p, Action::Propose(terms())),
        StepError::Transition { .. }
    ));
    // A counter that changes the parties.
    let mut swapped = terms();
    std::mem::swap(&mut swapped.provider, &mut swapped.consumer);
    assert!(matches!(
        refused(&n, &p, Action::Counter(swapped)),
        StepError::Transition { .. }
    ));
    // A third party.
    let mallory = Identity::from_seed([3; 32]).unwrap();
    assert!(matches!(
        refused(&n, &mallory, Action::Terminate { reason: "x".into() }),
        StepError::NotAParty { .. }
    ));

    // Suspension: only the suspender resumes; terminated is final.
    let (mut n, _) = accepted();
    n.apply(
        &sign_step(
            &p,
            Some(&n),
            at,
            Action::Suspend {
                reason: "incident".into(),
            },
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(n.status(t("2026-12-02"), false), Status::Suspended);
    assert!(matches!(
        refused(&n, &c, Action::Resume),
        StepError::Transition { .. }
    ));
    n.apply(&sign_step(&p, Some(&n), at, Action::Resume).unwrap())
        .unwrap();
    assert_eq!(n.status(t("2026-12-02"), false), Status::Active);
    n.apply(
        &sign_step(
            &c,
            Some(&n),
            at,
            Action::Terminate {
                reason: "done".into(),
            },
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(n.phase, Phase::Terminated);
    assert!(matches!(
        refused(&n, &p, Action::Resume),
        StepError::Transition { .. }
    ));
    assert!(matches!(
        refused(
            &n,
            &p,
            Action::Terminate {
                reason: "again".into()
            }
        ),
        StepError::Transition { .. }
    ));
}

#[test]
fn any_changed_byte_of_a_transcript_is_detected() {
    let (_, steps) = accepted();
    let bytes = encode(&steps).unwrap();
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= bit;
            if let Ok(tampered) = decode::<Vec<Signed<Step>>>(&b) {
                assert!(
                    Negotiation::replay(&tampered).is_err(),
                    "flip of bit {bit:#x} at byte {i} went unnoticed"
                );
            }
        }
    }
    // Reordered or dropped steps are refused too.
    assert!(Negotiation::replay(&[steps[0].clone(), steps[2].clone()]).is_err());
    assert!(Negotiation::replay(&[steps[1].clone(), steps[0].clone()]).is_err());
    assert!(matches!(Negotiation::replay(&[]), Err(StepError::Empty)));
}

fn pull<'a>(
    who: &'a dxmesh_protocol::identity::PublicKey,
    epoch: u64,
    fields: &'a [String],
    used: u32,
) -> PullCheck<'a> {
    PullCheck {
        requester: who,
        admission: Admission::Admitted,
        epoch,
        fields,
        new_pull: true,
        pulls_used: used,
    }
}

#[test]
fn every_pull_refusal() {
    let (n, _) = accepted();
    let c = consumer().public();
    let fields = vec!["id_number".to_string(), "region_code".to_string()];
    let in_window = t("2026-12-03T10:00:00Z");
    assert_eq!(
        n.check_pull(in_window, false, &pull(&c, 0, &fields, 0)),
        Ok(())
    );
    // Wrong consumer.
    let p = provider().public();
    assert_eq!(
        n.check_pull(in_window, false, &pull(&p, 0, &fields, 0)),
        Err(Refusal::NotConsumer)
    );
    // Revoked consumer.
    let mut r = pull(&c, 0, &fields, 0);
    r.admission = Admission::Revoked;
    assert_eq!(
        n.check_pull(in_window, false, &r),
        Err(Refusal::NotAdmitted(Admission::Revoked))
    );
    // Proposed or countered, not accepted.
    let proposal = sign_step(
        &consumer(),
        None,
        t("2026-11-20"),
        Action::Propose(common::terms()),
    )
    .unwrap();
    let mut open = Negotiation::start(&proposal).unwrap();
    assert_eq!(
        open.check_pull(in_window, false, &pull(&c, 0, &fields, 0)),
        Err(Refusal::NotAccepted)
    );
    let counter = sign_step(
        &provider(),
        Some(&open),
        t("2026-11-21"),
        Action::Counter(common::terms()),
    )
    .unwrap();
    open.apply(&counter).unwrap();
    assert_eq!(
        open.check_pull(in_window, false, &pull(&c, 0, &fields, 0)),
        Err(Refusal::NotAccepted)
    );
    // Not yet active / expired / superseded.
    assert!(matches!(
        n.check_pull(t("2026-11-30"), false, &pull(&c, 0, &fields, 0)),
        Err(Refusal::NotYetActive { .. })
    ));
    assert!(matches!(
        n.check_pull(t("2027-12-02"), false, &pull(&c, 12, &fields, 0)),
        Err(Refusal::Expired { .. })
    ));
    assert_eq!(
        n.check_pull(in_window, true, &pull(&c, 0, &fields, 0)),
        Err(Refusal::Superseded)
    );
    // Epoch in the past; outside the window.
    let jan = t("2027-01-02T00:00:00Z");
    assert_eq!(
        n.check_pull(jan, false, &pull(&c, 0, &fields, 0)),
        Err(Refusal::EpochNotCurrent {
            requested: 0,
            current: Some(1)
        })
    );
    assert!(matches!(
        n.check_pull(t("2026-12-09"), false, &pull(&c, 0, &fields, 0)),
        Err(Refusal::OutsideWindow { epoch: 0, .. })
    ));
    // Over the pull maximum (max_pulls = 1 after the counter-offer); a resumed pull is fine.
    assert_eq!(
        n.check_pull(in_window, false, &pull(&c, 0, &fields, 1)),
        Err(Refusal::OverPullMaximum { max: 1 })
    );
    let mut resume = pull(&c, 0, &fields, 1);
    resume.new_pull = false;
    assert_eq!(n.check_pull(in_window, false, &resume), Ok(()));
    // Field out of scope.
    let wider = vec!["id_number".to_string(), "address".to_string()];
    assert_eq!(
        n.check_pull(in_window, false, &pull(&c, 0, &wider, 0)),
        Err(Refusal::FieldOutOfScope {
            field: "address".into()
        })
    );
    // Suspended and terminated.
    let (p_id, c_id) = (provider(), consumer());
    let mut s = n.clone();
    s.apply(
        &sign_step(
            &p_id,
            Some(&s),
            in_window,
            Action::Suspend { reason: "x".into() },
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        s.check_pull(in_window, false, &pull(&c, 0, &fields, 0)),
        Err(Refusal::Suspended)
    );
    s.apply(
        &sign_step(
            &c_id,
            Some(&s),
            in_window,
            Action::Terminate { reason: "x".into() },
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        s.check_pull(in_window, false, &pull(&c, 0, &fields, 0)),
        Err(Refusal::Terminated)
    );
}

#[test]
fn reconcile_adopts_the_authoritative_transcript_and_detects_forks() {
    let (n, steps) = accepted();
    assert_eq!(reconcile(&steps[..1], &steps).unwrap(), n);
    assert_eq!(reconcile(&steps, &steps).unwrap(), n);
    assert!(matches!(
        reconcile(&steps, &steps[..2]),
        Err(SyncError::Fork { at: 2 })
    ));
    let other = sign_step(
        &provider(),
        Some(&Negotiation::replay(&steps[..1]).unwrap()),
        t("2026-11-21"),
        Action::Terminate {
            reason: "no".into(),
        },
    )
    .unwrap();
    let forked = vec![steps[0].clone(), other];
    assert!(matches!(
        reconcile(&forked, &steps),
        Err(SyncError::Fork { at: 1 })
    ));
}

#[test]
fn invalid_terms_are_refused() {
    let mut bad = terms();
    bad.fields.push(FieldTerm {
        name: "phone".into(),
        treatment: Treatment::Token,
    });
    assert!(bad.validate().is_err(), "two token fields");
    let mut bad = terms();
    bad.not_after = bad.not_before;
    assert!(bad.validate().is_err());
    let mut bad = terms();
    bad.consumer = bad.provider;
    assert!(bad.validate().is_err());
    let mut bad = terms();
    bad.version = 2;
    assert!(
        bad.validate().is_err(),
        "version 2 must name what it supersedes"
    );
    let c = consumer();
    let s0 = sign_step(&c, None, t("2026-11-20"), Action::Propose(bad)).unwrap();
    assert!(matches!(
        Negotiation::start(&s0),
        Err(StepError::Terms { .. })
    ));
}

/// One party's move in the property test.
#[derive(Debug, Clone)]
enum Move {
    /// The provider takes an action (appends: it sequences the thread) and
    /// tells the consumer; the message may be lost.
    Provider(u8, bool),
    /// The consumer signs an action on its view and sends it; the provider
    /// applies it if it still follows; either message may be lost.
    Consumer(u8, bool, bool),
    /// The two reconnect and reconcile.
    Sync,
}

fn action(code: u8, n: &Negotiation, me: &Identity) -> Action {
    match code % 6 {
        0 => {
            let mut t2 = n.terms.clone();
            t2.retention_days = t2.retention_days % 365 + 1;
            Action::Counter(t2)
        }
        1 => Action::Accept {
            agreement: n.terms.id(),
        },
        2 => Action::Suspend {
            reason: format!("by {}", me.public()),
        },
        3 => Action::Resume,
        4 => Action::Terminate {
            reason: "end".into(),
        },
        _ => Action::Accept { agreement: [0; 32] },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn the_two_sides_never_end_in_different_states(moves in proptest::collection::vec(
        prop_oneof![
            (any::<u8>(), any::<bool>()).prop_map(|(a, d)| Move::Provider(a, d)),
            (any::<u8>(), any::<bool>(), any::<bool>()).prop_map(|(a, d, r)| Move::Consumer(a, d, r)),
            Just(Move::Sync),
        ],
        0..40,
    )) {
        let (p, c) = (provider(), consumer());
        let s0 = sign_step(&c, None, t("2026-11-20"), Action::Propose(terms())).unwrap();
        // The proposal reached the provider (the sequencer) and was acknowledged.
        let mut prov: Vec<Signed<Step>> = vec![s0.clone()];
        let mut cons: Vec<Signed<Step>> = vec![s0];
        let at = t("2026-11-21");
        for m in moves {
            match m {
                Move::Provider(a, delivered) => {
                    let n = Negotiation::replay(&prov).unwrap();
                    let s = sign_step(&p, Some(&n), at, action(a, &n, &p)).unwrap();
                    if n.clone().apply(&s).is_ok() {
                        prov.push(s.clone());
                        // The consumer appends only what follows its own head.
                        let cn = Negotiation::replay(&cons).unwrap();
                        if delivered && cn.clone().apply(&s).is_ok() {
                            cons.push(s);
                        }
                    }
                }
                Move::Consumer(a, delivered, replied) => {
                    let cn = Negotiation::replay(&cons).unwrap();
                    let s = sign_step(&c, Some(&cn), at, action(a, &cn, &c)).unwrap();
                    if cn.clone().apply(&s).is_err() {
                        continue; // refused locally, never sent
                    }
                    if delivered {
                        let mut pn = Negotiation::replay(&prov).unwrap();
                        if pn.apply(&s).is_ok() {
                            prov.push(s.clone());
                            if replied {
                                cons.push(s);
                            }
                        }
                    }
                }
                Move::Sync => {
                    reconcile(&cons, &prov).unwrap();
                    cons = prov.clone();
                }
            }
            // At every moment the consumer's transcript is a prefix of the provider's.
            prop_assert!(reconcile(&cons, &prov).is_ok());
        }
        // The consumer catches up as a node does: from its own state, it
        // applies the provider's steps it lacks one by one, and ends in the
        // provider's state (what the provider's transcript replays to).
        let mut state = Negotiation::replay(&cons).unwrap();
        prop_assert!(reconcile(&cons, &prov).is_ok());
        for (i, s) in prov.iter().enumerate().skip(cons.len()) {
            prop_assert!(state.apply(s).is_ok(), "step {} refused by the consumer", i);
        }
        prop_assert_eq!(state, Negotiation::replay(&prov).unwrap());
    }
}

/// A transcript longer than an agreement may be (a member asking for a
/// group key with 90,000 signed suspend/resume steps, to stall the key
/// custodian) is refused before any step is checked.
#[test]
fn a_transcript_too_long_is_refused_unread() {
    use dxmesh_protocol::agreement::{MAX_TRANSCRIPT_STEPS, StepError};
    let (_, steps) = common::accepted();
    let long: Vec<_> = steps
        .iter()
        .cycle()
        .take(MAX_TRANSCRIPT_STEPS + 1)
        .cloned()
        .collect();
    assert_eq!(
        dxmesh_protocol::agreement::Negotiation::replay(&long).unwrap_err(),
        StepError::TooLong {
            steps: MAX_TRANSCRIPT_STEPS + 1
        }
    );
    // A transcript of the largest allowed length is read (and here fails
    // on its fourth step, a repeat, not on its length).
    let most: Vec<_> = long[..MAX_TRANSCRIPT_STEPS].to_vec();
    assert!(!matches!(
        dxmesh_protocol::agreement::Negotiation::replay(&most),
        Err(StepError::TooLong { .. })
    ));
}
