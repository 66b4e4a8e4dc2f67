//! Every refusal of the agreements issue, exercised through a real pull or
//! disclosure between real nodes. Each test asserts the specific typed
//! reason the requester receives and the refusal the provider records.

use dxmesh_protocol::agreement::Refusal;
use dxmesh_protocol::wire::{DisclosureRequest, Request, Response};
use dxmesh_tests::{Setup, day, raw_request, registry_terms, setup};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

fn agreement_bytes(s: &Setup) -> [u8; 32] {
    hex::decode(&s.agreement).unwrap().try_into().unwrap()
}

fn pull_fails(s: &Setup, extra: &[&str]) -> String {
    let mut args = vec!["pull", "--agreement", &s.agreement[..12]];
    args.extend_from_slice(extra);
    s.pcmp.cli_fails(&args)
}

fn current_epoch() -> u64 {
    1 // daily cycle anchored yesterday
}

#[test]
fn not_published_yet() {
    let (mut s, _) = setup(BIN, 200, &registry_terms(2, 10));
    let e = pull_fails(&s, &[]);
    assert!(
        e.contains("no feed is published for epoch 1") && e.contains("[not_published]"),
        "{e}"
    );
    s.provider_recorded("not_published");
}

#[test]
fn wrong_consumer() {
    let (mut s, _) = setup(BIN, 200, &registry_terms(2, 10));
    s.pps.cli(&["publish"]);
    // The ministry is a roster member, but not this agreement's consumer.
    let r = raw_request(
        &s.min.dir.join("node.key"),
        &s.pps.addr(),
        Request::PullOpen {
            agreement: agreement_bytes(&s),
            epoch: current_epoch(),
            fields: vec!["id_number".into()],
            pull_id: [9; 16],
        },
    )
    .unwrap();
    assert_eq!(
        r,
        Response::Denied {
            refusal: Refusal::NotConsumer
        }
    );
    s.provider_recorded("wrong_consumer");
}

#[test]
fn revoked_consumer() {
    let (mut s, _) = setup(BIN, 200, &registry_terms(2, 10));
    s.pps.cli(&["publish"]);
    let v2 = s
        .mesh
        .sign_roster("roster-v2", Some("roster-v1"), &[], &[&s.cmp]);
    s.mesh.install(&s.ps, &[&v2]);
    s.pps
        .wait_for("the comparator dropped", Duration::from_secs(20), |st| {
            st.connected.is_empty()
        });
    let e = pull_fails(&s, &[]);
    assert!(e.contains("not connected"), "{e}");
    // Trying anyway, with the comparator's own key, is refused at
    // connection setup (the connection is closed or refused, not left to
    // time out).
    let r = raw_request(
        &s.cmp.dir.join("node.key"),
        &s.pps.addr(),
        Request::PullOpen {
            agreement: agreement_bytes(&s),
            epoch: current_epoch(),
            fields: vec!["id_number".into()],
            pull_id: [9; 16],
        },
    );
    match &r {
        Err(e) => assert!(!e.contains("timed out"), "{e}"),
        Ok(answer) => panic!("a revoked member was answered: {answer:?}"),
    }
    s.provider_recorded("revoked");
}

#[test]
fn not_yet_active() {
    let terms = registry_terms(2, 10).replacen(
        &format!("not_before = \"{}\"", day(-1)),
        &format!("not_before = \"{}\"", day(2)),
        1,
    );
    let (mut s, _) = setup(BIN, 200, &terms);
    let e = pull_fails(&s, &[]);
    assert!(e.contains("[not_yet_active]"), "{e}");
    s.provider_recorded("not_yet_active");
}

#[test]
fn expired() {
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 4;
    let soon = dxmesh_protocol::time::Timestamp(soon).to_string();
    let terms = registry_terms(2, 10).replacen(
        &format!("not_after = \"{}\"", day(365)),
        &format!("not_after = \"{soon}\""),
        1,
    );
    let (mut s, _) = setup(BIN, 200, &terms);
    s.pps.cli(&["publish"]);
    std::thread::sleep(Duration::from_secs(5));
    let e = pull_fails(&s, &[]);
    assert!(e.contains("[expired]"), "{e}");
    s.provider_recorded("expired");
}

