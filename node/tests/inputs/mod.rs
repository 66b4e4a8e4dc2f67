//! The files of `prop_inputs.rs`: an evidence bundle built and signed for
//! real (`Identity::from_seed`), random roster drafts, terms files and
//! department exports, the damage done to files (bytes overwritten,
//! inserted, cut off), and the import run as `dxmesh dataset import` runs
//! it.

mod bundle;
mod exports;

pub use bundle::bundle;
pub use exports::{csv_exports, import_fails_or_accounts, import_rows};

use dxmesh_node::agreements::terms_file::{JobEntry, TermsFile};
use dxmesh_node::trust::roster_file::{Draft, DraftMember};
use dxmesh_protocol::identity::{Identity, PublicKey};
use dxmesh_protocol::roster::Role;
use dxmesh_protocol::time::Timestamp;
use proptest::prelude::*;
use proptest::sample::Index;
use std::path::Path;

pub fn party_identity(seed: u8) -> Identity {
    Identity::from_seed([seed; 32]).expect("any seed is accepted")
}

pub fn party(seed: u8) -> PublicKey {
    party_identity(seed).public()
}

/// The trust anchor the fixture bundle's roster chain starts from, as a
/// security officer holds it.
pub fn anchor() -> PublicKey {
    party(1)
}

/// Text as files may hold it: ASCII, Chinese, quotes, controls, newlines.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_]{0,12}",
        "\\PC{0,12}",
        "[\\x00-\\x7f张伟\u{3000}\n\r\"']{0,16}"
    ]
}

/// Text made of TOML's punctuation, keys and values.
pub fn toml_like() -> impl Strategy<Value = String> {
    "[a-z_=\\[\\]\"'{},.0-9 \n#-]{0,200}"
}

/// Bytes overwritten, inserted and cut off.
#[derive(Debug, Clone)]
pub struct Damage {
    overwrite: Vec<(Index, u8)>,
    insert: Vec<(Index, u8)>,
    cut: Option<Index>,
}

pub fn damages() -> impl Strategy<Value = Damage> {
    (
        prop::collection::vec((any::<Index>(), any::<u8>()), 0..4),
        prop::collection::vec((any::<Index>(), any::<u8>()), 0..3),
        prop::option::weighted(0.3, any::<Index>()),
    )
        .prop_map(|(overwrite, insert, cut)| Damage {
            overwrite,
            insert,
            cut,
        })
}

impl Damage {
    pub fn apply(&self, valid: &[u8]) -> Vec<u8> {
        let mut b = valid.to_vec();
        if !b.is_empty() {
            for (at, v) in &self.overwrite {
                let i = at.index(b.len());
                b[i] = *v;
            }
        }
        for (at, v) in &self.insert {
            let i = at.index(b.len() + 1);
            b.insert(i, *v);
        }
        if let Some(cut) = &self.cut {
            b.truncate(cut.index(b.len() + 1));
        }
        b
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let (p, t) = (e.path(), to.join(e.file_name()));
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

/// Every file below `dir`, relative to it, sorted.
fn files_below(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let rel = format!("{prefix}{}", e.file_name().to_string_lossy());
        if e.path().is_dir() {
            files_below(&e.path(), &format!("{rel}/"), out);
        } else {
            out.push(rel);
        }
    }
    out.sort();
}

// ---- Terms ----

/// Terms as a department writes them (docs/agreements.md).
pub const TERMS: &str = r#"
dataset = "registry"
token_group = "registration"
purpose_code = "registration/uninsured-outreach"
purpose = "Find registered residents without social insurance."
not_before = "2026-12-01"
not_after = "2027-12-01"
retention_days = 90
fields = [
  { name = "id_number", treatment = "token" },
  { name = "name", treatment = "attr_token" },
  { name = "region_code", treatment = "clear" },
]
rows = [ { equals = { field = "status", value = "active" } }, { age_at_least = 16 } ]
[cycle]
period = "monthly"
anchor = "2026-12-01"
window = "P7D"
max_pulls = 2
[disclosure]
fields = ["id_number", "name", "address"]
max_records_per_epoch = 1000
[disclosure.inputs.registry]
dataset = "registry"
provider = "public_security"
[disclosure.inputs.insured]
dataset = "insured"
provider = "hr"
where = { insurance_type = ["resident_pension", "enterprise_pension"] }
[[disclosure.jobs]]
kind = "uninsured"
expr = "registry - insured - other_province"
"#;

/// Job expressions: names, operators, parentheses and `attr_mismatch`,
/// and deeply nested or long ones.
fn exprs() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "registry",
        "insured",
        "other_province",
        "uninsured",
        "(",
        ")",
        " - ",
        " | ",
        " & ",
        "attr_mismatch(registry.name, insured.name)",
        "attr_mismatch(",
        ",",
        ".",
        "名",
    ]);
    prop_oneof![
        4 => prop::collection::vec(token, 0..10).prop_map(|t| t.concat()),
        1 => (1..3000usize).prop_map(|d| format!("{}registry{}", "(".repeat(d), ")".repeat(d))),
        1 => (1..3000usize).prop_map(|n| vec!["registry"; n].join(" - ")),
    ]
}

