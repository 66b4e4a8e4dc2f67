//! Agreement terms as people write them: a TOML file (`--terms FILE.toml`)
//! read into the protocol's [`Terms`], with errors naming the file, line and
//! field. The parties are PeerIds; either may be left out and filled from
//! the command line (`--to`) and the local node's identity.
//!
//! ```toml
//! dataset = "registry"
//! token_group = "registration"
//! purpose_code = "registration/uninsured-outreach"
//! purpose = "Find registered residents without social insurance."
//! not_before = "2026-12-01"
//! not_after = "2027-12-01"
//! retention_days = 90
//! fields = [
//!   { name = "id_number", treatment = "token" },
//!   { name = "name", treatment = "attr_token" },
//!   { name = "region_code", treatment = "clear" },
//! ]
//! rows = [ { equals = { field = "status", value = "active" } }, { age_at_least = 16 } ]
//! [cycle]
//! period = "monthly"      # daily, weekly, monthly, quarterly, yearly, or ISO 8601 (P14D, P2M)
//! anchor = "2026-12-01"
//! window = "P7D"          # pull window after each epoch start
//! max_pulls = 2
//! [disclosure]
//! fields = ["id_number", "name", "address"]
//! max_records_per_epoch = 100000
//! [disclosure.inputs.registry]
//! dataset = "registry"
//! provider = "public_security"
//! [disclosure.inputs.insured]
//! dataset = "insured"
//! provider = "hr"
//! where = { insurance_type = ["enterprise_pension", "resident_pension"] }
//! [[disclosure.jobs]]      # the results that may be disclosed, each with its job
//! kind = "uninsured_candidates"   # asked of the ministry: ID numbers only
//! expr = "registry - insured - other_province"
//! fields = ["id_number"]
//! [[disclosure.jobs]]
//! kind = "uninsured"
//! expr = "registry - insured - other_province"
//! candidates = "uninsured_candidates"   # subtracts the ministry's answer about them
//! ```
//!
//! Job expressions are those of a comparison job file (`deploy/jobs.toml`)
//! over the inputs defined here and the jobs listed before; the terms hold
//! them in canonical form ([`crate::compare::agreed`]), which is what a
//! comparator's result commitment must state.

use crate::compare::agreed::agreed_jobs;
use crate::compare::jobs::InputSpec;
use crate::trust::roster_file::key_of_peer_id;
use dxmesh_protocol::agreement::{DisclosureTerms, FieldTerm, RowPredicate, Terms, Treatment};
use dxmesh_protocol::cycle::{Cycle, Period, format_duration_secs, parse_duration_secs};
use dxmesh_protocol::date::Date;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a terms file was refused.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}", path = .path.display())]
pub struct TermsFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// The TOML form of the terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermsFile {
    /// Provider PeerId (default: decided by the command).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Consumer PeerId (default: decided by the command).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    /// Dataset at the provider.
    pub dataset: String,
    /// Token group.
    pub token_group: String,
    /// Purpose code.
    pub purpose_code: String,
    /// Purpose sentence.
    pub purpose: String,
    /// RFC 3339 or date.
    pub not_before: String,
    /// RFC 3339 or date.
    pub not_after: String,
    /// Days results may be kept.
    pub retention_days: u32,
    /// Version (default 1).
    #[serde(default = "one")]
    pub version: u32,
    /// Hex id of the agreement this one replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<String>,
    /// Feed fields.
    pub fields: Vec<FieldFile>,
    /// Row scope.
    #[serde(default)]
    pub rows: Vec<RowFile>,
    /// Cycle.
    pub cycle: CycleFile,
    /// Disclosure.
    pub disclosure: DisclosureFile,
}

fn one() -> u32 {
    1
}

/// A field and its treatment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldFile {
    /// Name.
    pub name: String,
    /// Treatment.
    pub treatment: Treatment,
}

/// A row predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RowFile {
    /// `{ equals = { field, value } }`
    Equals {
        /// Field.
        field: String,
        /// Value.
        value: String,
    },
    /// `{ in = { field, values } }`
    In {
        /// Field.
        field: String,
        /// Values.
        values: Vec<String>,
    },
    /// `{ age_at_least = N }`
    AgeAtLeast(u32),
    /// `{ age_at_most = N }`
    AgeAtMost(u32),
    /// `{ within_days = { field, days } }`
    WithinDays {
        /// Date field.
        field: String,
        /// Days.
        days: u32,
    },
}

/// `[cycle]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CycleFile {
    /// Period.
    pub period: String,
    /// Anchor date.
    pub anchor: String,
    /// Pull window (ISO 8601 duration).
    pub window: String,
    /// Pulls per epoch.
    pub max_pulls: u32,
}

/// `[disclosure]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisclosureFile {
    /// Fields.
    #[serde(default)]
    pub fields: Vec<String>,
    /// Quota.
    #[serde(default)]
    pub max_records_per_epoch: u64,
    /// The inputs the jobs read, by name.
    #[serde(default)]
    pub inputs: BTreeMap<String, InputSpec>,
    /// The jobs whose results may be disclosed, in order.
    #[serde(default)]
    pub jobs: Vec<JobEntry>,
}