#[test]
fn terminated() {
    let (mut s, _) = setup(BIN, 200, &registry_terms(2, 10));
    s.pps.cli(&["publish"]);
    s.pcmp.cli(&[
        "agreement",
        "terminate",
        &s.thread[..12],
        "--reason",
        "test",
    ]);
    let thread = s.thread.clone();
    s.pps.wait_agreement(&thread, "terminated", 3);
    let e = pull_fails(&s, &[]);
    assert!(e.contains("[terminated]"), "{e}");
    s.provider_recorded("terminated");
}

#[test]
fn suspended() {
    let (mut s, _) = setup(BIN, 200, &registry_terms(2, 10));
    s.pps.cli(&["publish"]);
    s.pps
        .cli(&["agreement", "suspend", &s.thread[..12], "--reason", "audit"]);
    let thread = s.thread.clone();
    s.pcmp.wait_agreement(&thread, "suspended", 3);
    let e = pull_fails(&s, &[]);
    assert!(e.contains("[suspended]"), "{e}");
    s.provider_recorded("suspended");
}

#[test]
fn epoch_in_the_past() {
    let (mut s, _) = setup(BIN, 200, &registry_terms(2, 10));
    s.pps.cli(&["publish", "--epoch", "0"]);
    let e = pull_fails(&s, &["--epoch", "0"]);
    assert!(
        e.contains("epoch 0 is not the current epoch (1)") && e.contains("[epoch_not_current]"),
        "{e}"
    );
    s.provider_recorded("epoch_not_current");
}

#[test]
fn outside_the_pull_window() {
    // A one-second window after midnight: now is outside it.
    let terms = registry_terms(2, 10).replacen("window = \"P1D\"", "window = \"PT1S\"", 1);
    let (mut s, _) = setup(BIN, 200, &terms);
    s.pps.cli(&["publish"]);
    let e = pull_fails(&s, &[]);
    assert!(
        e.contains("outside the pull window of epoch 1") && e.contains("[outside_window]"),
        "{e}"
    );
    s.provider_recorded("outside_window");
}

#[test]
fn over_the_pull_maximum() {
    let (mut s, _) = setup(BIN, 200, &registry_terms(1, 10));
    s.pps.cli(&["publish"]);
    s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    // Resuming (the same pull session) is not a new pull...
    let again = raw_pull(&s, [0xAB; 16], vec!["id_number".into()]);
    // ...but a second session is refused. (The comparator's key, from a bare client.)
    assert_eq!(
        again,
        Response::Denied {
            refusal: Refusal::OverPullMaximum { max: 1 }
        }
    );
    s.provider_recorded("over_pull_maximum");
}

fn raw_pull(s: &Setup, pull_id: [u8; 16], fields: Vec<String>) -> Response {
    raw_request(
        &s.cmp.dir.join("node.key"),
        &s.pps.addr(),
        Request::PullOpen {
            agreement: agreement_bytes(s),
            epoch: current_epoch(),
            fields,
            pull_id,
        },
    )
    .unwrap()
}

#[test]
fn field_out_of_scope() {
    let (mut s, _) = setup(BIN, 200, &registry_terms(2, 10));
    s.pps.cli(&["publish"]);
    let r = raw_pull(&s, [1; 16], vec!["id_number".into(), "address".into()]);
    assert_eq!(
        r,
        Response::Denied {
            refusal: Refusal::FieldOutOfScope {
                field: "address".into()
            }
        }
    );
    s.provider_recorded("field_out_of_scope");
}

/// Registry rows in the agreement's scope among the first `n` generated.
fn in_scope(n: usize) -> u64 {
    dxmesh_tests::registry_rows(n)
        .iter()
        .filter(|r| r.in_scope())
        .count() as u64
}

#[test]
fn disclosure_over_quota() {
    let n = in_scope(300);
    let (mut s, _) = setup(BIN, 300, &registry_terms(2, n));
    s.pps.cli(&["publish"]);
    s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    assert_eq!(s.commit_results(), n);
    s.disclose("uninsured", "id_number,name", "2").unwrap();
    // The quota is per epoch and cumulative.
    let e = s
        .disclose("uninsured", "id_number,name", &(n - 1).to_string())
        .unwrap_err();
    assert!(
        e.contains(&format!(
            "disclosure of {} records exceeds the {} remaining",
            n - 1,
            n - 2
        )) && e.contains("[disclosure_over_quota]"),
        "{e}"
    );
    s.disclose("uninsured", "id_number,name", &(n - 2).to_string())
        .unwrap();
    let e = s.disclose("uninsured", "id_number,name", "1").unwrap_err();
    assert!(e.contains("exceeds the 0 remaining"), "{e}");
    s.provider_recorded("disclosure_over_quota");
}

