//! Crash points for tests of durability: `DXMESH_FAILPOINTS=name[,name...]`
//! makes the process abort (as a power cut would) when it reaches a named
//! point. Without the variable, [`hit`] does nothing. The points are listed
//! in `docs/operator-guide.md` ("Testing crash recovery").

use std::sync::OnceLock;

fn enabled() -> &'static Vec<String> {
    static POINTS: OnceLock<Vec<String>> = OnceLock::new();
    POINTS.get_or_init(|| {
        std::env::var("DXMESH_FAILPOINTS")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// Whether the failpoint `name` is enabled (to prepare a deterministic crash).
pub fn enabled_point(name: &str) -> bool {
    enabled().iter().any(|p| p == name)
}

/// Aborts the process if the failpoint `name` is enabled.
pub fn hit(name: &str) {
    if enabled().iter().any(|p| p == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}
