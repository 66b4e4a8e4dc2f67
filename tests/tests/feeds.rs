//! Datasets and feeds across real nodes (issue 5): import with quarantine,
//! publish, a verified pull, disclosure, and a scan proving the comparator
//! holds none of the provider's plaintext identifiers, names or addresses;
//! retention: a pulled feed past its agreement's retention is erased.

use dxmesh_tests::{day, registry_input, registry_terms, scan_for, setup, short_retention_terms};

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

#[test]
fn import_publish_pull_disclose_and_no_raw_copy_at_the_comparator() {
    let (s, rows) = setup(BIN, 3000, &registry_terms(2, 100_000));
    let expected = rows.iter().filter(|r| r.in_scope()).count();
    let out = s.pps.cli(&["publish"]);
    assert!(
        out.contains(&format!("{expected} records")),
        "expected {expected} in-scope records: {out}"
    );
    let out = s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    assert!(
        out.contains(&format!("{expected} records")) && out.contains("every chunk verified"),
        "{out}"
    );
    // Disclosure of the first 10 tokens of the committed result (every
    // registry token): the provider resolves them to records.
    assert_eq!(s.commit_results(), expected as u64);
    let disclosed = s.mesh.path().join("disclosed.csv");
    let out = s.pcmp.cli(&[
        "disclose",
        "--agreement",
        &s.agreement[..12],
        "--kind",
        "uninsured",
        "--fields",
        "id_number,name,address",
        "--first",
        "10",
        "--out",
        disclosed.to_str().unwrap(),
    ]);
    assert!(out.contains("disclosed 10 records"), "{out}");
    let text = std::fs::read_to_string(&disclosed).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "id_number,name,address");
    assert_eq!(lines.len(), 11);
    for line in &lines[1..] {
        let id = line.split(',').next().unwrap();
        let row = rows
            .iter()
            .find(|r| r.id == id)
            .expect("a disclosed ID is a registry ID");
        assert!(row.in_scope());
        assert_eq!(*line, format!("{},{},{}", row.id, row.name, row.address));
    }
    // Nothing under the comparator's directory (state, pulled chunks, logs)
    // holds a plaintext ID number (normalised or raw), name or address.
    let mut needles = Vec::new();
    for r in &rows {
        needles.push(r.id.clone());
        needles.push(r.raw_id.trim().to_string());
        needles.push(r.name.clone());
        needles.push(r.address.clone());
    }
    let hits = scan_for(&s.cmp.dir, &needles);
    assert!(
        hits.is_empty(),
        "raw data found at the comparator: {:?}",
        &hits[..hits.len().min(5)]
    );
    // The provider does hold its own data (the scan can find things).
    assert!(!scan_for(&s.ps.dir, &needles[..4]).is_empty());
}

fn flip(path: &std::path::Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    let at = at.min(b.len() - 1);
    b[at] ^= 0x01;
    std::fs::write(path, b).unwrap();
}

#[test]
fn a_flipped_byte_in_a_chunk_on_the_provider_disk_is_caught_at_that_chunk() {
    let (s, _) = setup(BIN, 80_000, &registry_terms(2, 100));
    let out = s.pps.cli(&["publish"]);
    assert!(out.contains("in 3 chunks"), "{out}");
    flip(&s.provider_feed_dir().join("chunk-00001.bin"), 5000);
    let e = s
        .pcmp
        .cli_fails(&["pull", "--agreement", &s.agreement[..12]]);
    assert!(
        e.contains(&format!(
            "chunk 1 from {} failed verification (expected hash",
            s.ps.peer_id
        )),
        "{e}"
    );
    // Chunk 0 was verified and kept; the bad chunk was not stored.
    assert!(s.comparator_chunk(0).is_some());
    assert!(s.comparator_chunk(1).is_none());
    assert!(!s.comparator_feed_dir().join("complete").exists());
}

