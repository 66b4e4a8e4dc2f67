//! A hostile comparator (issue 24) holds its own key, edits its own data
//! directory and runs `dxmesh disclose` on whatever it signed. Here it
//! copies its commitment to the ministry candidates over the final
//! result's and asks for the names and addresses of people the ministry
//! check removed (with `dxmesh disclose`, and by hand as the final kind); and it re-signs the candidates as a final result that
//! skips the ministry. The registry provider, whose agreement makes the
//! candidates their own job (ID numbers only) and has the final result
//! name them, refuses each and logs the refusal. The ministry, asked about
//! ID numbers, answers only those the registry vouched for.

use dxmesh_node::compare::commit::{Committed, input_manifests};
use dxmesh_protocol::agreement::Refusal;
use dxmesh_protocol::commitment::{CommittedSet, LeafTree, ResultCommitment};
use dxmesh_protocol::feed::{Chunk, DisclosureReceipt};
use dxmesh_protocol::id::IdNumber;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::token::IdToken;
use dxmesh_protocol::wire::{Request, Response};
use dxmesh_tests::{day, raw_request, registry_input, registry_terms, setup};

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

/// The registry terms with the ministry check as two agreed jobs.
fn candidates_terms() -> String {
    registry_terms(2, 10_000).replace(
        "[[disclosure.jobs]]\nkind = \"uninsured\"\nexpr = \"registry\"\n",
        "[[disclosure.jobs]]\nkind = \"uninsured_candidates\"\n\
         expr = \"registry - other_province\"\nfields = [\"id_number\"]\n\
         [[disclosure.jobs]]\nkind = \"uninsured\"\nexpr = \"registry - other_province\"\n\
         candidates = \"uninsured_candidates\"\n",
    )
}

#[test]
fn the_candidates_commitment_copied_over_the_final_one_discloses_nothing() {
    let terms = candidates_terms();
    assert!(terms.contains("uninsured_candidates"), "{terms}");
    let (mut s, _) = setup(BIN, 300, &terms);
    s.pps.cli(&["publish"]);
    s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    let data = s.cmp.dir.join("data");
    let agreement: [u8; 32] = hex::decode(&s.agreement).unwrap().try_into().unwrap();
    let registry = dxmesh_node::pull::pulls::stored_manifest(&data, &agreement, 1).unwrap();
    let key = dxmesh_node::base::keyfile::read_identity(&s.cmp.dir.join("node.key")).unwrap();
    // The candidates, as the comparator's cycle commits to them.
    let chunk: Chunk = dxmesh_protocol::codec::decode(&s.comparator_chunk(0).unwrap()).unwrap();
    let mut tokens: Vec<_> = (0..chunk.count as usize).map(|i| chunk.id(i)).collect();
    tokens.dedup();
    let tree = LeafTree::of_tokens(&tokens);
    let (empty_count, empty_root) = dxmesh_protocol::commitment::set_root(&[]);
    let statement = |kind: &str| ResultCommitment {
        epoch: 1,
        result_kind: kind.into(),
        expr: "(registry - other_province)".into(),
        inputs: vec![registry_input(registry.digest())],
        sets: vec![CommittedSet {
            name: "other_province".into(),
            count: empty_count,
            root: empty_root,
        }],
        count: tree.size(),
        root: tree.root(),
        ministry: None,
    };
    let keep = |st: &ResultCommitment, stem: &str| {
        let signed = Signed::sign(&key, st).unwrap();
        Committed::new(signed, st, tokens.clone(), tree.clone())
            .with_manifests(input_manifests(&data, st))
            .store_as(&data, stem)
            .unwrap();
    };
    let candidates = statement("uninsured_candidates");
    keep(&candidates, "uninsured_candidates");
    let out = s
        .disclose("uninsured_candidates", "id_number", "3")
        .unwrap();
    assert!(out.contains("3 record"), "{out}");
    // More than the ID numbers of the candidates.
    let e = s
        .disclose("uninsured_candidates", "id_number,name", "3")
        .unwrap_err();
    assert!(e.contains("[disclosure_field_not_allowed]"), "{e}");
    s.provider_recorded("disclosure_field_not_allowed");
    // The attack: the candidates' files copied over the final result's.
    // `dxmesh disclose` asks under the kind the commitment states, so the
    // names are refused as fields of the candidates; asked by hand as the
    // final result, the commitment is of another kind.
    keep(&candidates, "uninsured");
    let e = s
        .disclose("uninsured", "id_number,name,address", "300")
        .unwrap_err();
    assert!(e.contains("[disclosure_field_not_allowed]"), "{e}");
    let copied = Committed::load(&data, 1, "uninsured").unwrap().unwrap();
    let fields = ["id_number".to_string(), "name".into(), "address".into()];
    let mut request = copied.request(agreement, &fields, &tokens[..20]).unwrap();
    request.result_kind = "uninsured".into();
    let r = raw_request(
        &s.cmp.dir.join("node.key"),
        &s.pps.addr(),
        Request::Disclose(request),
    )
    .unwrap();
    match r {
        Response::Denied {
            refusal: Refusal::CommitmentInvalid { reason },
        } => assert!(
            reason.contains("\"uninsured_candidates\" of epoch 1"),
            "{reason}"
        ),
        other => panic!("not refused as commitment_invalid: {other:?}"),
    }
    // The candidates re-signed as the final result, skipping the ministry.
    keep(&statement("uninsured"), "uninsured");
    let e = s
        .disclose("uninsured", "id_number,name,address", "300")
        .unwrap_err();
    assert!(
        e.contains("[commitment_invalid]") && e.contains("names no candidates commitment"),
        "{e}"
    );
    s.provider_recorded("commitment_invalid");
}
/// The terms of the ministry's national index for the comparator: its one
/// job is the candidates `registry`, at most `quota` IDs per epoch.
fn national_terms(quota: u64) -> String {
    format!(
        r#"dataset = "national"
token_group = "national"
purpose_code = "registration/ministry-check"
purpose = "Remove residents insured in another province from the outreach list."
not_before = "{from}"
not_after = "{until}"
retention_days = 90
fields = [ {{ name = "id_number", treatment = "token" }} ]
rows = []
[cycle]
period = "daily"
anchor = "{from}"
window = "P1D"
max_pulls = 1
[disclosure]
fields = ["province_code", "insurance_type"]
max_records_per_epoch = {quota}
[disclosure.inputs.registry]
dataset = "registry"
provider = "public_security"
[[disclosure.jobs]]
kind = "ministry_query"
expr = "registry"
"#,
        from = day(-1),
        until = day(365),
    )
}

