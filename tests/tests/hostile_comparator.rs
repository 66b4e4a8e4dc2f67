//! A hostile comparator (issue 24) holds its own key, edits its own data
//! directory and runs `dxmesh disclose` on whatever it signed. Here it
//! copies its commitment to the ministry candidates over the final
//! result's and asks for the names and addresses of people the ministry
//! check removed (with `dxmesh disclose`, and by hand as the final kind); and it re-signs the candidates as a final result that
//! skips the ministry. The registry provider, whose agreement makes the
//! candidates their own job (ID numbers only) and has the final result
//! name them, refuses each and logs the refusal.

use dxmesh_node::compare::commit::{Committed, input_manifests};
use dxmesh_protocol::agreement::Refusal;
use dxmesh_protocol::commitment::{CommittedInput, CommittedSet, LeafTree, ResultCommitment};
use dxmesh_protocol::feed::Chunk;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::wire::{Request, Response};
use dxmesh_tests::{raw_request, registry_terms, setup};

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
        inputs: vec![CommittedInput {
            input: dxmesh_protocol::agreement::AgreedInput {
                name: "registry".into(),
                dataset: "registry".into(),
                provider: "public_security".into(),
                filter: vec![],
            },
            manifest: registry.digest(),
        }],
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
