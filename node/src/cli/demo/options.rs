//! What the demo runs: the seven nodes (their departments, roles and the
//! exports they import), the agreement templates and job file of `deploy/`,
//! and the demo's options.

use std::path::PathBuf;

/// What a node imports: (export file under the input directory, dataset, terms template).
pub type NodeData = Option<(&'static str, &'static str, &'static str)>;

/// The seven nodes: (directory and department, role, what it imports).
pub const NODES: [(&str, &str, NodeData); 7] = [
    (
        "public_security",
        "provider",
        Some(("public_security/registry.csv", "registry", "registry.toml")),
    ),
    (
        "civil_affairs",
        "provider",
        Some((
            "civil_affairs/deaths.csv",
            "deaths",
            "deaths_civil_affairs.toml",
        )),
    ),
    (
        "health",
        "provider",
        Some(("health/deaths.csv", "deaths", "deaths_health.toml")),
    ),
    (
        "disabled_federation",
        "provider",
        Some((
            "disabled_federation/register.csv",
            "register",
            "disability.toml",
        )),
    ),
    (
        "hr",
        "provider",
        Some(("hr/insured.csv", "insured", "insured.toml")),
    ),
    ("comparator", "comparator", None),
    (
        "ministry",
        "ministry",
        Some(("ministry/national.csv", "national", "national.toml")),
    ),
];

pub(super) const TEMPLATES: [(&str, &str); 6] = [
    (
        "registry.toml",
        include_str!("../../../../deploy/agreements/registry.toml"),
    ),
    (
        "insured.toml",
        include_str!("../../../../deploy/agreements/insured.toml"),
    ),
    (
        "deaths_civil_affairs.toml",
        include_str!("../../../../deploy/agreements/deaths_civil_affairs.toml"),
    ),
    (
        "deaths_health.toml",
        include_str!("../../../../deploy/agreements/deaths_health.toml"),
    ),
    (
        "disability.toml",
        include_str!("../../../../deploy/agreements/disability.toml"),
    ),
    (
        "national.toml",
        include_str!("../../../../deploy/agreements/national.toml"),
    ),
];

/// The default job file (deploy/jobs.toml).
pub const JOBS: &str = include_str!("../../../../deploy/jobs.toml");

/// Demo options.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Residents to generate (ignored with `input`).
    pub residents: u64,
    /// Department exports in the canonical layout instead of generating.
    pub input: Option<PathBuf>,
    /// Output directory.
    pub out: PathBuf,
    /// Reference date of the cycle (default today).
    pub reference: dxmesh_protocol::date::Date,
    /// Home province code.
    pub home_province: String,
    /// Generator seed.
    pub seed: u64,
    /// The text of the job file to run (default [`JOBS`]).
    pub jobs: Option<String>,
    /// Keep the mesh running after the cycle until Ctrl-C.
    pub serve: bool,
    /// Cycles to run on the same mesh (1: the first only).
    pub cycles: u32,
    /// Every node's `[limits] memory_mib`.
    pub memory_mib: u64,
}

impl DemoOptions {
    /// The job file the demo runs.
    pub fn job_text(&self) -> &str {
        self.jobs.as_deref().unwrap_or(JOBS)
    }
}
