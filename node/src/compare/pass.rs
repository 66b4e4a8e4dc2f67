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
use std::collections::{BTreeMap, HashMap};
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

/// Where the reader thread of a feed sends one input's verified chunks.
type ChunkSender = std::sync::mpsc::SyncSender<Result<Arc<Chunk>, PullError>>;

/// One input's place in its feed during the merge, with what the input
/// reads of each record (its filter and region columns) and its counts.
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

/// The column of the clear field `field` in `reader`'s feed.
fn clear_col(reader: &FeedReader, input: &str, field: &str) -> Result<usize, CompareError> {
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
}

/// The column of the attribute-token field `field` in a feed's schema.
fn attr_col(
    schema: &[dxmesh_protocol::agreement::FieldTerm],
    input: &str,
    field: &str,
) -> Result<usize, CompareError> {
    schema
        .iter()
        .filter(|f| f.treatment == Treatment::AttrToken)
        .position(|f| f.name == field)
        .ok_or_else(|| CompareError::Schema {
            input: input.to_string(),
            problem: format!("the feed has no attribute-token field {field:?}"),
        })
}

impl Cursor {
    /// A cursor for input `i` of `job` over `reader`'s feed, whose chunks
    /// arrive on `incoming`: the columns of its filter and, if coverage
    /// groups by this input, of its region field.
    fn new(
        job: &Compiled,
        i: usize,
        reader: &FeedReader,
        incoming: std::sync::mpsc::Receiver<Result<Arc<Chunk>, PullError>>,
    ) -> Result<Cursor, CompareError> {
        let (name, spec) = &job.inputs[i];
        let mut filter = Vec::new();
        for (field, values) in &spec.filter {
            filter.push((clear_col(reader, name, field)?, values.clone()));
        }
        let region_col = match &job.coverage {
            Some((idx, field, _, _)) if *idx == i => Some(clear_col(reader, name, field)?),
            _ => None,
        };
        Ok(Cursor {
            name: name.clone(),
            schema: reader.manifest().schema.clone(),
            chunks: reader.manifest().chunks(),
            incoming,
            chunk: None,
            next_chunk: 0,
            pos: 0,
            filter,
            region_col,
            records: 0,
            tokens: 0,
            last: None,
        })
    }

    /// Makes the current record one of a loaded chunk, taking the next
    /// chunk from the reader thread when this one is done (no chunk at the
    /// end of the feed).
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

    /// The token of the current record (none at the end of the feed).
    fn peek(&self) -> Option<IdToken> {
        self.chunk.as_ref().map(|c| c.id(self.pos))
    }

    /// Whether record `r` of `chunk` passes the input's filter.
    #[inline]
    fn passes(&self, chunk: &Chunk, r: usize) -> bool {
        self.filter
            .iter()
            .all(|(col, values)| values.iter().any(|v| v == chunk.clear_value(*col, r)))
    }

