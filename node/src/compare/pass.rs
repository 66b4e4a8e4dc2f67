//! The comparison engine: one streaming pass over every pulled feed of a
//! job at once. Feeds are sorted by ID token, so the pass is a k-way merge:
//! for each distinct token (in order) it reads that token's records from
//! each feed, sets one membership bit per input (after the input's clear
//! field filter), compares attribute tokens where a result asks for it,
//! evaluates every result expression on the bits, and counts coverage by
//! region. Each pulled feed is read and verified once, by its own thread,
//! however many inputs use it. Memory is a few decoded chunks per feed plus
//! the result token lists.

use crate::compare::jobs::Compiled;
use crate::pull::pulls::{FeedReader, PullError};
use dxmesh_protocol::agreement::Treatment;
use dxmesh_protocol::feed::Chunk;
use dxmesh_protocol::token::{AttrToken, IdToken};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a comparison pass failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompareError {
    /// A feed could not be read or failed verification.
    #[error(transparent)]
    Feed(#[from] PullError),
    /// The job does not fit a feed's schema.
    #[error("input {input}: {problem}")]
    Schema {
        /// Input name.
        input: String,
        /// What does not fit.
        problem: String,
    },
    /// A feed is not sorted (a provider bug or tampering the hashes did not catch).
    #[error("input {input}: tokens go backwards in chunk {chunk}")]
    Unsorted {
        /// Input name.
        input: String,
        /// Chunk.
        chunk: u32,
    },
}

/// One input's feed and how to read it.
pub struct Input {
    /// Name in the job.
    pub name: String,
    /// The pulled feed.
    pub reader: FeedReader,
}

struct Cursor {
    name: String,
    schema: Vec<dxmesh_protocol::agreement::FieldTerm>,
    chunks: u32,
    /// Chunks read and verified ahead by a background thread.
    incoming: std::sync::mpsc::Receiver<Result<Arc<Chunk>, PullError>>,
    chunk: Option<Arc<Chunk>>,
    next_chunk: u32,
    pos: usize,
    filter: Vec<(usize, Vec<String>)>,
    region_col: Option<usize>,
    records: u64,
    tokens: u64,
    last: Option<IdToken>,
}

impl Cursor {
    fn load(&mut self) -> Result<(), CompareError> {
        loop {
            if let Some(c) = &self.chunk
                && self.pos < c.count as usize
            {
                return Ok(());
            }
            if self.next_chunk >= self.chunks {
                self.chunk = None;
                return Ok(());
            }
            let next = self.incoming.recv().map_err(|_| CompareError::Schema {
                input: self.name.clone(),
                problem: "the chunk reader stopped".into(),
            })?;
            self.chunk = Some(next?);
            self.next_chunk += 1;
            self.pos = 0;
        }
    }

    fn peek(&self) -> Option<IdToken> {
        self.chunk.as_ref().map(|c| c.id(self.pos))
    }
}

/// What one pass found.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PassOutput {
    /// Tokens of each result, in job order, sorted.
    pub results: Vec<Vec<IdToken>>,
    /// Tokens of the ministry candidates, sorted.
    pub candidates: Vec<IdToken>,
    /// Region -> (eligible, covered).
    pub coverage: BTreeMap<String, (u64, u64)>,
    /// Distinct tokens merged.
    pub distinct_tokens: u64,
    /// Records read per input.
    pub records: Vec<u64>,
    /// Distinct tokens per input (after filters).
    pub members: Vec<u64>,
}

/// What the job's expressions make of one token: which results it is in
/// (bit `j` for result `j`), whether it is a ministry candidate, and whether
/// it counts as eligible and as covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outcome {
    results: u64,
    candidate: bool,
    eligible: bool,
    covered: bool,
}

/// Largest number of bits an outcome depends on for which the pass
/// tabulates every outcome beforehand (a table of 2^16 entries at most).
const MAX_TABLE_BITS: usize = 16;