#[test]
fn a_flipped_byte_in_the_manifest_on_the_provider_disk_is_caught() {
    let (s, _) = setup(BIN, 500, &registry_terms(2, 100));
    s.pps.cli(&["publish"]);
    flip(&s.provider_feed_dir().join("manifest.bin"), 40);
    let e = s
        .pcmp
        .cli_fails(&["pull", "--agreement", &s.agreement[..12]]);
    assert!(
        e.contains(&format!("manifest from {} refused", s.ps.peer_id))
            && e.contains("bad signature"),
        "{e}"
    );
    assert!(s.comparator_chunk(0).is_none());
}

#[test]
fn a_feed_kept_one_file_per_chunk_by_an_earlier_version_is_pulled_again() {
    let (mut s, _) = setup(BIN, 80_000, &registry_terms(1, 100));
    s.pps.cli(&["publish"]);
    let out = s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    assert!(out.contains("3 chunks (3 received now"), "{out}");
    // What an earlier version left: `complete` and one file per chunk.
    let dir = s.comparator_feed_dir();
    let chunks: Vec<Vec<u8>> = (0..3).map(|i| s.comparator_chunk(i).unwrap()).collect();
    std::fs::remove_file(dir.join(dxmesh_node::pull::chunkfile::FILE)).unwrap();
    for (i, c) in chunks.iter().enumerate() {
        std::fs::write(dir.join(format!("chunk-{i:05}.bin")), c).unwrap();
    }
    // Not complete without the chunk file: pulled again, in the same pull
    // session (max_pulls = 1 here). Interrupted after chunk 0, it is still
    // not complete (the old mark and files are gone) and resumes.
    s.restart_provider(&[("DXMESH_FAILPOINTS", "feed-served-first-chunk")]);
    let e = s
        .pcmp
        .cli_fails(&["pull", "--agreement", &s.agreement[..12]]);
    assert!(e.contains("interrupted at chunk 1"), "{e}");
    assert!(!dir.join("complete").exists());
    assert!(!dir.join("chunk-00000.bin").exists());
    s.restart_provider(&[]);
    let out = s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    assert!(out.contains("3 chunks (2 received now"), "{out}");
    assert!(s.comparator_chunk(2).unwrap() == chunks[2]);
    assert!(dir.join("complete").exists());
}

#[test]
fn a_pull_interrupted_by_killing_the_provider_resumes_and_yields_the_same_feed() {
    let (mut s, _) = setup(BIN, 80_000, &registry_terms(1, 100));
    s.pps.cli(&["publish"]);
    // The provider dies right after sending the first chunk.
    s.restart_provider(&[("DXMESH_FAILPOINTS", "feed-served-first-chunk")]);
    let e = s
        .pcmp
        .cli_fails(&["pull", "--agreement", &s.agreement[..12]]);
    assert!(e.contains("interrupted at chunk 1"), "{e}");
    assert!(s.comparator_chunk(0).is_some());
    // Restarted, it serves the rest; the resumed pull is the same pull session
    // (max_pulls = 1 here) and continues from chunk 1, not from zero.
    s.restart_provider(&[]);
    let out = s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    assert!(out.contains("3 chunks (2 received now"), "{out}");
    for i in 0..3 {
        let name = format!("chunk-{i:05}.bin");
        assert!(
            s.comparator_chunk(i).unwrap()
                == std::fs::read(s.provider_feed_dir().join(&name)).unwrap(),
            "{name} differs from the provider's"
        );
    }
    assert!(s.comparator_feed_dir().join("complete").exists());
}

