//! The options, the report and the error of [`synth`](super::synth), and the
//! files it writes (paths relative to the output directory, with their
//! headers): the public vocabulary of the generator, shared by every other
//! file of it.

use dxmesh_protocol::date::Date;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// Largest number of residents [`synth`](super::synth) accepts (more than any province has).
pub const MAX_RESIDENTS: u64 = 200_000_000;

/// The department files, relative to the output directory, with their headers.
pub const DEPARTMENT_FILES: [(&str, &str); 6] = [
    (REGISTRY.0, REGISTRY.1),
    (CIVIL_DEATHS.0, CIVIL_DEATHS.1),
    (HEALTH_DEATHS.0, HEALTH_DEATHS.1),
    (DISABILITY.0, DISABILITY.1),
    (HR.0, HR.1),
    (NATIONAL.0, NATIONAL.1),
];

/// The expected-result CSV files, relative to the output directory, with their headers.
pub const EXPECTED_FILES: [(&str, &str); 5] = [
    (UNINSURED.0, UNINSURED.1),
    (DECEASED_INSURED.0, DECEASED_INSURED.1),
    (DISABLED_UNINSURED.0, DISABLED_UNINSURED.1),
    (NAME_CONFLICTS.0, NAME_CONFLICTS.1),
    (COVERAGE.0, COVERAGE.1),
];

/// The summary file (the [`SynthReport`] as JSON), relative to the output directory.
pub const SUMMARY_FILE: &str = "expected/summary.json";

pub(super) const REGISTRY: (&str, &str) = (
    "public_security/registry.csv",
    "id_number,name,gender,birth_date,region_code,address,status",
);
pub(super) const CIVIL_DEATHS: (&str, &str) =
    ("civil_affairs/deaths.csv", "id_number,name,death_date");
pub(super) const HEALTH_DEATHS: (&str, &str) = ("health/deaths.csv", "id_number,death_date");
pub(super) const DISABILITY: (&str, &str) = (
    "disabled_federation/register.csv",
    "id_number,name,category,level,certificate_date",
);
pub(super) const HR: (&str, &str) = (
    "hr/insured.csv",
    "id_number,name,insurance_type,status,since",
);
pub(super) const NATIONAL: (&str, &str) = (
    "ministry/national.csv",
    "id_number,province_code,insurance_type",
);
pub(super) const UNINSURED: (&str, &str) = ("expected/uninsured.csv", "id_number,name,address");
pub(super) const DECEASED_INSURED: (&str, &str) = (
    "expected/deceased_insured.csv",
    "id_number,name,insurance_type",
);
pub(super) const DISABLED_UNINSURED: (&str, &str) =
    ("expected/disabled_uninsured.csv", "id_number,name,address");
pub(super) const NAME_CONFLICTS: (&str, &str) = ("expected/name_conflicts.csv", "id_number,name");
pub(super) const COVERAGE: (&str, &str) = ("expected/coverage.csv", "region_code,eligible,covered");

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthOptions {
    /// Residents in the household registry (at most [`MAX_RESIDENTS`]).
    pub residents: u64,
    /// Output directory (created if missing; files in it are overwritten).
    pub out: PathBuf,
    /// Seed: the same options give byte-identical files.
    pub seed: u64,
    /// The cycle's reference date (1980-01-01 or later): ages and recent
    /// deaths are relative to it, and no one is born after it.
    pub reference: Date,
    /// Two-digit code of the home province (`"44"`).
    pub home_province: String,
    /// The cycle to write: 0 is the population at `reference`; cycle `k`
    /// is the same people `k * period_days` days later, with each
    /// period's changes applied (deaths, new insurance, moves out of the
    /// province; 16th birthdays come with the date), and the expected
    /// results of that day.
    pub cycle: u32,
    /// Days from one cycle to the next.
    pub period_days: u32,
}

/// Sizes of the expected result sets (distinct ID numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ExpectedCounts {
    /// IDs with an active registry row, aged 16 or more at the reference date.
    pub registry_scope: u64,
    /// IDs in a death register.
    pub deceased: u64,
    /// IDs with an active pension row in HR.
    pub pension_insured: u64,
    /// IDs with a pension in the ministry index under another province.
    pub other_province: u64,
    /// IDs in the uninsured list.
    pub uninsured: u64,
    /// IDs in the deceased-but-insured list.
    pub deceased_insured: u64,
    /// IDs in the disabled-and-uninsured list.
    pub disabled_uninsured: u64,
    /// IDs in the name-conflict list.
    pub name_conflicts: u64,
    /// IDs that only the ministry index removes from the uninsured list.
    pub removed_other_province: u64,
}

/// What [`synth`](super::synth) wrote; also written as `expected/summary.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SynthReport {
    /// The seed.
    pub seed: u64,
    /// Residents generated (registry people; workers from elsewhere come on top).
    pub residents: u64,
    /// The reference date of the cycle written.
    #[serde(serialize_with = "serialize_date")]
    pub reference: Date,
    /// The cycle written (0 for the first).
    pub cycle: u32,
    /// The home province code.
    pub home_province: String,
    /// Sizes of the expected result sets.
    pub counts: ExpectedCounts,
    /// Data rows (header excluded) of every CSV written, by path relative to the output directory.
    pub files: BTreeMap<String, u64>,
    /// Per department file, rows carrying each fault (`full_width`,
    /// `check_character`, `exact_duplicate`, `name_conflict`, ...).
    pub faults: BTreeMap<String, BTreeMap<String, u64>>,
}

fn serialize_date<S: serde::Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(d)
}

/// Why [`synth`](super::synth) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// The options cannot be honoured.
    #[error("invalid synth options: {0}")]
    Options(String),
    /// Too many people share a birth region, date and gender for unique ID numbers.
    #[error("too many people share a birth region, date and gender to give them unique ID numbers")]
    TooDense,
    /// A file or directory could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The summary could not be encoded.
    #[error("encoding the summary: {0}")]
    Json(#[from] serde_json::Error),
    /// A generator thread panicked.
    #[error("a generator thread panicked")]
    Panicked,
}

pub(super) fn io_err(path: &Path, source: io::Error) -> SynthError {
    SynthError::Io {
        path: path.to_path_buf(),
        source,
    }
}