impl Outcome {
    /// Evaluates the job's expressions for a token in the inputs of `bits`
    /// (plus `other_province`), with these attribute mismatches.
    fn of(job: &Compiled, n_inputs: usize, mut bits: u64, mismatch: &[bool]) -> Outcome {
        let mut results = 0u64;
        for (j, (_, expr, _)) in job.results.iter().enumerate() {
            if expr.eval(bits, mismatch) {
                bits |= 1 << (n_inputs + j);
                results |= 1 << j;
            }
        }
        let candidate = job
            .candidates
            .as_ref()
            .is_some_and(|c| c.eval(bits, mismatch));
        let (eligible, covered) = job
            .coverage
            .as_ref()
            .map_or((false, false), |(_, _, e, c)| {
                (e.eval(bits, mismatch), c.eval(bits, mismatch))
            });
        Outcome {
            results,
            candidate,
            eligible,
            covered,
        }
    }

    /// Every outcome, indexed by [`table_key`], when the key is small
    /// enough: a token then costs one lookup instead of walking each
    /// expression. `None` for jobs with too many inputs and comparisons.
    fn table(job: &Compiled, n_inputs: usize, n_pairs: usize) -> Option<Vec<Outcome>> {
        let width = n_inputs + 1 + n_pairs;
        if width > MAX_TABLE_BITS {
            return None;
        }
        let mut mismatch = vec![false; n_pairs];
        let table = (0..1usize << width)
            .map(|key| {
                let mut bits = (key & ((1 << n_inputs) - 1)) as u64;
                if (key >> n_inputs) & 1 == 1 {
                    bits |= 1 << job.other_province_bit;
                }
                for (p, m) in mismatch.iter_mut().enumerate() {
                    *m = (key >> (n_inputs + 1 + p)) & 1 == 1;
                }
                Outcome::of(job, n_inputs, bits, &mismatch)
            })
            .collect();
        Some(table)
    }
}

/// The index of a token's outcome in [`Outcome::table`]: its input bits,
/// then its `other_province` bit, then its mismatch flags.
fn table_key(bits: u64, mismatch: &[bool], n_inputs: usize, other_province_bit: u32) -> usize {
    let mut key = (bits & ((1 << n_inputs) - 1)) as usize;
    key |= (((bits >> other_province_bit) & 1) as usize) << n_inputs;
    for (p, &m) in mismatch.iter().enumerate() {
        key |= usize::from(m) << (n_inputs + 1 + p);
    }
    key
}

