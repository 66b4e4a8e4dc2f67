//! A reader that goes away: `dxmesh dataset show | head -3`, or a pager
//! quit early. Every command that prints ends quietly, as `cat` does (no
//! panic, no backtrace, exit status 141), whatever it was printing.

use dxmesh_tests::Mesh;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

/// Runs `dxmesh ARGS` in `cwd` with its standard output a pipe whose
/// reader is closed before it prints anything; returns its status code and
/// what it wrote on stderr.
fn with_reader_gone(cwd: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_command_that_prints_ends_quietly_when_its_reader_goes_away() {
    let mut mesh = Mesh::new(BIN);
    mesh.init("node", "public_security", "provider");
    let dir = mesh.path().to_path_buf();
    let (code, err) = with_reader_gone(&dir, &["synth", "--residents", "300", "--out", "p"]);
    assert_eq!((code, err.as_str()), (Some(141), ""), "synth");
    // The province was written all the same: the printing came last.
    assert!(dir.join("p/public_security/registry.csv").exists());
    mesh.import("node", "registry", "p/public_security/registry.csv");
    for args in [
        &["dataset", "show", "--dir", "node"][..],
        &["dataset", "show", "--dir", "node", "--json"],
        &["dataset", "inspect", "--file", "p/hr/insured.csv"],
        &["synth", "--residents", "300", "--out", "q"],
    ] {
        let (code, err) = with_reader_gone(&dir, args);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!((code, err.as_str()), (Some(141), ""), "{args:?}");
    }
    // Help is clap's: it too ends without a panic.
    let (_, err) = with_reader_gone(&dir, &["dataset", "import", "--help"]);
    assert!(!err.contains("panicked"), "{err}");
    // A real error is still reported when nobody reads standard output.
    let (code, err) = with_reader_gone(&dir, &["dataset", "show", "--dir", "nowhere"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("nowhere"), "{err}");
}