/// A disclosure asked again unchanged (a comparator that crashed before it
/// kept the answer and runs its cycle again) is served again without being
/// counted twice; any other request still counts.
#[test]
fn a_disclosure_asked_again_unchanged_is_not_counted_twice() {
    let n = in_scope(300);
    let (mut s, _) = setup(BIN, 300, &registry_terms(2, n));
    s.pps.cli(&["publish"]);
    s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    assert_eq!(s.commit_results(), n);
    let all = n.to_string();
    s.disclose("uninsured", "id_number,name", &all).unwrap();
    s.disclose("uninsured", "id_number,name", &all).unwrap();
    let e = s.disclose("uninsured", "id_number", "1").unwrap_err();
    assert!(
        e.contains("exceeds the 0 remaining") && e.contains("[disclosure_over_quota]"),
        "{e}"
    );
    s.provider_recorded("disclosure_over_quota");
}

/// A result bigger than the epoch's quota cannot be disclosed from at all.
#[test]
fn disclosure_from_a_commitment_over_the_quota() {
    let n = in_scope(300);
    let (mut s, _) = setup(BIN, 300, &registry_terms(2, n - 1));
    s.pps.cli(&["publish"]);
    s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    assert_eq!(s.commit_results(), n);
    let e = s.disclose("uninsured", "id_number,name", "1").unwrap_err();
    assert!(
        e.contains(&format!(
            "it commits to {n} results, over the quota of {} records per epoch",
            n - 1
        )) && e.contains("[commitment_invalid]"),
        "{e}"
    );
    s.provider_recorded("commitment_invalid");
}

#[test]
fn disclosure_of_a_field_not_allowed() {
    let (mut s, _) = setup(BIN, 300, &registry_terms(2, 10_000));
    s.pps.cli(&["publish"]);
    s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    s.commit_results();
    let e = s
        .disclose("uninsured", "id_number,birth_date", "3")
        .unwrap_err();
    assert!(
        e.contains("\"birth_date\" may not be disclosed")
            && e.contains("[disclosure_field_not_allowed]"),
        "{e}"
    );
    s.provider_recorded("disclosure_field_not_allowed");
    // A result kind nothing committed to is refused before it leaves.
    let e = s
        .disclose("deceased_insured", "id_number", "3")
        .unwrap_err();
    assert!(
        e.contains("no result \"deceased_insured\" of epoch 1 is committed here"),
        "{e}"
    );
}

/// The job the comparator defines itself ("everyone" = the whole registry)
/// is not the agreed job: its disclosure is refused and no record of it is
/// written, while the agreed job's result is disclosed as before.
#[test]
fn a_job_the_agreement_does_not_name_discloses_nothing() {
    let (mut s, _) = setup(BIN, 300, &registry_terms(2, 10_000));
    s.pps.cli(&["publish"]);
    s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    let summary = s.compare(
        r#"order = ["everyone", "uninsured"]
[inputs.registry]
dataset = "registry"
provider = "public_security"
[results.everyone]
expr = "registry | registry"
disclose = { input = "registry", fields = ["id_number", "name", "address"] }
[results.uninsured]
expr = "registry"
disclose = { input = "registry", fields = ["id_number", "name"] }
"#,
        "evil",
    );
    let out = s.mesh.path().join("evil");
    let everyone = &summary["results"]["everyone"];
    assert_eq!(everyone["refused"], "job_not_agreed", "{summary}");
    assert_eq!(everyone["disclosed_records"], 0, "{summary}");
    assert!(!out.join("everyone.csv").exists());
    let n = in_scope(300);
    assert_eq!(
        summary["results"]["uninsured"]["disclosed_records"], n,
        "{summary}"
    );
    s.provider_recorded("job_not_agreed");
}