/// Runs one pass. `other_province` is sorted.
pub fn run_pass(
    job: &Compiled,
    inputs: Vec<Input>,
    other_province: &[IdToken],
) -> Result<PassOutput, CompareError> {
    let mut cursors = Vec::with_capacity(inputs.len());
    // Attribute columns needed: (cursor, field) -> attr column index.
    let attr_col = |schema: &[dxmesh_protocol::agreement::FieldTerm],
                    input: &str,
                    field: &str|
     -> Result<usize, CompareError> {
        schema
            .iter()
            .filter(|f| f.treatment == Treatment::AttrToken)
            .position(|f| f.name == field)
            .ok_or_else(|| CompareError::Schema {
                input: input.to_string(),
                problem: format!("the feed has no attribute-token field {field:?}"),
            })
    };
    let clear_col =
        |reader: &FeedReader, input: &str, field: &str| -> Result<usize, CompareError> {
            reader
                .manifest()
                .schema
                .iter()
                .filter(|f| f.treatment == Treatment::Clear)
                .position(|f| f.name == field)
                .ok_or_else(|| CompareError::Schema {
                    input: input.to_string(),
                    problem: format!("the feed has no clear field {field:?}"),
                })
        };
    // One reader per pulled feed: inputs that are the same feed (the same
    // agreement and epoch, e.g. one filtered and one not) share its chunks,
    // read and verified once.
    type ChunkSender = std::sync::mpsc::SyncSender<Result<Arc<Chunk>, PullError>>;
    let mut readers: Vec<(FeedReader, Vec<ChunkSender>)> = Vec::new();
    for (i, input) in inputs.into_iter().enumerate() {
        let (name, spec) = &job.inputs[i];
        debug_assert_eq!(*name, input.name);
        let mut filter = Vec::new();
        for (field, values) in &spec.filter {
            filter.push((clear_col(&input.reader, name, field)?, values.clone()));
        }
        let region_col = match &job.coverage {
            Some((idx, field, _, _)) if *idx == i => Some(clear_col(&input.reader, name, field)?),
            _ => None,
        };
        let chunks = input.reader.manifest().chunks();
        let schema_of = input.reader.manifest().schema.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        let feed = |r: &FeedReader| (r.manifest().agreement, r.manifest().epoch);
        match readers
            .iter_mut()
            .find(|(r, _)| feed(r) == feed(&input.reader))
        {
            Some((_, senders)) => senders.push(tx),
            None => readers.push((input.reader, vec![tx])),
        }
        let c = Cursor {
            name: name.clone(),
            schema: schema_of,
            chunks,
            incoming: rx,
            chunk: None,
            next_chunk: 0,
            pos: 0,
            filter,
            region_col,
            records: 0,
            tokens: 0,
            last: None,
        };
        cursors.push(c);
    }
    for (reader, senders) in readers {
        std::thread::spawn(move || {
            for i in 0..reader.manifest().chunks() {
                let r = reader.chunk(i).map(Arc::new);
                let failed = r.is_err();
                // Every input of this feed gets every chunk; stop when one
                // is gone (its pass ended early) or the feed failed.
                for tx in &senders {
                    if tx.send(r.clone()).is_err() {
                        return;
                    }
                }
                if failed {
                    return;
                }
            }
        });
    }
    for c in cursors.iter_mut() {
        c.load()?;
    }
    let pairs: Vec<(usize, usize, usize, usize)> = job
        .attr_pairs
        .iter()
        .map(|p| {
            Ok((
                p.a,
                attr_col(&cursors[p.a].schema, &cursors[p.a].name, &p.a_field)?,
                p.b,
                attr_col(&cursors[p.b].schema, &cursors[p.b].name, &p.b_field)?,
            ))
        })
        .collect::<Result<_, CompareError>>()?;
    // Which (input, attr column) sets to collect per token.
    let mut wanted_attrs: Vec<(usize, usize)> = Vec::new();
    for &(a, ac, b, bc) in &pairs {
        for k in [(a, ac), (b, bc)] {
            if !wanted_attrs.contains(&k) {
                wanted_attrs.push(k);
            }
        }
    }
    let n_inputs = cursors.len();
    let mut out = PassOutput {
        results: vec![Vec::new(); job.results.len()],
        records: vec![0; n_inputs],
        members: vec![0; n_inputs],
        ..Default::default()
    };
    // The attribute sets each comparison reads.
    let pair_sets: Vec<(usize, usize)> = pairs
        .iter()
        .map(|&(a, ac, b, bc)| {
            let set = |inp: usize, col: usize| {
                wanted_attrs
                    .iter()
                    .position(|w| *w == (inp, col))
                    .unwrap_or(0)
            };
            (set(a, ac), set(b, bc))
        })
        .collect();
    let table = Outcome::table(job, n_inputs, pairs.len());
    let mut attr_sets: Vec<Vec<AttrToken>> = vec![Vec::new(); wanted_attrs.len()];
    let mut mismatch = vec![false; pairs.len()];
    // Regions are interned: a token's regions are small ids, no allocation.
    let mut region_ids: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut region_counts: Vec<(u64, u64)> = Vec::new();
    let mut regions: Vec<usize> = Vec::new();
    let mut op = 0usize;
    loop {
        let mut min: Option<IdToken> = None;
        for c in &cursors {
            if let Some(t) = c.peek()
                && min.is_none_or(|m| t < m)
            {
                min = Some(t);
            }
        }
        if let Some(&t) = other_province.get(op)
            && min.is_none_or(|m| t < m)
        {
            min = Some(t);
        }
        let Some(token) = min else { break };
        out.distinct_tokens += 1;
        let mut bits = 0u64;
        for s in attr_sets.iter_mut() {
            s.clear();
        }
        regions.clear();
        for (i, c) in cursors.iter_mut().enumerate() {
            let mut member = false;
            while c.peek() == Some(token) {
                let chunk = c.chunk.as_ref().expect("peek saw a chunk");
                let r = c.pos;
                c.records += 1;
                let passes = c
                    .filter
                    .iter()
                    .all(|(col, values)| values.iter().any(|v| v == chunk.clear_value(*col, r)));
                if passes {
                    member = true;
                    for (k, &(inp, col)) in wanted_attrs.iter().enumerate() {
                        if inp == i {
                            attr_sets[k].push(chunk.attr(col, r));
                        }
                    }
                    if let Some(col) = c.region_col {
                        let region = chunk.clear_value(col, r);
                        let id = match region_ids.get(region) {
                            Some(id) => *id,
                            None => {
                                region_ids.insert(region.to_string(), region_counts.len());
                                region_counts.push((0, 0));
                                region_counts.len() - 1
                            }
                        };
                        if !regions.contains(&id) {
                            regions.push(id);
                        }
                    }
                }
                c.pos += 1;
                c.load()?;
                if let Some(next) = c.peek()
                    && next < token
                {
                    return Err(CompareError::Unsorted {
                        input: c.name.clone(),
                        chunk: c.next_chunk.saturating_sub(1),
                    });
                }
            }
            if member {
                bits |= 1 << i;
                c.tokens += 1;
            }
            c.last = Some(token);
        }
        if other_province.get(op) == Some(&token) {
            bits |= 1 << job.other_province_bit;
            while other_province.get(op) == Some(&token) {
                op += 1;
            }
        }
        for (p, &(a, _, b, _)) in pairs.iter().enumerate() {
            mismatch[p] = false;
            if bits & (1 << a) != 0 && bits & (1 << b) != 0 {
                let (ka, kb) = pair_sets[p];
                for k in [ka, kb] {
                    attr_sets[k].sort_unstable();
                    attr_sets[k].dedup();
                }
                mismatch[p] = attr_sets[ka] != attr_sets[kb];
            }
        }
        let o = match &table {
            Some(table) => table[table_key(bits, &mismatch, n_inputs, job.other_province_bit)],
            None => Outcome::of(job, n_inputs, bits, &mismatch),
        };
        let mut results = o.results;
        while results != 0 {
            out.results[results.trailing_zeros() as usize].push(token);
            results &= results - 1;
        }
        if o.candidate {
            out.candidates.push(token);
        }
        if o.eligible || o.covered {
            for r in &regions {
                region_counts[*r].0 += u64::from(o.eligible);
                region_counts[*r].1 += u64::from(o.covered);
            }
        }
    }
    for (i, c) in cursors.iter().enumerate() {
        out.records[i] = c.records;
        out.members[i] = c.tokens;
    }
    for (name, id) in region_ids {
        let (e, c) = region_counts[id];
        if e > 0 || c > 0 {
            out.coverage.insert(name, (e, c));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tabulated outcomes are those of evaluating each expression, for
    /// the default job file and every combination of inputs, the ministry's
    /// answer and attribute mismatch.
    #[test]
    fn the_outcome_table_agrees_with_the_expressions() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/jobs.toml");
        let job = crate::compare::jobs::JobFile::load(&path)
            .unwrap()
            .compile(&path)
            .unwrap();
        let n_inputs = job.inputs.len();
        let n_pairs = job.attr_pairs.len();
        let table = Outcome::table(&job, n_inputs, n_pairs).expect("small enough to tabulate");
        assert_eq!(table.len(), 1 << (n_inputs + 1 + n_pairs));
        let mut seen_results = 0u64;
        for inputs in 0..1u64 << n_inputs {
            for other in [false, true] {
                for m in 0..1usize << n_pairs {
                    let mismatch: Vec<bool> = (0..n_pairs).map(|p| (m >> p) & 1 == 1).collect();
                    let bits = inputs | (u64::from(other) << job.other_province_bit);
                    let direct = Outcome::of(&job, n_inputs, bits, &mismatch);
                    let key = table_key(bits, &mismatch, n_inputs, job.other_province_bit);
                    assert_eq!(table[key], direct, "inputs {inputs:b} other {other} m {m}");
                    seen_results |= direct.results;
                }
            }
        }
        // Every result of the default jobs is reachable.
        assert_eq!(seen_results, (1 << job.results.len()) - 1);
        // Too many bits: no table, the expressions are evaluated per token.
        assert!(Outcome::table(&job, MAX_TABLE_BITS, 0).is_none());
    }
}
