//! Offline recompute (issue 15): a security officer with the comparator's
//! bundle and pulled feeds (tokens only) re-runs every committed job; an
//! honest commitment recomputes, and a comparator that commits to a result
//! its job does not give (here: one token more) is caught and the token
//! named; so is one that subtracts an `other_province` set it names no
//! ministry answer for, and one whose input feed the provider's evidence
//! does not show published.

use dxmesh_node::compare::commit::Committed;
use dxmesh_protocol::commitment::{LeafTree, ResultCommitment, set_root};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::token::IdToken;
use dxmesh_tests::{registry_terms, setup};

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

#[test]
fn an_honest_commitment_recomputes_and_a_lying_one_is_caught() {
    let (s, _) = setup(BIN, 300, &registry_terms(2, 10_000));
    // The provider's evidence from before it published anything.
    let early = s.mesh.path().join("bundle-provider-early");
    s.pps
        .cli(&["audit", "export", "--out", early.to_str().unwrap()]);
    s.pps.cli(&["publish"]);
    s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    let n = s.commit_results();
    let data = s.cmp.dir.join("data");
    let provider = s.mesh.path().join("bundle-provider");
    s.pps
        .cli(&["audit", "export", "--out", provider.to_str().unwrap()]);
    let recompute_with = |bundle: &std::path::Path, provider: &std::path::Path| {
        s.mesh.audit_recompute(bundle, &data, &[provider])
    };
    let recompute = |bundle: &std::path::Path| recompute_with(bundle, &provider);
    let honest = s.mesh.path().join("bundle-honest");
    s.pcmp
        .cli(&["audit", "export", "--out", honest.to_str().unwrap()]);
    let out = recompute(&honest);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("VERDICT: OK — 1 commitment(s)"), "{text}");
    assert!(
        text.contains(&format!("committed {n:>9}  recomputed {n:>9}  OK")),
        "{text}"
    );
    // A feed the provider's evidence does not show published is not
    // taken on the comparator's word.
    let out = recompute_with(&honest, &early);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("the provider's bundle shows no such feed published"),
        "{text}"
    );

    // The comparator signs a result with one token the job does not give.
    let kept = Committed::load(&data, 1, "uninsured").unwrap().unwrap();
    let mut statement: ResultCommitment =
        dxmesh_protocol::codec::decode(kept.signed.body()).unwrap();
    let fake = IdToken([0xAB; 16]);
    let mut tokens = kept.tokens.clone();
    tokens.push(fake);
    tokens.sort();
    (statement.count, statement.root) = set_root(&tokens);
    let key = dxmesh_node::base::keyfile::read_identity(&s.cmp.dir.join("node.key")).unwrap();
    let tree = LeafTree::of_tokens(&tokens);
    let lie = Committed::new(
        Signed::sign(&key, &statement).unwrap(),
        &statement,
        tokens,
        tree,
    );
    lie.store(&data).unwrap();
    let lying = s.mesh.path().join("bundle-lying");
    s.pcmp
        .cli(&["audit", "export", "--out", lying.to_str().unwrap()]);
    let out = recompute(&lying);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("WRONG"), "{text}");
    assert!(
        text.contains(&format!(
            "1 committed token(s) are not results of the job: {fake}"
        )),
        "{text}"
    );

    // A comparator that subtracts people "insured in another province"
    // without naming the ministry answer they came from.
    let mut subtracting = statement.clone();
    subtracting.sets = vec![dxmesh_protocol::commitment::CommittedSet {
        name: "other_province".into(),
        count: 1,
        root: [7; 32],
    }];
    Committed::new(
        Signed::sign(&key, &subtracting).unwrap(),
        &subtracting,
        kept.tokens.clone(),
        LeafTree::of_tokens(&kept.tokens),
    )
    .store_as(&data, "subtracting")
    .unwrap();
    let unfounded = s.mesh.path().join("bundle-unfounded");
    s.pcmp
        .cli(&["audit", "export", "--out", unfounded.to_str().unwrap()]);
    let out = recompute(&unfounded);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(
            "subtracts 1 tokens as insured in another province but names no ministry answer"
        ),
        "{text}"
    );

    // A comparator that drops a commitment it signed from its evidence:
    // its own log names it.
    let all = data.join("commitments/1/all");
    let honest_file = all.join(format!(
        "{}.commitment",
        dxmesh_protocol::hex(&kept.signed.digest())
    ));
    std::fs::remove_file(&honest_file).unwrap();
    let dropped = s.mesh.path().join("bundle-dropped");
    s.pcmp
        .cli(&["audit", "export", "--out", dropped.to_str().unwrap()]);
    let out = recompute(&dropped);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "MISSING: commitment {} (the comparator logged signing it",
            dxmesh_protocol::hex(&kept.signed.digest())
        )),
        "{text}"
    );
}