/// What a misbehaving comparator could send by hand: the provider checks
/// every request against the commitment it carries.
#[test]
fn a_token_outside_the_commitment_and_a_forged_commitment_are_refused() {
    let (mut s, _) = setup(BIN, 300, &registry_terms(2, 10_000));
    s.pps.cli(&["publish"]);
    s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    s.commit_results();
    let committed =
        dxmesh_node::compare::commit::Committed::load(&s.cmp.dir.join("data"), 1, "uninsured")
            .unwrap()
            .unwrap();
    let fields = vec!["id_number".to_string()];
    let honest = committed
        .request(agreement_bytes(&s), &fields, &committed.tokens[..3])
        .unwrap();
    let send = |key: &str, r: dxmesh_protocol::wire::DisclosureRequest| {
        raw_request(&s.cmp.dir.join(key), &s.pps.addr(), Request::Disclose(r))
    };
    // The honest request passes (the raw client is the comparator).
    assert!(
        matches!(
            send("node.key", honest.clone()),
            Ok(Response::Disclosed { .. })
        ),
        "the honest request is served"
    );
    // One token swapped for a token outside the result.
    let mut outside = honest.clone();
    outside.tokens[0] = dxmesh_protocol::token::IdToken([0xEE; 16]);
    outside.tokens.sort();
    let r = send("node.key", outside).unwrap();
    assert!(
        matches!(&r, Response::Denied { refusal } if refusal.code() == "not_in_commitment"),
        "{r:?}"
    );
    // The same statement signed by another member (the ministry): forged.
    let statement: dxmesh_protocol::commitment::ResultCommitment =
        dxmesh_protocol::codec::decode(honest.commitment.body()).unwrap();
    let ministry = dxmesh_node::base::keyfile::read_identity(&s.min.dir.join("node.key")).unwrap();
    let mut forged = honest.clone();
    forged.commitment = dxmesh_protocol::signed::Signed::sign(&ministry, &statement).unwrap();
    let r = send("node.key", forged).unwrap();
    assert!(
        matches!(&r, Response::Denied { refusal } if refusal.code() == "commitment_invalid"),
        "{r:?}"
    );
    s.provider_recorded("not_in_commitment");
    s.provider_recorded("commitment_invalid");
}

#[test]
fn disclosure_whose_generation_is_gone_is_a_provider_failure_not_a_missing_feed() {
    let (s, _) = setup(BIN, 300, &registry_terms(2, 10_000));
    s.pps.cli(&["publish"]);
    s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    s.commit_results();
    // A new export replaces the one epoch 1 was built from: the feed's
    // generation is kept for it, and disclosure answers.
    s.mesh.import("ps", "registry", "registry.csv");
    s.disclose("uninsured", "id_number,name", "3").unwrap();
    // Its pin removed by hand, the next import takes the generation away.
    let pins = s.ps.dir.join("data/datasets/registry/pins");
    std::fs::remove_dir_all(&pins).unwrap();
    s.mesh.import("ps", "registry", "registry.csv");
    let e = s.disclose("uninsured", "id_number,name", "3").unwrap_err();
    assert!(
        e.contains("the provider could not serve epoch 1") && e.contains("[provider_failed]"),
        "{e}"
    );
    assert!(
        s.pps
            .log_text()
            .contains("no longer holds generation 1, which the feed of epoch 1 was built from"),
        "the provider's log names the cause:\n{}",
        s.pps.log_text()
    );
}

/// A provider whose quota counter cannot be read refuses the disclosure
/// (fail closed) instead of counting the quota as unused.
#[test]
fn disclosure_with_an_unreadable_quota_counter_is_refused_not_served() {
    let (mut s, _) = setup(BIN, 300, &registry_terms(2, 10_000));
    s.pps.cli(&["publish"]);
    s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    s.commit_results();
    s.disclose("uninsured", "id_number,name", "2").unwrap();
    let key = format!("disc/{}/{}", s.agreement, current_epoch());
    s.restart_provider_with(&[], |data| {
        let store = dxmesh_node::base::store::Store::open(data).unwrap();
        // Two numbers where one is expected: the counter no longer decodes.
        store.set_counter(key.as_bytes(), &(2u64, 2u64)).unwrap();
    });
    let e = s.disclose("uninsured", "id_number,name", "3").unwrap_err();
    assert!(
        e.contains("the provider could not serve epoch 1") && e.contains("[provider_failed]"),
        "{e}"
    );
    s.provider_recorded("provider_failed");
    assert!(
        s.pps
            .log_text()
            .contains("cannot read the quota used; refusing"),
        "the provider's log names the cause:\n{}",
        s.pps.log_text()
    );
}

