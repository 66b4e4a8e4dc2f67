//! The figures of each cycle the demo runs: the wall time of each of its
//! steps, whether its results matched the generator's expected lists, and
//! each node's disk (its data directory) and audit log entries once the
//! cycle is done. Printed after the cycle and appended to `cycles.json` in
//! the output directory (what `tests/bench/year.sh` reads).

use super::context::Cx;
use super::options::NODES;
use anyhow::Context;
use std::path::Path;
use std::time::Instant;

/// The name of the file of every cycle's figures, in the output directory.
pub(super) const CYCLES_FILE: &str = "cycles.json";

/// One cycle's figures, collected as it runs.
pub(super) struct Figures {
    cycle: u32,
    started: Instant,
    steps: Vec<(&'static str, f64)>,
}

impl Figures {
    /// Figures of cycle `cycle`, starting now.
    pub(super) fn new(cycle: u32) -> Figures {
        Figures {
            cycle,
            started: Instant::now(),
            steps: Vec::new(),
        }
    }

    /// Runs one step of the cycle, timing it.
    pub(super) fn time<T>(
        &mut self,
        step: &'static str,
        f: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let started = Instant::now();
        let r = f()?;
        self.steps.push((step, started.elapsed().as_secs_f64()));
        Ok(r)
    }

    /// Measures every node, prints the cycle's figures and appends them to
    /// [`CYCLES_FILE`].
    pub(super) fn finish(self, cx: &Cx<'_>, exact: Option<bool>) -> anyhow::Result<()> {
        let mut nodes = serde_json::Map::new();
        let mut lines = Vec::new();
        for (name, _, _) in NODES {
            let dir = cx.out.join(cx.demo.node_dir(name));
            let disk = disk_bytes(&dir).with_context(|| format!("{}", dir.display()))?;
            let entries = audit_entries(cx, name)?;
            lines.push(format!(
                "{name} {:.1} MB, {entries} audit entries",
                disk as f64 / 1e6
            ));
            nodes.insert(
                name.to_string(),
                serde_json::json!({"disk_bytes": disk, "audit_entries": entries}),
            );
        }
        let wall = self.started.elapsed().as_secs_f64();
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|(s, t)| format!("{s} {t:.1}s"))
            .collect();
        let verdict = match exact {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "no expected lists",
        };
        println!(
            "cycle {}: {wall:.1}s ({}); results exact: {verdict}",
            self.cycle,
            steps.join(", ")
        );
        println!("  nodes: {}", lines.join("; "));
        let record = serde_json::json!({
            "cycle": self.cycle,
            "wall_secs": wall,
            "steps": self.steps.iter().map(|(s, t)| (s.to_string(), serde_json::json!(t))).collect::<serde_json::Map<_, _>>(),
            "exact": exact,
            "nodes": nodes,
        });
        let path = cx.out.join(CYCLES_FILE);
        let mut all: Vec<serde_json::Value> = match std::fs::read_to_string(&path) {
            Ok(s) => serde_json::from_str(&s).with_context(|| format!("{}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
        };
        all.push(record);
        crate::base::fsutil::write_atomic(&path, &serde_json::to_vec_pretty(&all)?, 0o644)
            .with_context(|| format!("{}", path.display()))?;
        Ok(())
    }
}

/// Bytes in the files under `dir` (symbolic links not followed).
fn disk_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    // A node at work creates and removes files as the walk goes: a file
    // gone since its directory was read counts nothing.
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e),
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

/// Entries in the audit log of node `name`, from its `status`.
fn audit_entries(cx: &Cx<'_>, name: &str) -> anyhow::Result<u64> {
    let status = cx
        .demo
        .dx(&["status", "--json", "--dir", &cx.demo.node_dir(name)])?;
    let v: serde_json::Value =
        serde_json::from_str(&status).with_context(|| format!("status of {name}"))?;
    v["audit"]["entries"]
        .as_u64()
        .with_context(|| format!("status of {name}: no audit entries"))
}