    /// Steps past the current record (of `token`); a smaller token next
    /// means the feed is not sorted.
    #[inline]
    fn advance(&mut self, token: IdToken) -> Result<(), CompareError> {
        self.pos += 1;
        self.load()?;
        if let Some(next) = self.peek()
            && next < token
        {
            return Err(CompareError::Unsorted {
                input: self.name.clone(),
                chunk: self.next_chunk.saturating_sub(1),
            });
        }
        Ok(())
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
///
/// Three steps: [`open_cursors`] (a cursor per input, a reader thread per
/// feed), [`Plan::new`] (what the merge compares and looks up) and the
/// merge itself ([`Merge::run`]), whose counts [`Merge::finish`] turns into
/// the output.
pub fn run_pass(
    job: &Compiled,
    inputs: Vec<Input>,
    other_province: &[IdToken],
) -> Result<PassOutput, CompareError> {
    let mut cursors = open_cursors(job, inputs)?;
    let plan = Plan::new(job, &cursors)?;
    let mut merge = Merge::new(job, plan);
    merge.run(&mut cursors, other_province)?;
    Ok(merge.finish(&cursors))
}

/// The pass's setup: one cursor per input, and one reader thread per pulled
/// feed. Inputs that are the same feed (the same agreement and epoch, e.g.
/// one filtered and one not) share its chunks, read and verified once.
/// Every cursor stands on its first record when this returns.
fn open_cursors(job: &Compiled, inputs: Vec<Input>) -> Result<Vec<Cursor>, CompareError> {
    let mut cursors = Vec::with_capacity(inputs.len());
    let mut readers: Vec<(FeedReader, Vec<ChunkSender>)> = Vec::new();
    for (i, input) in inputs.into_iter().enumerate() {
        debug_assert_eq!(job.inputs[i].0, input.name);
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        cursors.push(Cursor::new(job, i, &input.reader, rx)?);
        let feed = |r: &FeedReader| (r.manifest().agreement, r.manifest().epoch);
        match readers
            .iter_mut()
            .find(|(r, _)| feed(r) == feed(&input.reader))
        {
            Some((_, senders)) => senders.push(tx),
            None => readers.push((input.reader, vec![tx])),
        }
    }
    for (reader, senders) in readers {
        std::thread::spawn(move || read_feed(reader, senders));
    }
    for c in cursors.iter_mut() {
        c.load()?;
    }
    Ok(cursors)
}

/// A feed's reader thread: reads and verifies each chunk in turn and sends
/// it to every input of the feed; stops when one is gone (its pass ended
/// early) or the feed failed.
fn read_feed(reader: FeedReader, senders: Vec<ChunkSender>) {
    for i in 0..reader.manifest().chunks() {
        let r = reader.chunk(i).map(Arc::new);
        let failed = r.is_err();
        for tx in &senders {
            if tx.send(r.clone()).is_err() {
                return;
            }
        }
        if failed {
            return;
        }
    }
}

/// What the merge compares and looks up, fixed for the pass: the attribute
/// comparisons with their columns, the attribute sets collected per token,
/// and the tabulated outcomes.
struct Plan {
    /// Inputs in the job (bit `i` is input `i`).
    n_inputs: usize,
    /// Per comparison: (input a, its attribute column, input b, its column).
    pairs: Vec<(usize, usize, usize, usize)>,
    /// The (input, attribute column) sets collected per token.
    wanted_attrs: Vec<(usize, usize)>,
    /// Per comparison: the indices in `wanted_attrs` of its two sets.
    pair_sets: Vec<(usize, usize)>,
    /// Every outcome by [`table_key`], if the job is small enough.
    table: Option<Vec<Outcome>>,
}

impl Plan {
    /// The plan of `job` over its cursors (whose schemas give the columns).
    fn new(job: &Compiled, cursors: &[Cursor]) -> Result<Plan, CompareError> {
        let col = |i: usize, field: &str| attr_col(&cursors[i].schema, &cursors[i].name, field);
        let pairs: Vec<(usize, usize, usize, usize)> = job
            .attr_pairs
            .iter()
            .map(|p| Ok((p.a, col(p.a, &p.a_field)?, p.b, col(p.b, &p.b_field)?)))
            .collect::<Result<_, CompareError>>()?;
        let mut wanted_attrs: Vec<(usize, usize)> = Vec::new();
        for &(a, ac, b, bc) in &pairs {
            for k in [(a, ac), (b, bc)] {
                if !wanted_attrs.contains(&k) {
                    wanted_attrs.push(k);
                }
            }
        }
        let set = |k: (usize, usize)| wanted_attrs.iter().position(|w| *w == k).unwrap_or(0);
        let pair_sets = pairs
            .iter()
            .map(|&(a, ac, b, bc)| (set((a, ac)), set((b, bc))))
            .collect();
        let n_inputs = cursors.len();
        Ok(Plan {
            n_inputs,
            table: Outcome::table(job, n_inputs, pairs.len()),
            pairs,
            wanted_attrs,
            pair_sets,
        })
    }
}

/// The merge's working state: the per-token scratch (cleared and reused,
/// so a record costs no allocation), the interned regions, and the output
/// so far.
struct Merge<'a> {
    job: &'a Compiled,
    plan: Plan,
    /// The attribute tokens of the current token, per wanted set.
    attr_sets: Vec<Vec<AttrToken>>,
    /// The current token's mismatch flag per comparison.
    mismatch: Vec<bool>,
    /// Regions are interned: a token's regions are small ids.
    region_ids: HashMap<String, usize>,
    /// (eligible, covered) per interned region.
    region_counts: Vec<(u64, u64)>,
    /// The current token's regions.
    regions: Vec<usize>,
    out: PassOutput,
}

impl<'a> Merge<'a> {
    /// An empty merge for `job`.
    fn new(job: &'a Compiled, plan: Plan) -> Merge<'a> {
        Merge {
            job,
            attr_sets: vec![Vec::new(); plan.wanted_attrs.len()],
            mismatch: vec![false; plan.pairs.len()],
            region_ids: HashMap::new(),
            region_counts: Vec::new(),
            regions: Vec::new(),
            out: PassOutput {
                results: vec![Vec::new(); job.results.len()],
                records: vec![0; plan.n_inputs],
                members: vec![0; plan.n_inputs],
                ..Default::default()
            },
            plan,
        }
    }

    /// The merge: each distinct token, in order, across the feeds and the
    /// `other_province` list; its membership bits, attribute comparisons
    /// and outcome.
    fn run(
        &mut self,
        cursors: &mut [Cursor],
        other_province: &[IdToken],
    ) -> Result<(), CompareError> {
        let mut op = 0usize;
        while let Some(token) = next_token(cursors, other_province.get(op).copied()) {
            self.out.distinct_tokens += 1;
            let mut bits = self.read_token(cursors, token)?;
            if other_province.get(op) == Some(&token) {
                bits |= 1 << self.job.other_province_bit;
                while other_province.get(op) == Some(&token) {
                    op += 1;
                }
            }
            self.compare_attrs(bits);
            let o = match &self.plan.table {
                Some(table) => {
                    let key = table_key(
                        bits,
                        &self.mismatch,
                        self.plan.n_inputs,
                        self.job.other_province_bit,
                    );
                    table[key]
                }
                None => Outcome::of(self.job, self.plan.n_inputs, bits, &self.mismatch),
            };
            self.record(token, o);
        }
        Ok(())
    }

    /// Reads every input's records of `token`; returns the token's input
    /// bits (bit `i`: a record of input `i` passed its filter).
    #[inline]
    fn read_token(&mut self, cursors: &mut [Cursor], token: IdToken) -> Result<u64, CompareError> {
        for s in self.attr_sets.iter_mut() {
            s.clear();
        }
        self.regions.clear();
        let mut bits = 0u64;
        for (i, c) in cursors.iter_mut().enumerate() {
            let mut member = false;
            while c.peek() == Some(token) {
                let chunk = c.chunk.as_ref().expect("peek saw a chunk");
                let r = c.pos;
                c.records += 1;
                if c.passes(chunk, r) {
                    member = true;
                    self.collect(i, chunk, r, c.region_col);
                }
                c.advance(token)?;
            }
            if member {
                bits |= 1 << i;
                c.tokens += 1;
            }
            c.last = Some(token);
        }
        Ok(bits)
    }

    /// Keeps what the comparisons and coverage need of record `r` of input
    /// `i`: its wanted attribute tokens and its region.
    #[inline]
    fn collect(&mut self, i: usize, chunk: &Chunk, r: usize, region_col: Option<usize>) {
        for (k, &(inp, col)) in self.plan.wanted_attrs.iter().enumerate() {
            if inp == i {
                self.attr_sets[k].push(chunk.attr(col, r));
            }
        }
        if let Some(col) = region_col {
            let region = chunk.clear_value(col, r);
            let id = match self.region_ids.get(region) {
                Some(id) => *id,
                None => {
                    self.region_ids
                        .insert(region.to_string(), self.region_counts.len());
                    self.region_counts.push((0, 0));
                    self.region_counts.len() - 1
                }
            };
            if !self.regions.contains(&id) {
                self.regions.push(id);
            }
        }
    }

    /// Sets the mismatch flag of each comparison whose two inputs both hold
    /// the token: their attribute token sets differ.
    #[inline]
    fn compare_attrs(&mut self, bits: u64) {
        for (p, &(a, _, b, _)) in self.plan.pairs.iter().enumerate() {
            self.mismatch[p] = false;
            if bits & (1 << a) != 0 && bits & (1 << b) != 0 {
                let (ka, kb) = self.plan.pair_sets[p];
                for k in [ka, kb] {
                    self.attr_sets[k].sort_unstable();
                    self.attr_sets[k].dedup();
                }
                self.mismatch[p] = self.attr_sets[ka] != self.attr_sets[kb];
            }
        }
    }

    /// Adds `token` to the results and candidates its outcome puts it in,
    /// and counts it in its regions.
    #[inline]
    fn record(&mut self, token: IdToken, o: Outcome) {
        let mut results = o.results;
        while results != 0 {
            self.out.results[results.trailing_zeros() as usize].push(token);
            results &= results - 1;
        }
        if o.candidate {
            self.out.candidates.push(token);
        }
        if o.eligible || o.covered {
            for r in &self.regions {
                self.region_counts[*r].0 += u64::from(o.eligible);
                self.region_counts[*r].1 += u64::from(o.covered);
            }
        }
    }

    /// The output: the results and candidates, each input's counts, and
    /// the regions with anything eligible or covered.
    fn finish(mut self, cursors: &[Cursor]) -> PassOutput {
        for (i, c) in cursors.iter().enumerate() {
            self.out.records[i] = c.records;
            self.out.members[i] = c.tokens;
        }
        for (name, id) in self.region_ids {
            let (e, c) = self.region_counts[id];
            if e > 0 || c > 0 {
                self.out.coverage.insert(name, (e, c));
            }
        }
        self.out
    }
}

/// The smallest token at any cursor or `other_province`'s next one; none
/// when every feed and the list are done.
#[inline]
fn next_token(cursors: &[Cursor], other_province: Option<IdToken>) -> Option<IdToken> {
    let mut min: Option<IdToken> = None;
    for c in cursors {
        if let Some(t) = c.peek()
            && min.is_none_or(|m| t < m)
        {
            min = Some(t);
        }
    }
    if let Some(t) = other_province
        && min.is_none_or(|m| t < m)
    {
        min = Some(t);
    }
    min
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