/// Likewise a pull whose pull counter cannot be read is refused.
#[test]
fn pull_with_an_unreadable_pull_counter_is_refused_not_served() {
    let (mut s, _) = setup(BIN, 200, &registry_terms(2, 10));
    s.pps.cli(&["publish"]);
    let key = format!("pull/{}/{}", s.agreement, current_epoch());
    s.restart_provider_with(&[], |data| {
        let store = dxmesh_node::base::store::Store::open(data).unwrap();
        // A number where a list of pull ids is expected.
        store.set_counter(key.as_bytes(), &7u64).unwrap();
    });
    let e = pull_fails(&s, &[]);
    assert!(e.contains("[provider_failed]"), "{e}");
    s.provider_recorded("provider_failed");
}

/// The registry terms with a second input, HR's `insured_pension`, and
/// `uninsured = registry - insured_pension`.
fn two_input_terms() -> String {
    registry_terms(2, 10_000).replace(
        "[[disclosure.jobs]]\nkind = \"uninsured\"\nexpr = \"registry\"\n",
        "[disclosure.inputs.insured_pension]\ndataset = \"insured\"\nprovider = \"hr\"\n\
         [[disclosure.jobs]]\nkind = \"uninsured\"\nexpr = \"registry - insured_pension\"\n",
    )
}

/// A hostile comparator commits to `registry - insured_pension` with an
/// `insured_pension` feed it made up (an empty feed, signed by a member
/// that is not HR) to have every registry record disclosed: the registry
/// provider refuses the commitment and logs the refusal; so it does when
/// the request leaves that manifest out.
#[test]
fn a_forged_input_feed_is_refused() {
    use dxmesh_protocol::commitment::{CommittedInput, LeafTree, ResultCommitment, token_leaves};
    use dxmesh_protocol::feed::{Chunk, Manifest, Quality};
    use dxmesh_protocol::signed::Signed;
    let terms = two_input_terms();
    assert!(terms.contains("insured_pension"), "{terms}");
    let (mut s, _) = setup(BIN, 300, &terms);
    s.pps.cli(&["publish"]);
    s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    let data = s.cmp.dir.join("data");
    let registry =
        dxmesh_node::pull::pulls::stored_manifest(&data, &agreement_bytes(&s), 1).unwrap();
    let comparator =
        dxmesh_node::base::keyfile::read_identity(&s.cmp.dir.join("node.key")).unwrap();
    let ministry = dxmesh_node::base::keyfile::read_identity(&s.min.dir.join("node.key")).unwrap();
    let forged = Signed::sign(
        &ministry,
        &Manifest {
            provider: ministry.public(),
            agreement: [0x42; 32],
            consumer: comparator.public(),
            dataset: "insured".into(),
            epoch: 1,
            reference_date: dxmesh_protocol::date::Date::parse(&dxmesh_tests::day(0)).unwrap(),
            schema: vec![],
            records: 0,
            chunk_hashes: vec![],
            first_tokens: vec![],
            root: dxmesh_protocol::merkle::empty_root(),
            quality: Quality::default(),
            created_at: dxmesh_protocol::time::Timestamp(0),
            previous: None,
        },
    )
    .unwrap();
    // Every registry token of the first chunk: "registry minus nothing".
    let bytes = s.comparator_chunk(0).unwrap();
    let chunk: Chunk = dxmesh_protocol::codec::decode(&bytes).unwrap();
    let mut tokens: Vec<_> = (0..chunk.count as usize).map(|i| chunk.id(i)).collect();
    tokens.sort();
    tokens.dedup();
    let tree = LeafTree::of_tokens(&tokens);
    let input = |name: &str, dataset: &str, provider: &str, manifest| CommittedInput {
        input: dxmesh_protocol::agreement::AgreedInput {
            name: name.into(),
            dataset: dataset.into(),
            provider: provider.into(),
            filter: vec![],
        },
        manifest,
    };
    let statement = ResultCommitment {
        epoch: 1,
        result_kind: "uninsured".into(),
        expr: "(registry - insured_pension)".into(),
        inputs: vec![
            input("insured_pension", "insured", "hr", forged.digest()),
            input("registry", "registry", "public_security", registry.digest()),
        ],
        sets: vec![],
        count: tree.size(),
        root: tree.root(),
        ministry: None,
    };
    let indices: Vec<u64> = (0..tokens.len().min(50) as u64).collect();
    let request = |manifests: Vec<Signed<Manifest>>| DisclosureRequest {
        agreement: agreement_bytes(&s),
        epoch: 1,
        result_kind: "uninsured".into(),
        fields: vec!["id_number".into(), "name".into(), "address".into()],
        tokens: tokens[..indices.len()].to_vec(),
        commitment: Signed::sign(&comparator, &statement).unwrap(),
        indices: indices.clone(),
        proof: tree.prove(&indices).unwrap(),
        manifests,
        candidates: None,
    };
    assert_eq!(token_leaves(&tokens).len(), tokens.len());
    let send = |r: DisclosureRequest| {
        raw_request(
            &s.cmp.dir.join("node.key"),
            &s.pps.addr(),
            Request::Disclose(r),
        )
        .unwrap()
    };
    for (manifests, why) in [
        (
            vec![registry.clone(), forged.clone()],
            "is defined as a feed of \"hr\", but its manifest is signed by ministry (ministry",
        ),
        (vec![registry.clone()], "carries no signed manifest"),
    ] {
        match send(request(manifests)) {
            Response::Denied {
                refusal: Refusal::CommitmentInvalid { reason },
            } => assert!(reason.contains(why), "{reason}"),
            other => panic!("not refused as commitment_invalid: {other:?}"),
        }
    }
    s.provider_recorded("commitment_invalid");
    assert!(
        s.pps
            .log_text()
            .contains("its manifest is signed by ministry"),
        "the provider's log names the forged feed:\n{}",
        s.pps.log_text()
    );
}