/// `[[disclosure.jobs]]`: a result kind and its expression, optionally
/// the fields its results may disclose and the candidates job whose
/// ministry answer it subtracts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobEntry {
    /// Result kind.
    pub kind: String,
    /// Expression over the inputs, earlier jobs and `other_province`.
    pub expr: String,
    /// The fields a disclosure of its results may return (empty: any
    /// disclosure field).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// The agreed job whose result the ministry was asked about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates: Option<String>,
}

impl TermsFile {
    /// Reads a terms file.
    pub fn load(path: &Path) -> Result<TermsFile, TermsFileError> {
        let err = |message: String| TermsFileError {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        toml::from_str(&text).map_err(|e| err(e.to_string().trim_end().to_string()))
    }

    /// Builds the terms. Missing parties come from `default_provider` / `default_consumer`.
    pub fn to_terms(
        &self,
        path: &Path,
        default_provider: Option<PublicKey>,
        default_consumer: Option<PublicKey>,
    ) -> Result<Terms, TermsFileError> {
        let err = |message: String| TermsFileError {
            path: path.to_path_buf(),
            message,
        };
        let party = |name: &str, given: &Option<String>, default: Option<PublicKey>| match given {
            Some(p) => key_of_peer_id(p).map_err(|e| err(format!("field `{name}`: {e}"))),
            None => default.ok_or_else(|| err(format!("field `{name}` is missing"))),
        };
        let time = |name: &str, v: &str| {
            Timestamp::parse(v).map_err(|e| err(format!("field `{name}`: {e}")))
        };
        let rows = self
            .rows
            .iter()
            .map(|r| match r.clone() {
                RowFile::Equals { field, value } => RowPredicate::Equals { field, value },
                RowFile::In { field, values } => RowPredicate::In { field, values },
                RowFile::AgeAtLeast(years) => RowPredicate::AgeAtLeast { years },
                RowFile::AgeAtMost(years) => RowPredicate::AgeAtMost { years },
                RowFile::WithinDays { field, days } => RowPredicate::WithinDays { field, days },
            })
            .collect();
        let supersedes = match &self.supersedes {
            None => None,
            Some(h) => {
                let bytes = hex::decode(h).map_err(|e| err(format!("field `supersedes`: {e}")))?;
                Some(<[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                    err("field `supersedes`: must be a 64-hex-digit agreement id".into())
                })?)
            }
        };
        let terms = Terms {
            provider: party("provider", &self.provider, default_provider)?,
            consumer: party("consumer", &self.consumer, default_consumer)?,
            dataset: self.dataset.clone(),
            fields: self
                .fields
                .iter()
                .map(|f| FieldTerm {
                    name: f.name.clone(),
                    treatment: f.treatment,
                })
                .collect(),
            rows,
            purpose_code: self.purpose_code.clone(),
            purpose: self.purpose.clone(),
            token_group: self.token_group.clone(),
            cycle: Cycle {
                period: Period::parse(&self.cycle.period)
                    .map_err(|e| err(format!("field `cycle.period`: {e}")))?,
                anchor: Date::parse(&self.cycle.anchor)
                    .map_err(|e| err(format!("field `cycle.anchor`: {e}")))?,
                window_secs: parse_duration_secs(&self.cycle.window)
                    .map_err(|e| err(format!("field `cycle.window`: {e}")))?,
                max_pulls: self.cycle.max_pulls,
            },
            disclosure: self.disclosure_terms(path)?,
            retention_days: self.retention_days,
            not_before: time("not_before", &self.not_before)?,
            not_after: time("not_after", &self.not_after)?,
            version: self.version,
            supersedes,
        };
        terms.validate().map_err(|e| err(e.to_string()))?;
        Ok(terms)
    }

