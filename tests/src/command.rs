//! [`Dxmesh`]: runs one `dxmesh` command as an operator would and checks
//! its outcome; [`field`] reads a value from its printed report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `dxmesh` commands with a given binary.
#[derive(Debug, Clone)]
pub struct Dxmesh {
    /// Path of the binary.
    pub bin: PathBuf,
}

impl Dxmesh {
    /// The binary at `bin` (pass `env!("CARGO_BIN_EXE_dxmesh-under-test")`).
    pub fn new(bin: &str) -> Dxmesh {
        Dxmesh {
            bin: PathBuf::from(bin),
        }
    }

    /// Runs `dxmesh ARGS` in `cwd`.
    pub fn run(&self, cwd: &Path, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(args)
            .current_dir(cwd)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()))
    }

    /// Runs `dxmesh ARGS` and panics with its stderr unless it succeeds; returns stdout.
    pub fn ok(&self, cwd: &Path, args: &[&str]) -> String {
        let out = self.run(cwd, args);
        assert!(
            out.status.success(),
            "dxmesh {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs `dxmesh ARGS`, asserts it fails, returns stderr.
    pub fn fails(&self, cwd: &Path, args: &[&str]) -> String {
        let out = self.run(cwd, args);
        assert!(
            !out.status.success(),
            "dxmesh {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).expect("utf-8 output")
    }
}

/// Returns the value after `key: ` on a line of `text`.
pub fn field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no `{key}:` in {text}"))
        .trim()
        .to_string()
}

/// Runs `dxmesh demo ARGS --out DIR` as an operator would and panics with
/// its output unless it succeeds; returns what it printed.
pub fn run_demo(bin: &str, dir: &Path, args: &[&str]) -> String {
    let out = Command::new(bin)
        .arg("demo")
        .args(args)
        .arg("--out")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "demo failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
