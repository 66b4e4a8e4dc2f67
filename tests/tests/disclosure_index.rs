//! Disclosure through a feed's private index, in process: a registry of
//! three dataset blocks is imported and published, and tokens from every
//! block (neighbours read together, far ones apart, repeats, one token the
//! feed lacks) resolve to exactly the records they came from; a row scope
//! (an input's `where`) keeps the records outside it back; a dataset
//! re-imported since the feed was published is refused.

use dxmesh_node::dataset::{ImportOptions, MAX_BLOCK_RECORDS, import, unpin};
use dxmesh_node::disclose::records::{Asked, disclose};
use dxmesh_node::publish::build::{PublishInput, pin_holder, publish};
use dxmesh_node::publish::store::FeedStoreError;
use dxmesh_protocol::commitment::RowScope;
use dxmesh_protocol::date::Date;
use dxmesh_protocol::feed::Disclosure;
use dxmesh_protocol::id::IdNumber;
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::token::{EpochKey, IdToken};
use dxmesh_tests::{RegistryRow, registry_csv, registry_feed_terms, registry_rows};

#[test]
fn tokens_from_every_block_resolve_to_their_own_records() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let rows = registry_rows(2 * MAX_BLOCK_RECORDS + 5_000);
    let csv = dir.path().join("registry.csv");
    std::fs::write(&csv, registry_csv(&rows)).unwrap();
    let today = Date::parse(&dxmesh_tests::day(0)).unwrap();
    let opts = ImportOptions {
        dataset: "registry".into(),
        file: csv.clone(),
        mapping: None,
        format: None,
        reference: today,
        encoding: None,
        delimiter: None,
        sheet: None,
        accept_shrink: false,
        memory: dxmesh_node::base::config::LimitsConfig::default().sort_bytes(),
    };
    import(&data, &opts).unwrap();

    let provider = Identity::from_seed([1; 32]).unwrap();
    let consumer = Identity::from_seed([2; 32]).unwrap();
    let terms = registry_feed_terms(dir.path(), &provider, &consumer);
    let key = EpochKey::from_bytes([7; 32]);
    let now = dxmesh_node::base::clock::now();
    publish(&PublishInput {
        data_dir: &data,
        terms: &terms,
        epoch: 0,
        key: Some(&key),
        identity: &provider,
        previous: None,
        now,
        republish: false,
        memory: dxmesh_node::base::config::LimitsConfig::default().sort_bytes(),
    })
    .unwrap();

    // Rows at the start, middle and end of every block, neighbours, and
    // the last row; only rows the feed's scope keeps have tokens.
    let n = rows.len();
    let picks: Vec<usize> = [0, 1, 2, 3, 500, 65_535, 65_536, 65_537, 100_000, 131_071]
        .into_iter()
        .chain([131_072, 131_073, n - 2, n - 1])
        .filter(|i| rows[*i].in_scope())
        .collect();
    assert!(picks.len() >= 8, "enough picks in scope");
    let token_of =
        |i: usize| key.id_token(&IdNumber::from_normalised(rows[i].id.as_bytes()).unwrap());
    let mut tokens: Vec<IdToken> = picks.iter().map(|i| token_of(*i)).collect();
    tokens.push(token_of(picks[0]));
    let stranger = IdToken([0xAB; 16]);
    tokens.push(stranger);
    // Out-of-scope rows were never in the feed: unknown too.
    let out_of_scope = (0..n).find(|i| !rows[*i].in_scope()).unwrap();
    tokens.push(token_of(out_of_scope));

    let fields = [
        "id_number".to_string(),
        "name".to_string(),
        "address".to_string(),
    ];
    let ask = |fields: &[String], scope: &RowScope| {
        disclose(
            &data,
            &terms,
            0,
            &Asked {
                result_kind: "uninsured",
                fields,
                tokens: &tokens,
                scope,
            },
            now,
        )
    };
    let d = ask(&fields, &RowScope::Every).unwrap();
    let mut got: Vec<(IdToken, Vec<String>)> = d
        .records
        .iter()
        .map(|r| (r.token, r.values.clone()))
        .collect();
    got.sort();
    let mut want: Vec<(IdToken, Vec<String>)> = picks
        .iter()
        .map(|i| {
            let r = &rows[*i];
            (
                token_of(*i),
                vec![r.id.clone(), r.name.clone(), r.address.clone()],
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want);
    let mut unknown = d.unknown.clone();
    unknown.sort();
    let mut want_unknown = vec![stranger, token_of(out_of_scope)];
    want_unknown.sort();
    assert_eq!(unknown, want_unknown);

    row_scope_keeps_other_regions_back(&ask, &fields, &picks, &rows, &token_of);

    // A field the dataset lacks is refused before anything is read.
    let err = ask(&["salary".to_string()], &RowScope::Every);
    assert!(matches!(err, Err(FeedStoreError::Schema { .. })), "{err:?}");
    // So is a scope on a column the dataset lacks.
    let err = ask(
        &fields,
        &RowScope::AnyOf(vec![vec![("salary".into(), vec!["1".into()])]]),
    );
    assert!(matches!(err, Err(FeedStoreError::Schema { .. })), "{err:?}");

    // Re-imported since the feed was built: the generation the feed reads
    // is kept for it (pinned when it was built), and disclosure answers.
    import(&data, &opts).unwrap();
    let kept = ask(&fields, &RowScope::Every);
    assert!(kept.is_ok(), "{kept:?}");
    // Once no feed pins it (republished or erased), the next import removes
    // it, and disclosure says so.
    unpin(&data, "registry", &pin_holder(&terms.id(), 0)).unwrap();
    import(&data, &opts).unwrap();
    let err = ask(&fields, &RowScope::Every);
    assert!(
        matches!(
            err,
            Err(FeedStoreError::GenerationGone { generation: 1, .. })
        ),
        "{err:?}"
    );
}

/// A disclosure of these fields under this row scope.
type Ask<'a> = dyn Fn(&[String], &RowScope) -> Result<Disclosure, FeedStoreError> + 'a;

/// Kept to the rows of one region (an input's `where` on a clear field):
/// the picks of other regions are not disclosed, and are listed unknown;
/// a scope no input opens discloses nothing.
fn row_scope_keeps_other_regions_back(
    ask: &Ask<'_>,
    fields: &[String],
    picks: &[usize],
    rows: &[RegistryRow],
    token_of: &dyn Fn(usize) -> IdToken,
) {
    let region = rows[picks[0]].region.clone();
    let scope = RowScope::AnyOf(vec![vec![("region_code".into(), vec![region.clone()])]]);
    let d = ask(fields, &scope).unwrap();
    let mut got: Vec<IdToken> = d.records.iter().map(|r| r.token).collect();
    got.sort();
    got.dedup();
    let mut want: Vec<IdToken> = picks
        .iter()
        .filter(|i| rows[**i].region == region)
        .map(|i| token_of(*i))
        .collect();
    want.sort();
    want.dedup();
    assert_eq!(got, want);
    assert!(
        picks.iter().any(|i| rows[*i].region != region),
        "a pick outside the region"
    );
    for i in picks.iter().filter(|i| rows[**i].region != region) {
        assert!(d.unknown.contains(&token_of(*i)), "pick {i} is unknown");
    }
    // A scope that no input opens discloses nothing.
    let d = ask(fields, &RowScope::AnyOf(vec![])).unwrap();
    assert!(d.records.is_empty());
}
