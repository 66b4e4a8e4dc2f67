//! Property tests of the node's readers of outside files: evidence bundles
//! (`dxmesh audit verify`, with `entries.bin`'s framing), roster drafts and
//! signed roster files (`dxmesh roster`), agreement terms files
//! (`--terms FILE.toml`, job expressions included) and department exports
//! (`dxmesh dataset import` of CSV, JSON Lines and `.xlsx`).
//!
//! For each: arbitrary bytes never panic; damaged valid files never panic,
//! and a bundle with any file changed fails verification; drafts and terms
//! files round-trip through their TOML; an import either fails with an
//! `ImportError` or accounts for every row (`rows_read == rows_kept +
//! rows_quarantined + duplicate_rows`); and a CSV export built from random
//! fields (quotes, `,`/tab/`;`/`|` delimiters, CRLF, Chinese text,
//! line breaks inside fields), written by the `csv` crate, imports exactly
//! the rows written.

mod inputs;

use dxmesh_node::agreements::terms_file::TermsFile;
use dxmesh_node::audit::log::{frame_entries, unframe_entries};
use dxmesh_node::audit::verify::verify;
use dxmesh_node::trust::roster_file::{self, Draft};
use dxmesh_protocol::codec::{decode, encode};
use dxmesh_protocol::roster::Roster;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;
use inputs::*;
use proptest::prelude::*;
use proptest::sample::Index;
use std::path::Path;

/// A copy of the bundle with file `rel` replaced by `bytes`, verified.
fn verify_with(rel: &str, bytes: &[u8]) -> dxmesh_node::audit::verify::Report {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&bundle().dir, dir.path());
    std::fs::write(dir.path().join(rel), bytes).unwrap();
    let r = verify(&[dir.path().to_path_buf()], &anchor());
    let _ = r.render();
    r
}

#[test]
fn the_bundle_verifies() {
    let r = verify(std::slice::from_ref(&bundle().dir), &anchor());
    assert!(r.ok(), "{}", r.render());
    for check in [
        "checkpoint signatures",
        "cosignatures by witnesses",
        "agreement transcripts (signatures, chain, transitions)",
        "bundle files match the signed index",
    ] {
        assert!(r.checks.contains_key(check), "no {check:?}: {}", r.render());
    }
}

/// Reads a draft as `dxmesh roster sign` does, and shows what it signs.
fn use_draft(path: &Path) {
    if let Ok(d) = Draft::load(path)
        && let Ok(r) = d.to_roster(path, Timestamp(1_796_083_200))
    {
        let _ = roster_file::render(&r, None, None, Timestamp(u64::MAX));
    }
}

/// Reads a signed roster file as `dxmesh roster show` does.
fn use_signed_roster(path: &Path) {
    if let Ok(s) = roster_file::load_signed(path)
        && let Ok(r) = decode::<Roster>(s.body())
    {
        let _ = roster_file::render(&r, Some(s.signer()), Some(&s.digest()), Timestamp(0));
        let _ = s.verify();
    }
}