/// Terms that supersede an agreement end it only if they are between the
/// same parties for the same dataset: another member's agreement claiming
/// to supersede the comparator's ends nothing; the comparator's own
/// version 2 does, and a pull under version 1 is then refused
/// (`superseded`) by the provider.
#[test]
fn superseded_only_by_the_same_parties() {
    let (mut s, _) = setup(BIN, 200, &registry_terms(2, 10));
    s.pps.cli(&["publish"]);
    let v2 = s.mesh.path().join("v2.toml");
    std::fs::write(
        &v2,
        format!(
            "version = 2\nsupersedes = \"{}\"\n{}",
            s.agreement,
            registry_terms(2, 10)
        ),
    )
    .unwrap();
    let v1 = agreement_bytes(&s);
    let open = move |pull_id: [u8; 16]| Request::PullOpen {
        agreement: v1,
        epoch: current_epoch(),
        fields: vec!["id_number".into()],
        pull_id,
    };

    // The ministry, another member, agrees terms naming the comparator's
    // agreement as superseded; the provider signs them.
    dxmesh_tests::edit_config(
        &s.min.dir,
        "bootstrap = []",
        &format!("bootstrap = [\"{}\"]", s.pps.addr()),
    );
    s.mesh.install(&s.min, &[&s.mesh.path().join("roster-v1")]);
    let mut pmin = s.mesh.start(&s.min);
    let ps_peer = s.ps.peer_id.clone();
    pmin.wait_for("the provider", Duration::from_secs(30), |st| {
        st.connected.iter().any(|p| p.peer_id == ps_peer)
    });
    dxmesh_tests::agree(&mut pmin, &mut s.pps, &s.ps.peer_id, &v2, "active");
    let r = raw_request(&s.cmp.dir.join("node.key"), &s.pps.addr(), open([1; 16])).unwrap();
    assert!(matches!(r, Response::PullGranted { .. }), "{r:?}");

    // The comparator's own version 2 supersedes it.
    dxmesh_tests::agree(&mut s.pcmp, &mut s.pps, &s.ps.peer_id, &v2, "active");
    let r = raw_request(&s.cmp.dir.join("node.key"), &s.pps.addr(), open([2; 16])).unwrap();
    assert_eq!(
        r,
        Response::Denied {
            refusal: Refusal::Superseded
        }
    );
    s.provider_recorded("[superseded]");
    assert!(pmin.stop());
}
