//! The verification report: what was checked in each bundle, how many
//! times each check passed, and every failure found, naming the bundle and
//! entry. Rendered as text for `dxmesh audit verify` and serialised as its
//! `--json` output.

use serde::Serialize;
use std::collections::BTreeMap;

/// One finding.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    /// Bundle (node PeerId).
    pub bundle: String,
    /// Entry sequence number, when the finding is about an entry.
    pub entry: Option<u64>,
    /// What failed.
    pub problem: String,
}

/// The verification report.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    /// Bundles checked: PeerId -> (department, entries, checkpoints, cosignatures).
    pub bundles: BTreeMap<String, BundleSummary>,
    /// Checks passed, by name.
    pub checks: BTreeMap<String, u64>,
    /// Failures.
    pub failures: Vec<Finding>,
}

/// Per-bundle counts.
#[derive(Debug, Clone, Serialize, Default)]
pub struct BundleSummary {
    /// Department.
    pub department: String,
    /// Entries.
    pub entries: u64,
    /// Checkpoints verified.
    pub checkpoints: u64,
    /// Cosignatures verified.
    pub cosignatures: u64,
    /// Agreement transcripts verified.
    pub transcripts: u64,
}

impl Report {
    /// Whether everything verified.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// Counts one pass of `check`.
    pub(super) fn pass(&mut self, check: &str) {
        *self.checks.entry(check.to_string()).or_default() += 1;
    }

    /// Records a failure in `bundle` (at `entry`, if about one).
    pub(super) fn fail(&mut self, bundle: &str, entry: Option<u64>, problem: String) {
        self.failures.push(Finding {
            bundle: bundle.to_string(),
            entry,
            problem,
        });
    }

    /// A readable report.
    pub fn render(&self) -> String {
        let mut out = String::from("dxmesh audit verification\n\n");
        for (peer, b) in &self.bundles {
            out.push_str(&format!(
                "bundle {peer} ({}): {} entries, {} checkpoints, {} cosignatures, {} agreement transcripts\n",
                b.department, b.entries, b.checkpoints, b.cosignatures, b.transcripts
            ));
        }
        out.push_str("\nchecks passed:\n");
        for (c, n) in &self.checks {
            out.push_str(&format!("  {c:<48} {n}\n"));
        }
        if self.failures.is_empty() {
            out.push_str("\nVERDICT: OK — every signature, log, pull and disclosure verified\n");
        } else {
            out.push_str(&format!(
                "\nVERDICT: FAILED — {} problem(s):\n",
                self.failures.len()
            ));
            for f in &self.failures {
                match f.entry {
                    Some(e) => out.push_str(&format!("  {} entry {e}: {}\n", f.bundle, f.problem)),
                    None => out.push_str(&format!("  {}: {}\n", f.bundle, f.problem)),
                }
            }
        }
        out
    }
}