/// The ministry answers only about ID numbers the registry provider
/// disclosed under the candidates' commitment, by its signed receipt: a
/// comparator that adds an ID of its own choosing, vouches for IDs itself,
/// or carries a commitment of its own making with a large count (the
/// enumeration of the national index) is refused, and the ministry records
/// each refusal. Beyond the receipt, the agreed job and the committed
/// count still bound what is asked in an epoch.
#[test]
fn the_ministry_answers_only_ids_the_registry_vouched_for() {
    let (mut s, rows) = setup(BIN, 50, &registry_terms(2, 10_000));
    s.mesh.install(&s.min, &[&s.mesh.path().join("roster-v1")]);
    let far = dxmesh_protocol::date::Date::new(2100, 1, 1).unwrap();
    let id_of = |raw: &str| dxmesh_protocol::id::normalise(raw, far).unwrap();
    let mut csv = String::from("id_number,province_code,insurance_type\n");
    for r in &rows {
        csv.push_str(&format!("{},11,enterprise_pension\n", r.id));
    }
    std::fs::write(s.mesh.path().join("national.csv"), csv).unwrap();
    s.mesh.import("min", "national", "national.csv");
    std::fs::write(s.mesh.path().join("national.toml"), national_terms(100)).unwrap();
    dxmesh_tests::edit_config(
        &s.min.dir,
        "bootstrap = []",
        &format!("bootstrap = [\"{}\"]", s.pcmp.addr()),
    );
    let mut pmin = s.mesh.start(&s.min);
    pmin.wait_for("the comparator", std::time::Duration::from_secs(30), |st| {
        !st.connected.is_empty()
    });
    let min_peer = s.min.peer_id.clone();
    let (_, national) = dxmesh_tests::agree(
        &mut s.pcmp,
        &mut pmin,
        &min_peer,
        &s.mesh.path().join("national.toml"),
        "active",
    );
    // Both sides show the national agreement's epoch in their status.
    for (node, side) in [
        (&pmin, "provider (ministry queries)"),
        (&s.pcmp, "consumer (ministry queries)"),
    ] {
        let st = node.status();
        assert!(
            st.epochs
                .iter()
                .any(|e| e.agreement == national && e.side == side && e.dataset == "national"),
            "{side}: {:?}",
            st.epochs
        );
    }
    let national: [u8; 32] = hex::decode(&national).unwrap().try_into().unwrap();
    // The comparator's committed result, and the registry's disclosure of
    // the ID numbers of two of its tokens, with the receipt.
    s.pps.cli(&["publish"]);
    s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    s.commit_results();
    let data = s.cmp.dir.join("data");
    let committed = Committed::load(&data, 1, "uninsured").unwrap().unwrap();
    let registry: [u8; 32] = hex::decode(&s.agreement).unwrap().try_into().unwrap();
    let request = committed
        .request(registry, &["id_number".to_string()], &committed.tokens[..2])
        .unwrap();
    let cmp_key = s.cmp.dir.join("node.key");
    let Response::Disclosed {
        disclosure,
        receipt: Some(receipt),
    } = raw_request(&cmp_key, &s.pps.addr(), Request::Disclose(request)).unwrap()
    else {
        panic!("the registry disclosed no ID numbers with a receipt");
    };
    let pairs = dxmesh_protocol::feed::disclosed_id_pairs(&disclosure.verify().unwrap());
    assert_eq!(pairs.len(), 2);
    let key = |node: &dxmesh_tests::NodeDir| {
        dxmesh_node::base::keyfile::read_identity(&node.dir.join("node.key")).unwrap()
    };
    let ask = |ids: &[(IdToken, IdNumber)], commitment: &Signed<ResultCommitment>, receipt| {
        let r = raw_request(
            &cmp_key,
            &pmin.addr(),
            Request::MinistryQuery {
                agreement: national,
                epoch: 1,
                fields: vec!["province_code".into(), "insurance_type".into()],
                ids: ids.to_vec(),
                commitment: commitment.clone(),
                receipt: Box::new(receipt),
            },
        )
        .unwrap();
        match r {
            Response::Ministry { answer } => {
                format!("answered {}", answer.verify().unwrap().found.len())
            }
            Response::Denied { refusal } => refusal.code().to_string(),
            other => format!("{other:?}"),
        }
    };
    let honest = &committed.signed;
    assert_eq!(ask(&pairs, honest, (*receipt).clone()), "answered 2");
    // Asked again unchanged (a comparator that crashed): answered again.
    assert_eq!(ask(&pairs, honest, (*receipt).clone()), "answered 2");
    // One ID more than the registry vouched for.
    let stranger = rows
        .iter()
        .map(|r| id_of(&r.raw_id))
        .find(|id| !pairs.iter().any(|(_, p)| p == id))
        .unwrap();
    let mut more = pairs.clone();
    more.push((IdToken([0xFF; 16]), stranger));
    assert_eq!(ask(&more, honest, (*receipt).clone()), "not_in_commitment");
    // IDs the comparator vouches for itself.
    let (count, root) = dxmesh_protocol::feed::id_pairs_root(&more);
    let own: DisclosureReceipt = dxmesh_protocol::codec::decode(receipt.body()).unwrap();
    let forged = Signed::sign(
        &key(&s.cmp),
        &DisclosureReceipt {
            count,
            root,
            ..own.clone()
        },
    )
    .unwrap();
    assert_eq!(ask(&more, honest, forged), "commitment_invalid");
    // A commitment of the comparator's own making, declaring 40,000
    // candidates under a random root, with the real receipt.
    let mut big: ResultCommitment = dxmesh_protocol::codec::decode(honest.body()).unwrap();
    (big.count, big.root) = (40_000, [0x5A; 32]);
    let big = Signed::sign(&key(&s.cmp), &big).unwrap();
    assert_eq!(ask(&pairs, &big, (*receipt).clone()), "commitment_invalid");
    for code in ["not_in_commitment", "commitment_invalid"] {
        pmin.wait_for(
            &format!("a `{code}` refusal"),
            std::time::Duration::from_secs(20),
            |st| st.refusals.iter().any(|r| r.reason.contains(code)),
        );
    }
}