#[test]
fn import_reports_every_bad_row_in_the_quarantine_file() {
    let (s, _) = setup(BIN, 10, &registry_terms(2, 100));
    let csv = "id_number,name,birth_date,status,death_date\n\
        11010519491231002X,甲,1949-12-31,active,\n\
        110105194912310021,乙,1949-12-31,active,\n\
        110105194902300020,丙,1949-02-30,active,\n\
        11010520991231002X,丁,2099-12-31,active,\n\
        1101051949123100,戊,,active,\n\
        440524188001010014,己,1880-01-01,active,2024-02-30\n\
        11010519491231002x,甲,1949-12-31,active,\n";
    std::fs::write(s.mesh.path().join("bad.csv"), csv).unwrap();
    let out = s.mesh.import("ps", "deaths", "bad.csv");
    assert!(
        out.contains("rows read:           7") && out.contains("rows kept:           1"),
        "{out}"
    );
    let qpath = out
        .lines()
        .find_map(|l| l.strip_prefix("quarantine report: "))
        .expect("quarantine path printed");
    let q = std::fs::read_to_string(s.mesh.path().join(qpath)).unwrap();
    for (line, column, reason) in [
        (3, "id_number", "check_character"),
        (4, "id_number", "invalid_birth_date"),
        (5, "id_number", "future_birth_date"),
        (6, "id_number", "length"),
        (7, "death_date", "invalid_date"),
    ] {
        assert!(
            q.lines()
                .any(|l| l.contains(&format!(",{line},{column},")) && l.ends_with(reason)),
            "line {line} {column} {reason} missing from:\n{q}"
        );
    }
    // Line 8 is line 2 again with a lowercase x: a duplicate, counted, not quarantined.
    assert!(out.contains("duplicate rows:      1"), "{out}");
    let shown = s
        .mesh
        .dx
        .ok(s.mesh.path(), &["dataset", "show", "--dir", "ps", "deaths"]);
    assert!(
        shown.contains("check_character") && shown.contains("lowercase_x"),
        "{shown}"
    );
}

#[test]
fn a_range_pull_fetches_only_the_chunks_covering_the_range_and_a_full_pull_completes_it() {
    let (s, _) = setup(BIN, 80_000, &registry_terms(2, 100));
    let out = s.pps.cli(&["publish"]);
    assert!(out.contains("in 3 chunks"), "{out}");
    // Tokens are uniformly spread: the lower quarter of the token space lies in the first chunk.
    let range = format!("{}-3f{}", "00".repeat(16), "ff".repeat(15));
    let out = s
        .pcmp
        .cli(&["pull", "--agreement", &s.agreement[..12], "--range", &range]);
    assert!(out.contains("3 chunks (1 received now"), "{out}");
    assert!(!s.comparator_feed_dir().join("complete").exists());
    let out = s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    assert!(out.contains("3 chunks (2 received now"), "{out}");
    assert!(s.comparator_feed_dir().join("complete").exists());
}

#[test]
fn feeds_stream_both_ways_between_two_nodes_at_once() {
    // rust-libp2p #5410: yamux can deadlock when data flows both ways on one
    // stream. dxmesh streams are one-directional; here two large feeds cross
    // on the same connection at the same time, one in each direction.
    let (mut s, rows) = setup(BIN, 80_000, &registry_terms(2, 100));
    s.pps.cli(&["publish"]);
    // The comparator provides a clear-ID feed to public security.
    let mut csv = String::from("id_number,finding\n");
    for r in rows.iter().take(60_000) {
        csv.push_str(&format!("{},uninsured\n", r.id));
    }
    std::fs::write(s.mesh.path().join("verified.csv"), csv).unwrap();
    s.mesh
        .import("cmp", "verified_registrations", "verified.csv");
    let upload = include_str!("../../deploy/agreements/upload.toml")
        .replace("{{PROVIDER}}", &s.cmp.peer_id)
        .replace("{{CONSUMER}}", &s.ps.peer_id)
        .replace("{{FROM}}", &dxmesh_tests::day(-1))
        .replace("{{UNTIL}}", &dxmesh_tests::day(365))
        .replace("{{ANCHOR}}", &dxmesh_tests::day(-1))
        .replace("{{PERIOD}}", "daily")
        .replace("{{WINDOW}}", "P1D");
    let path = s.mesh.path().join("upload.toml");
    std::fs::write(&path, upload).unwrap();
    let (thread, _) = dxmesh_tests::agree(&mut s.pcmp, &mut s.pps, &s.ps.peer_id, &path, "active");
    s.pcmp.cli(&["publish", "--agreement", &thread[..12]]);
    // Both pulls at once.
    let dx = s.mesh.dx.clone();
    let (ps_dir, cmp_dir) = (s.ps.dir.clone(), s.cmp.dir.clone());
    let (a, t) = (s.agreement[..12].to_string(), thread[..12].to_string());
    let one = std::thread::spawn(move || {
        dx.run(
            &cmp_dir,
            &[
                "pull",
                "--agreement",
                &a,
                "--dir",
                cmp_dir.to_str().unwrap(),
            ],
        )
    });
    let dx = s.mesh.dx.clone();
    let two = std::thread::spawn(move || {
        dx.run(
            &ps_dir,
            &["pull", "--agreement", &t, "--dir", ps_dir.to_str().unwrap()],
        )
    });
    for (name, out) in [
        ("registry to the comparator", one.join().unwrap()),
        ("upload to public security", two.join().unwrap()),
    ] {
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("every chunk verified"),
            "{name}"
        );
    }
}