/// The terms of [`TERMS`] with random text, names, cycle and jobs.
pub fn terms_files() -> impl Strategy<Value = TermsFile> {
    let period = prop_oneof![
        prop::sample::select(vec!["monthly", "P14D", "P2W", "weekly", "P1Y"])
            .prop_map(String::from),
        text(),
    ];
    let window = prop_oneof![
        prop::sample::select(vec!["P7D", "PT12H", "P1DT6H30M"]).prop_map(String::from),
        text(),
    ];
    (
        (text(), text(), "[a-z_]{1,10}|\\PC{0,6}"),
        (period, window, "2026-12-0[1-9]|\\PC{0,10}"),
        prop::collection::vec(("[a-z_]{1,10}|\\PC{0,4}", exprs()), 0..3),
        (any::<u32>(), "2027-0[1-9]-01|\\PC{0,10}"),
    )
        .prop_map(
            |((purpose, purpose_code, dataset), (period, window, anchor), jobs, (pulls, until))| {
                let mut f: TermsFile = toml::from_str(TERMS).expect("the example parses");
                f.purpose = purpose;
                f.purpose_code = purpose_code;
                f.dataset = dataset;
                f.cycle.period = period;
                f.cycle.window = window;
                f.cycle.anchor = anchor;
                f.cycle.max_pulls = pulls;
                f.not_after = until;
                f.disclosure
                    .jobs
                    .extend(jobs.into_iter().map(|(kind, expr)| JobEntry {
                        kind,
                        expr,
                        fields: vec![],
                        candidates: None,
                    }));
                f
            },
        )
}

// ---- Roster drafts ----

/// A PeerId of a party, or text that may not be one.
fn peer_ids() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (1..8u8).prop_map(|s| party(s).peer_id().to_string()),
        1 => text(),
    ]
}

/// A validity bound: a date, an RFC 3339 time, or text.
fn times() -> impl Strategy<Value = String> {
    prop_oneof![
        (1..=9999u32, 1..=12u32, 1..=28u32).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        (0..=253_402_300_799u64).prop_map(|s| Timestamp(s).to_string()),
        text(),
    ]
}

pub fn drafts() -> impl Strategy<Value = Draft> {
    let member = (
        peer_ids(),
        (text(), 0..3usize, text()),
        prop::collection::vec(text(), 0..2),
        (times(), times()),
    )
        .prop_map(
            |(peer_id, (department, role, display_name), addresses, (from, until))| DraftMember {
                peer_id,
                department,
                role: [Role::Provider, Role::Comparator, Role::Ministry][role],
                display_name,
                addresses,
                valid_from: from,
                valid_until: until,
            },
        );
    (
        (text(), 0..3u64),
        prop::option::of(prop_oneof!["[0-9a-f]{64}", text()]),
        prop::collection::vec(peer_ids(), 0..2),
        prop::collection::vec(member, 0..4),
    )
        .prop_map(|((mesh, version), previous, revoked, members)| Draft {
            mesh,
            version,
            previous,
            revoked,
            members,
        })
}
