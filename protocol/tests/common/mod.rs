//! Shared fixtures of the agreement tests: the two parties, dates, the
//! household registry terms of docs/agreements.md, and an accepted
//! negotiation of them (with a counter-offer).

// Each test file uses its own part of the fixtures.
#![allow(dead_code)]

use dxmesh_protocol::agreement::{
    Action, AgreedInput, AgreedJob, DisclosureTerms, FieldTerm, Negotiation, RowPredicate, Step,
    Terms, Treatment, sign_step,
};
use dxmesh_protocol::cycle::{Cycle, Period};
use dxmesh_protocol::date::Date;
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;

pub fn provider() -> Identity {
    Identity::from_seed([1; 32]).unwrap()
}
pub fn consumer() -> Identity {
    Identity::from_seed([2; 32]).unwrap()
}

pub fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// The household registry feed of docs/agreements.md.
pub fn terms() -> Terms {
    Terms {
        provider: provider().public(),
        consumer: consumer().public(),
        dataset: "registry".into(),
        fields: vec![
            FieldTerm {
                name: "id_number".into(),
                treatment: Treatment::Token,
            },
            FieldTerm {
                name: "name".into(),
                treatment: Treatment::AttrToken,
            },
            FieldTerm {
                name: "birth_date".into(),
                treatment: Treatment::AttrToken,
            },
            FieldTerm {
                name: "region_code".into(),
                treatment: Treatment::Clear,
            },
        ],
        rows: vec![
            RowPredicate::Equals {
                field: "status".into(),
                value: "active".into(),
            },
            RowPredicate::AgeAtLeast { years: 16 },
        ],
        purpose_code: "registration/uninsured-outreach".into(),
        purpose: "Find registered residents without social insurance.".into(),
        token_group: "registration".into(),
        cycle: Cycle {
            period: Period::Months(1),
            anchor: Date::new(2026, 12, 1).unwrap(),
            window_secs: 7 * 86_400,
            max_pulls: 2,
        },
        disclosure: DisclosureTerms {
            fields: vec!["id_number".into(), "name".into(), "address".into()],
            inputs: vec![AgreedInput {
                name: "registry".into(),
                dataset: "registry".into(),
                provider: "public_security".into(),
                filter: vec![],
            }],
            jobs: vec![AgreedJob {
                kind: "uninsured".into(),
                expr: "(registry - other_province)".into(),
                inputs: vec!["registry".into()],
                fields: vec![],
                candidates: None,
            }],
            max_records_per_epoch: 100,
        },
        retention_days: 90,
        not_before: t("2026-12-01"),
        not_after: t("2027-12-01"),
        version: 1,
        supersedes: None,
    }
}

pub fn accepted() -> (Negotiation, Vec<Signed<Step>>) {
    let (p, c) = (provider(), consumer());
    let s0 = sign_step(&c, None, t("2026-11-20"), Action::Propose(terms())).unwrap();
    let mut n = Negotiation::start(&s0).unwrap();
    let mut countered = terms();
    countered.cycle.max_pulls = 1;
    let s1 = sign_step(
        &p,
        Some(&n),
        t("2026-11-21"),
        Action::Counter(countered.clone()),
    )
    .unwrap();
    n.apply(&s1).unwrap();
    let s2 = sign_step(
        &c,
        Some(&n),
        t("2026-11-22"),
        Action::Accept {
            agreement: countered.id(),
        },
    )
    .unwrap();
    n.apply(&s2).unwrap();
    (n, vec![s0, s1, s2])
}