/// Reads a terms file as `dxmesh agreement propose --terms` does.
fn use_terms(path: &Path) {
    if let Ok(f) = TermsFile::load(path)
        && let Ok(t) = f.to_terms(path, Some(party(1)), Some(party(2)))
    {
        let _ = TermsFile::from_terms(&t).to_toml();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Any damage to any file of a bundle is caught, never a panic.
    #[test]
    fn a_damaged_bundle_file_fails_verification(at in any::<Index>(), d in damages()) {
        let b = bundle();
        let rel = &b.files[at.index(b.files.len())];
        let valid = std::fs::read(b.dir.join(rel)).unwrap();
        let damaged = d.apply(&valid);
        let r = verify_with(rel, &damaged);
        if damaged != valid {
            prop_assert!(!r.ok(), "{rel} damaged went unnoticed");
        }
    }

    #[test]
    fn arbitrary_bytes_as_a_bundle_file_fail_verification(
        at in any::<Index>(),
        bytes in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let b = bundle();
        let rel = &b.files[at.index(b.files.len())];
        let r = verify_with(rel, &bytes);
        prop_assert!(!r.ok(), "{rel} replaced went unnoticed");
    }

    #[test]
    fn entry_framing_round_trips_and_arbitrary_bytes_never_panic(
        entries in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..6),
        bytes in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let framed = frame_entries(&entries);
        let back = unframe_entries(&framed).unwrap();
        prop_assert_eq!(back.iter().map(|b| b.to_vec()).collect::<Vec<_>>(), entries);
        if let Ok(frames) = unframe_entries(&bytes) {
            prop_assert_eq!(frames.iter().map(|f| f.len() + 4).sum::<usize>(), bytes.len());
        }
    }

    /// A draft saved is the draft loaded, whatever its text; signing what
    /// converts gives a roster `show` can print.
    #[test]
    fn roster_drafts_round_trip_and_damaged_ones_never_panic(draft in drafts(), d in damages()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roster.toml");
        draft.save(&path).unwrap();
        prop_assert_eq!(&Draft::load(&path).unwrap(), &draft);
        use_draft(&path);
        if let Ok(r) = draft.to_roster(&path, Timestamp(1_796_083_200)) {
            let signed = Signed::sign(&party_identity(9), &r).unwrap();
            let file = dir.path().join("roster.bin");
            std::fs::write(&file, encode(&signed).unwrap()).unwrap();
            prop_assert_eq!(roster_file::load_signed(&file).unwrap(), signed.clone());
            use_signed_roster(&file);
            std::fs::write(&file, d.apply(&encode(&signed).unwrap())).unwrap();
            use_signed_roster(&file);
        }
        let text = std::fs::read(&path).unwrap();
        std::fs::write(&path, d.apply(&text)).unwrap();
        use_draft(&path);
    }

    #[test]
    fn roster_files_of_arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        toml_text in toml_like(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roster");
        std::fs::write(&path, &bytes).unwrap();
        use_signed_roster(&path);
        use_draft(&path);
        std::fs::write(&path, &toml_text).unwrap();
        use_draft(&path);
    }

    /// Terms written as TOML read back as the same terms, whatever their
    /// text; damaged or arbitrary terms files never panic.
    #[test]
    fn terms_files_round_trip_and_damaged_ones_never_panic(
        file in terms_files(),
        d in damages(),
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        toml_text in toml_like(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("terms.toml");
        std::fs::write(&path, file.to_toml()).unwrap();
        prop_assert_eq!(&TermsFile::load(&path).unwrap(), &file);
        if let Ok(terms) = file.to_terms(&path, Some(party(1)), Some(party(2))) {
            std::fs::write(&path, TermsFile::from_terms(&terms).to_toml()).unwrap();
            let again = TermsFile::load(&path).unwrap().to_terms(&path, None, None);
            prop_assert_eq!(again.unwrap(), terms);
        }
        std::fs::write(&path, d.apply(file.to_toml().as_bytes())).unwrap();
        use_terms(&path);
        std::fs::write(&path, &bytes).unwrap();
        use_terms(&path);
        std::fs::write(&path, &toml_text).unwrap();
        use_terms(&path);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any bytes as an export: an error, or every row accounted for.
    #[test]
    fn arbitrary_exports_fail_or_account_for_every_row(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        ext in prop::sample::select(vec!["csv", "tsv", "jsonl", "xlsx", "xls", "ods"]),
    ) {
        import_fails_or_accounts(&bytes, ext, None);
    }

    /// A header and rows of valid IDs, then damaged: still an error or
    /// every row accounted for.
    #[test]
    fn damaged_exports_fail_or_account_for_every_row(
        export in csv_exports(),
        d in damages(),
        as_jsonl in any::<bool>(),
    ) {
        if as_jsonl {
            import_fails_or_accounts(&d.apply(&export.jsonl()), "jsonl", None);
        } else {
            import_fails_or_accounts(&d.apply(&export.bytes), "csv", None);
        }
    }

    /// A CSV export written by the `csv` crate imports exactly its rows,
    /// by the delimiter named or found from the header.
    #[test]
    fn random_csv_exports_import_exactly_their_rows(export in csv_exports(), named in any::<bool>()) {
        let delimiter = named.then_some(export.delimiter);
        let (report, rows) = import_rows(&export.bytes, "csv", delimiter).unwrap();
        prop_assert_eq!(report.rows_read, export.rows.len() as u64);
        prop_assert_eq!(report.rows_kept, export.rows.len() as u64);
        prop_assert_eq!(rows, export.expected());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// The same rows in a workbook import exactly; the workbook damaged
    /// fails or accounts for every row.
    #[test]
    fn workbooks_import_their_rows_and_damaged_ones_never_panic(
        export in csv_exports(),
        d in damages(),
    ) {
        let xlsx = export.xlsx();
        let (report, rows) = import_rows(&xlsx, "xlsx", None).unwrap();
        prop_assert_eq!(report.rows_read, export.rows.len() as u64);
        prop_assert_eq!(rows, export.expected());
        import_fails_or_accounts(&d.apply(&xlsx), "xlsx", None);
    }
}