    /// The TOML form of `terms` (for `show`, and to start a counter-offer from).
    pub fn from_terms(terms: &Terms) -> TermsFile {
        TermsFile {
            provider: Some(terms.provider.peer_id().to_string()),
            consumer: Some(terms.consumer.peer_id().to_string()),
            dataset: terms.dataset.clone(),
            token_group: terms.token_group.clone(),
            purpose_code: terms.purpose_code.clone(),
            purpose: terms.purpose.clone(),
            not_before: terms.not_before.to_string(),
            not_after: terms.not_after.to_string(),
            retention_days: terms.retention_days,
            version: terms.version,
            supersedes: terms.supersedes.map(|h| dxmesh_protocol::hex(&h)),
            fields: terms
                .fields
                .iter()
                .map(|f| FieldFile {
                    name: f.name.clone(),
                    treatment: f.treatment,
                })
                .collect(),
            rows: terms
                .rows
                .iter()
                .map(|r| match r.clone() {
                    RowPredicate::Equals { field, value } => RowFile::Equals { field, value },
                    RowPredicate::In { field, values } => RowFile::In { field, values },
                    RowPredicate::AgeAtLeast { years } => RowFile::AgeAtLeast(years),
                    RowPredicate::AgeAtMost { years } => RowFile::AgeAtMost(years),
                    RowPredicate::WithinDays { field, days } => RowFile::WithinDays { field, days },
                })
                .collect(),
            cycle: CycleFile {
                period: terms.cycle.period.to_iso(),
                anchor: terms.cycle.anchor.to_string(),
                window: format_duration_secs(terms.cycle.window_secs),
                max_pulls: terms.cycle.max_pulls,
            },
            disclosure: DisclosureFile {
                fields: terms.disclosure.fields.clone(),
                max_records_per_epoch: terms.disclosure.max_records_per_epoch,
                inputs: terms
                    .disclosure
                    .inputs
                    .iter()
                    .map(|i| {
                        let spec = InputSpec {
                            dataset: i.dataset.clone(),
                            provider: i.provider.clone(),
                            filter: i.filter.iter().cloned().collect(),
                        };
                        (i.name.clone(), spec)
                    })
                    .collect(),
                jobs: terms
                    .disclosure
                    .jobs
                    .iter()
                    .map(|j| JobEntry {
                        kind: j.kind.clone(),
                        expr: j.expr.clone(),
                        fields: j.fields.clone(),
                        candidates: j.candidates.clone(),
                    })
                    .collect(),
            },
        }
    }

    /// The disclosure terms, with each job's expression in canonical form.
    fn disclosure_terms(&self, path: &Path) -> Result<DisclosureTerms, TermsFileError> {
        let d = &self.disclosure;
        let jobs: Vec<(String, String)> = d
            .jobs
            .iter()
            .map(|j| (j.kind.clone(), j.expr.clone()))
            .collect();
        let (inputs, mut jobs) =
            agreed_jobs(path, &d.inputs, &jobs).map_err(|m| TermsFileError {
                path: path.to_path_buf(),
                message: format!("disclosure.jobs: {m}"),
            })?;
        for job in &mut jobs {
            if let Some(entry) = d.jobs.iter().find(|e| e.kind == job.kind) {
                job.fields = entry.fields.clone();
                job.candidates = entry.candidates.clone();
            }
        }
        Ok(DisclosureTerms {
            fields: d.fields.clone(),
            inputs,
            jobs,
            max_records_per_epoch: d.max_records_per_epoch,
        })
    }

    /// As TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("terms serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dxmesh_protocol::identity::Identity;

    pub(crate) const EXAMPLE: &str = r#"
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
  { name = "birth_date", treatment = "attr_token" },
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
max_records_per_epoch = 100000
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
[[disclosure.jobs]]
kind = "name_conflicts"
expr = "attr_mismatch(registry.name, insured.name)"
"#;

    #[test]
    fn the_documented_example_parses_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("terms.toml");
        std::fs::write(&path, EXAMPLE).unwrap();
        let p = Identity::from_seed([1; 32]).unwrap().public();
        let c = Identity::from_seed([2; 32]).unwrap().public();
        let terms = TermsFile::load(&path)
            .unwrap()
            .to_terms(&path, Some(p), Some(c))
            .unwrap();
        assert_eq!(terms.cycle.period, Period::Months(1));
        assert_eq!(terms.cycle.window_secs, 7 * 86_400);
        assert_eq!(terms.rows.len(), 2);
        assert_eq!(
            terms.disclosure.jobs[0].expr,
            "((registry - insured) - other_province)"
        );
        assert_eq!(
            terms.disclosure.inputs[0].filter,
            [(
                "insurance_type".to_string(),
                vec![
                    "enterprise_pension".to_string(),
                    "resident_pension".to_string()
                ]
            )]
        );
        let back = TermsFile::from_terms(&terms);
        std::fs::write(&path, back.to_toml()).unwrap();
        let again = TermsFile::load(&path)
            .unwrap()
            .to_terms(&path, None, None)
            .unwrap();
        assert_eq!(again, terms);
        assert_eq!(again.id(), terms.id());
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("terms.toml");
        let p = Identity::from_seed([1; 32]).unwrap().public();
        let c = Identity::from_seed([2; 32]).unwrap().public();
        std::fs::write(&path, EXAMPLE.replace("P7D", "a week")).unwrap();
        let e = TermsFile::load(&path)
            .unwrap()
            .to_terms(&path, Some(p), Some(c))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("terms.toml") && e.contains("cycle.window"),
            "{e}"
        );
        std::fs::write(&path, EXAMPLE.replace("\"clear\"", "\"plain\"")).unwrap();
        let e = TermsFile::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("terms.toml") && e.contains("line") && e.contains("plain"),
            "{e}"
        );
        std::fs::write(&path, EXAMPLE).unwrap();
        let e = TermsFile::load(&path)
            .unwrap()
            .to_terms(&path, Some(p), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("consumer"), "{e}");
    }
}
