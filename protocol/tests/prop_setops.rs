//! Property tests of `setops` against naive `BTreeSet` / `BTreeMap` models on
//! random sorted vectors with duplicates: union, intersection, difference,
//! `attr_mismatch`, and `MergeBits` for 1 to 8 inputs (and 9 to 64 short ones). Tokens come from a
//! small domain (so inputs overlap and repeat) spread over the first and last
//! byte (so byte order, not just one byte, decides). A disorder injected at a
//! random place of one input is reported by every operator with that input's
//! index and the exact pair of tokens.

use dxmesh_protocol::setops::{
    MergeBits, SetError, attr_mismatch, check_sorted, difference, intersection, union,
};
use dxmesh_protocol::token::{AttrToken, IdToken};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// A token from a small number: high bits in byte 0, low bits in byte 15.
fn tok(n: u16) -> IdToken {
    let mut b = [0u8; 16];
    b[0] = (n >> 4) as u8;
    b[15] = (n & 15) as u8;
    b[7] = 0x5a;
    IdToken(b)
}

/// A sorted vector of tokens with duplicates, from a domain of `domain`.
fn sorted_tokens(domain: u16, max_len: usize) -> impl Strategy<Value = Vec<IdToken>> {
    prop::collection::vec(0..domain, 0..max_len).prop_map(|mut v| {
        v.sort_unstable();
        v.into_iter().map(tok).collect()
    })
}

/// `(id, attr)` rows sorted by id, attributes in random order per id.
fn sorted_rows(max_len: usize) -> impl Strategy<Value = Vec<(IdToken, AttrToken)>> {
    prop::collection::vec((0u16..24, 0u8..4), 0..max_len).prop_map(|mut v| {
        // Sort by id only (stable), so attrs stay in generation order.
        v.sort_by_key(|&(i, _)| i);
        v.into_iter()
            .map(|(i, a)| (tok(i), AttrToken([a; 8])))
            .collect()
    })
}

fn set(v: &[IdToken]) -> BTreeSet<IdToken> {
    v.iter().copied().collect()
}

fn attr_model(v: &[(IdToken, AttrToken)]) -> BTreeMap<IdToken, BTreeSet<AttrToken>> {
    let mut m: BTreeMap<IdToken, BTreeSet<AttrToken>> = BTreeMap::new();
    for &(i, a) in v {
        m.entry(i).or_default().insert(a);
    }
    m
}