/// Copies a directory tree (one level of files is all a feed has).
fn copy_feed(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn a_pulled_feed_past_its_retention_is_erased_logged_and_not_pulled_again() {
    // Epochs every two days from ten days ago (epoch 5 starts today), each
    // kept three days after its start.
    let terms = short_retention_terms();
    let (s, _) = setup(BIN, 300, &terms);
    let out = s.pps.cli(&["publish"]);
    assert!(out.contains("epoch 5"), "{out}");
    let out = s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    assert!(out.contains("epoch 5"), "{out}");
    let pulls = s.cmp.dir.join("data/pulls").join(&s.agreement);
    // A feed of epoch 1 (started eight days ago, to be kept until five days
    // ago), as if it had been pulled then.
    copy_feed(&pulls.join("5"), &pulls.join("1"));
    let t = std::time::Instant::now();
    // Erased: moved aside (`.erasing-1`), then removed.
    while pulls.join("1").exists() || pulls.join(".erasing-1").exists() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(30),
            "the expired feed is still there:\n{}",
            s.pcmp.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        pulls.join("5").join("complete").exists(),
        "the current feed was kept"
    );
    assert!(
        !std::fs::read_dir(&pulls)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with('.')),
        "nothing left aside"
    );
    // Not pulled again.
    let e = s
        .pcmp
        .cli_fails(&["pull", "--agreement", &s.agreement[..12], "--epoch", "1"]);
    assert!(
        e.contains(&format!("epoch 1 may be kept only until {}", day(-5))),
        "{e}"
    );
    // The erasure is in the audit log, once.
    let bundle = s.mesh.path().join("bundle-cmp");
    s.pcmp
        .cli(&["audit", "export", "--out", bundle.to_str().unwrap()]);
    let entries = std::fs::read_to_string(bundle.join("entries.json")).unwrap();
    let erased: Vec<&str> = entries
        .lines()
        .filter(|l| l.contains("FeedErased"))
        .collect();
    assert_eq!(erased.len(), 1, "{entries}");
    assert!(erased[0].contains("epoch: 1"), "{}", erased[0]);
    the_evidence_of_an_erased_feed_outlives_it(&s);
}

/// Erasure keeps the feed's signed manifest as evidence (exported in the
/// bundle); a commitment over the erased feed is reported erased, not
/// wrong, with recompute's own exit status; and `audit alerts` warns of
/// the current epoch's commitments while its feed is kept.
fn the_evidence_of_an_erased_feed_outlives_it(s: &dxmesh_tests::Setup) {
    use dxmesh_node::compare::commit::Committed;
    use dxmesh_protocol::commitment::{LeafTree, ResultCommitment};
    let data = s.cmp.dir.join("data");
    let kept = data
        .join("evidence/pulls")
        .join(&s.agreement)
        .join("1/manifest.bin");
    let manifest: dxmesh_protocol::signed::Signed<dxmesh_protocol::feed::Manifest> =
        dxmesh_protocol::codec::decode(&std::fs::read(&kept).unwrap()).unwrap();
    // A commitment of epoch 1 over the erased feed, as the comparator made
    // it while it held the feed.
    let tokens = vec![dxmesh_protocol::token::IdToken([1; 16])];
    let tree = LeafTree::of_tokens(&tokens);
    let statement = ResultCommitment {
        epoch: 1,
        result_kind: "uninsured".into(),
        expr: "registry".into(),
        inputs: vec![registry_input(manifest.digest())],
        sets: vec![],
        count: tree.size(),
        root: tree.root(),
        ministry: None,
    };
    let key = dxmesh_node::base::keyfile::read_identity(&s.cmp.dir.join("node.key")).unwrap();
    Committed::new(
        dxmesh_protocol::signed::Signed::sign(&key, &statement).unwrap(),
        &statement,
        tokens,
        tree,
    )
    .store(&data)
    .unwrap();
    let bundle = s.mesh.path().join("bundle-cmp-erased");
    s.pcmp
        .cli(&["audit", "export", "--out", bundle.to_str().unwrap()]);
    assert!(
        bundle
            .join(format!("manifests/pulled-{}-1.bin", s.agreement))
            .exists(),
        "the erased feed's manifest is in the bundle"
    );
    let out = s.mesh.audit_verify(&bundle);
    assert!(
        out.status.success(),
        "a bundle exported after retention verifies: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = s.mesh.audit_recompute(&bundle, &data, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("ERASED") && text.contains("was erased under retention"),
        "{text}"
    );
    // The current epoch's feed is kept three days: commitments of it are
    // announced for recompute while it is.
    s.commit_results();
    let out = s.pcmp.cli(&["audit", "alerts"]);
    assert!(
        out.contains("RETENTION: the pulled feed of agreement")
            && out.contains("the result commitments of epoch 5 can be recomputed only until then"),
        "{out}"
    );
}

