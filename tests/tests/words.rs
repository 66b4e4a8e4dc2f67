//! What people read on the command line: help that says what a command
//! takes, a draft that does not claim a date it does not have, a summary in
//! words rather than a program's dump.

use dxmesh_tests::Dxmesh;

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

#[test]
fn import_help_names_every_format_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let help = Dxmesh::new(BIN).ok(dir.path(), &["dataset", "import", "--help"]);
    for format in ["GB18030", "UTF-16", "JSON Lines", ".xlsx", ".xls", ".ods"] {
        assert!(help.contains(format), "{format} missing:\n{help}");
    }
}

#[test]
fn an_unsigned_roster_draft_shows_no_issue_date() {
    let dir = tempfile::tempdir().unwrap();
    let dx = Dxmesh::new(BIN);
    dx.ok(
        dir.path(),
        &[
            "roster",
            "new",
            "--mesh",
            "test-province",
            "--out",
            "draft.toml",
        ],
    );
    let shown = dx.ok(dir.path(), &["roster", "show", "draft.toml"]);
    assert!(shown.contains("DRAFT (unsigned)"), "{shown}");
    assert!(shown.contains("issued at: (not yet"), "{shown}");
    assert!(!shown.contains("1970"), "{shown}");
}

#[test]
fn synth_says_what_it_wrote_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let out = Dxmesh::new(BIN).ok(dir.path(), &["synth", "--residents", "300", "--out", "p"]);
    for needle in [
        "wrote a province of 300 residents",
        "public_security/registry.csv",
        "uninsured",
        "registered, 16 or older, insured nowhere",
        "expected/summary.json",
    ] {
        assert!(out.contains(needle), "{needle} missing:\n{out}");
    }
    assert!(!out.contains("SynthReport {"), "{out}");
    assert!(!out.contains("Date("), "{out}");
}