/// `v` with one token smaller than its predecessor inserted, and the error
/// that disorder must produce for input `input`. `None` if `v` offers no
/// place (all tokens the smallest of the domain).
fn make_unsorted(
    v: &[IdToken],
    input: usize,
    pos: prop::sample::Index,
    pick: u16,
) -> Option<(Vec<IdToken>, SetError)> {
    // Places p where v[p-1] > tok(0), so a smaller token exists.
    let places: Vec<usize> = (1..=v.len()).filter(|&p| v[p - 1] > tok(0)).collect();
    if places.is_empty() {
        return None;
    }
    let p = places[pos.index(places.len())];
    let previous = v[p - 1];
    // `tok` is increasing, so the domain numbers below `previous` are 0..below.
    let below = (0u16..1024).take_while(|&n| tok(n) < previous).count() as u16;
    let next = tok(pick % below);
    let mut out = v.to_vec();
    out.insert(p, next);
    Some((
        out,
        SetError::Unsorted {
            input,
            previous,
            next,
        },
    ))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn two_way_operators_match_the_model(
        a in sorted_tokens(48, 40),
        b in sorted_tokens(48, 40),
    ) {
        let (sa, sb) = (set(&a), set(&b));

        let mut u = union(a.clone(), b.clone());
        let got: Vec<_> = u.by_ref().collect();
        prop_assert_eq!(u.error(), None);
        prop_assert_eq!(got, sa.union(&sb).copied().collect::<Vec<_>>());

        let mut i = intersection(a.clone(), b.clone());
        let got: Vec<_> = i.by_ref().collect();
        prop_assert_eq!(i.error(), None);
        prop_assert_eq!(got, sa.intersection(&sb).copied().collect::<Vec<_>>());

        let mut d = difference(a.clone(), b.clone());
        let got: Vec<_> = d.by_ref().collect();
        prop_assert_eq!(d.error(), None);
        prop_assert_eq!(got, sa.difference(&sb).copied().collect::<Vec<_>>());

        let mut d = difference(b.clone(), a.clone());
        let got: Vec<_> = d.by_ref().collect();
        prop_assert_eq!(d.error(), None);
        prop_assert_eq!(got, sb.difference(&sa).copied().collect::<Vec<_>>());

        prop_assert!(check_sorted(a.clone(), 0).all(|r| r.is_ok()));
        prop_assert_eq!(check_sorted(a.clone(), 0).count(), a.len());
    }

    #[test]
    fn merge_bits_matches_the_model(
        inputs in prop::collection::vec(sorted_tokens(64, 30), 1..=8),
    ) {
        let mut model: BTreeMap<IdToken, u64> = BTreeMap::new();
        for (i, v) in inputs.iter().enumerate() {
            for &t in v {
                *model.entry(t).or_default() |= 1 << i;
            }
        }
        let mut m = MergeBits::new(inputs.clone()).unwrap();
        prop_assert_eq!(m.inputs(), inputs.len());
        let got: Vec<_> = m.by_ref().collect();
        prop_assert_eq!(m.error(), None);
        prop_assert_eq!(got, model.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn merge_bits_matches_the_model_for_many_inputs(
        inputs in prop::collection::vec(sorted_tokens(96, 6), 9..=64),
    ) {
        let mut model: BTreeMap<IdToken, u64> = BTreeMap::new();
        for (i, v) in inputs.iter().enumerate() {
            for &t in v {
                *model.entry(t).or_default() |= 1 << i;
            }
        }
        let mut m = MergeBits::new(inputs).unwrap();
        let got: Vec<_> = m.by_ref().collect();
        prop_assert_eq!(m.error(), None);
        prop_assert_eq!(got, model.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn attr_mismatch_matches_the_model(
        a in sorted_rows(40),
        b in sorted_rows(40),
    ) {
        let (ma, mb) = (attr_model(&a), attr_model(&b));
        let want: Vec<IdToken> = ma
            .iter()
            .filter(|(id, attrs)| mb.get(*id).is_some_and(|other| other != *attrs))
            .map(|(id, _)| *id)
            .collect();
        let mut m = attr_mismatch(a, b);
        let got: Vec<_> = m.by_ref().collect();
        prop_assert_eq!(m.error(), None);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn unsorted_input_is_reported_with_its_index(
        inputs in prop::collection::vec(sorted_tokens(48, 20), 2..=8),
        which in any::<prop::sample::Index>(),
        pos in any::<prop::sample::Index>(),
        pick in any::<u16>(),
    ) {
        let j = which.index(inputs.len());
        let Some((bad, want)) = make_unsorted(&inputs[j], j, pos, pick) else {
            return Ok(());
        };
        let mut inputs = inputs;
        inputs[j] = bad;

        // MergeBits over all inputs.
        let mut m = MergeBits::new(inputs.clone()).unwrap();
        m.by_ref().for_each(drop);
        prop_assert_eq!(m.error(), Some(&want));
        prop_assert_eq!(m.next(), None);

        // check_sorted: Ok up to the disorder, then that error, then nothing.
        let out: Vec<_> = check_sorted(inputs[j].clone(), j).collect();
        prop_assert_eq!(out.last(), Some(&Err(want.clone())));
        prop_assert!(out[..out.len() - 1].iter().all(|r| r.is_ok()));

        // The two-way operators, with the bad input first or second and a
        // sorted partner (always read to the end, so always found).
        let other = inputs[if j == 0 { 1 } else { 0 }].clone();
        let bad = inputs[j].clone();
        let as_input = |e: &SetError, input: usize| match e {
            SetError::Unsorted { previous, next, .. } => SetError::Unsorted {
                input,
                previous: *previous,
                next: *next,
            },
            other => other.clone(),
        };
        for (x, y, input) in [(bad.clone(), other.clone(), 0), (other.clone(), bad.clone(), 1)] {
            let want = as_input(&want, input);
            let mut u = union(x.clone(), y.clone());
            u.by_ref().for_each(drop);
            prop_assert_eq!(u.error(), Some(&want));
            let mut i = intersection(x.clone(), y.clone());
            i.by_ref().for_each(drop);
            prop_assert_eq!(i.error(), Some(&want));
            let mut d = difference(x.clone(), y.clone());
            d.by_ref().for_each(drop);
            prop_assert_eq!(d.error(), Some(&want));

            let rows = |v: &[IdToken]| -> Vec<(IdToken, AttrToken)> {
                v.iter().map(|&t| (t, AttrToken([1; 8]))).collect()
            };
            let mut am = attr_mismatch(rows(&x), rows(&y));
            am.by_ref().for_each(drop);
            prop_assert_eq!(am.error(), Some(&want));
        }
    }
}