#[test]
fn a_comparison_rejects_a_pulled_chunk_changed_on_disk_when_two_inputs_share_the_feed() {
    let (s, rows) = setup(BIN, 80_000, &registry_terms(2, 100));
    let out = s.pps.cli(&["publish"]);
    assert!(out.contains("in 3 chunks"), "{out}");
    s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    // Two inputs of the same feed, one filtered: one reader serves both.
    let region = rows.iter().find(|r| r.in_scope()).unwrap().region.clone();
    let jobs = s.mesh.path().join("jobs.toml");
    std::fs::write(
        &jobs,
        format!(
            r#"order = ["elsewhere"]
[inputs.all]
dataset = "registry"
provider = "public_security"
[inputs.here]
dataset = "registry"
provider = "public_security"
where = {{ region_code = ["{region}"] }}
[results.elsewhere]
expr = "all - here"
"#
        ),
    )
    .unwrap();
    let expected = {
        let mut ids: Vec<&str> = rows
            .iter()
            .filter(|r| r.in_scope() && r.region != region)
            .map(|r| r.id.as_str())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    };
    let compare = |out: &str| {
        let out = s.mesh.path().join(out);
        vec![
            "compare".to_string(),
            "--jobs".into(),
            jobs.to_str().unwrap().into(),
            "--out".into(),
            out.to_str().unwrap().into(),
        ]
    };
    let args = compare("clean");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s.pcmp.cli(&args);
    let summary = std::fs::read_to_string(s.mesh.path().join("clean/summary.json")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(
        summary["results"]["elsewhere"]["count"].as_u64(),
        Some(expected as u64),
        "{summary}"
    );

    let (offset, _) = dxmesh_node::pull::pulls::stored_chunk(&s.comparator_feed_dir(), 1).unwrap();
    flip(
        &s.comparator_feed_dir()
            .join(dxmesh_node::pull::chunkfile::FILE),
        offset as usize + 5000,
    );
    let args = compare("tampered");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let e = s.pcmp.cli_fails(&args);
    assert!(
        e.contains(&format!(
            "chunk 1 from {} failed verification",
            s.ps.peer_id
        )) && e.contains("the stored copy fails verification"),
        "{e}"
    );

    // Chunk 1 mended, the chunk file cut inside chunk 2: a chunk missing
    // from a feed marked complete is refused too.
    let file = s
        .comparator_feed_dir()
        .join(dxmesh_node::pull::chunkfile::FILE);
    flip(&file, offset as usize + 5000);
    let (offset2, _) = dxmesh_node::pull::pulls::stored_chunk(&s.comparator_feed_dir(), 2).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(offset2 + 10)
        .unwrap();
    let args = compare("cut");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let e = s.pcmp.cli_fails(&args);
    assert!(e.contains("chunk 2 is not held"), "{e}");
}
