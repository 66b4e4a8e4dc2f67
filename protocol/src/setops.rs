//! Streaming set algebra over sorted token streams: the comparison engine's
//! core.
//!
//! Feeds are sorted by [`IdToken`], so comparing them never needs a hash table:
//! every operator here is a lazy iterator adapter that walks its inputs once,
//! in step, holding one head token per input (O(1) memory; [`attr_mismatch`]
//! also keeps the attribute tokens of the current ID, see there).
//!
//! * Inputs are **non-decreasing**: duplicates are allowed (a feed may hold
//!   several rows for one ID) and count once.
//! * Outputs are **strictly increasing**: each token at most once.
//! * An input that goes backwards is **reported**, never silently mis-merged.
//!   Each operator stops (returns `None` from then on) at the first token
//!   that is smaller than its predecessor in the same input, and keeps a
//!   [`SetError::Unsorted`] naming the input (0 for the first argument, 1 for
//!   the second; the position in the list for [`MergeBits`]). Every operator
//!   reads all of its inputs to the end before it reports the end of its
//!   output, even when the rest cannot change the result (the tail of `b` in
//!   `difference(a, b)`), precisely so that a disorder anywhere is found.
//!   Tokens yielded before the error was found may already be wrong (a token
//!   that appears out of order may have been missed), so: **drain the
//!   iterator, then check `error()`, and discard the output if it is
//!   `Some`.**
//!
//! ```
//! use dxmesh_protocol::setops::{difference, MergeBits};
//! use dxmesh_protocol::token::IdToken;
//!
//! let t = |b: u8| IdToken([b; 16]);
//! let mut d = difference([t(1), t(2), t(2), t(5)], [t(2), t(3)]);
//! let only_a: Vec<IdToken> = d.by_ref().collect();
//! assert_eq!(d.error(), None);
//! assert_eq!(only_a, [t(1), t(5)]);
//!
//! let mut m = MergeBits::new([vec![t(1), t(3)], vec![t(3), t(4)]]).unwrap();
//! let rows: Vec<(IdToken, u64)> = m.by_ref().collect();
//! assert_eq!(m.error(), None);
//! assert_eq!(rows, [(t(1), 0b01), (t(3), 0b11), (t(4), 0b10)]);
//! ```
//!
//! To validate a single stream without merging it, use [`check_sorted`].
//!
//! Internally tokens are compared as big-endian `u128` (the same order as
//! the bytes' lexicographic order), which is a pair of integer comparisons
//! instead of a `memcmp`.

use crate::token::{AttrToken, IdToken};
use std::cmp::Ordering;
use std::iter::FusedIterator;

/// Why a set operation stopped.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum SetError {
    /// Input number `input` is not sorted: `next` came right after
    /// `previous` and is smaller.
    #[error("input {input} is not sorted by token: {next} follows {previous}")]
    Unsorted {
        /// Which input (0-based position among the operator's inputs).
        input: usize,
        /// The last token read from that input before the disorder.
        previous: IdToken,
        /// The offending token, smaller than `previous`.
        next: IdToken,
    },
    /// More inputs than [`MergeBits`] can describe in a 64-bit mask.
    #[error("{count} inputs given to a merge of at most 64")]
    TooManyInputs {
        /// How many inputs were given.
        count: usize,
    },
}

/// The sort key of a token: big-endian, so integer order is byte order.
#[inline(always)]
fn key(t: IdToken) -> u128 {
    u128::from_be_bytes(t.0)
}

/// The token of a sort key.
#[inline(always)]
fn token(k: u128) -> IdToken {
    IdToken(k.to_be_bytes())
}

#[cold]
#[inline(never)]
fn unsorted(input: usize, previous: u128, next: u128) -> SetError {
    SetError::Unsorted {
        input,
        previous: token(previous),
        next: token(next),
    }
}

// ---------------------------------------------------------------------------
// Checked pass-through
// ---------------------------------------------------------------------------

/// Passes a token stream through unchanged (duplicates included) and reports
/// the first place where it goes backwards. Made by [`check_sorted`].
///
/// Yields `Ok(token)` for every token of a non-decreasing prefix; at the
/// first token smaller than its predecessor yields one
/// `Err(SetError::Unsorted { .. })` and then `None` for ever.
#[derive(Debug, Clone)]
pub struct Sorted<I> {
    iter: I,
    input: usize,
    previous: Option<u128>,
    failed: bool,
}

/// Checks that `iter` is non-decreasing; errors name it as input `input`.
pub fn check_sorted<I>(iter: I, input: usize) -> Sorted<I::IntoIter>
where
    I: IntoIterator<Item = IdToken>,
{
    Sorted {
        iter: iter.into_iter(),
        input,
        previous: None,
        failed: false,
    }
}

impl<I: Iterator<Item = IdToken>> Iterator for Sorted<I> {
    type Item = Result<IdToken, SetError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let t = self.iter.next()?;
        let k = key(t);
        match self.previous {
            Some(p) if k < p => {
                self.failed = true;
                Some(Err(unsorted(self.input, p, k)))
            }
            _ => {
                self.previous = Some(k);
                Some(Ok(t))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed {
            (0, Some(0))
        } else {
            self.iter.size_hint()
        }
    }
}

impl<I: Iterator<Item = IdToken>> FusedIterator for Sorted<I> {}

// ---------------------------------------------------------------------------
// Two-input operators
// ---------------------------------------------------------------------------

/// One input of a two-way operator: the current distinct head token.
#[derive(Debug, Clone)]
struct Reader<I> {
    iter: I,
    head: Option<u128>,
    input: usize,
}

impl<I: Iterator<Item = IdToken>> Reader<I> {
    fn new(iter: I, input: usize) -> Self {
        Reader {
            iter,
            head: None,
            input,
        }
    }

    /// Reads the first token (no predecessor, so no check).
    fn prime(&mut self) {
        self.head = self.iter.next().map(key);
    }

    /// Moves the head to the next distinct token (or the end), skipping
    /// duplicates of the current one. The head must be `Some`.
    #[inline]
    fn advance(&mut self) -> Result<(), SetError> {
        let Some(prev) = self.head else {
            return Ok(());
        };
        loop {
            match self.iter.next() {
                None => {
                    self.head = None;
                    return Ok(());
                }
                Some(t) => {
                    let k = key(t);
                    match k.cmp(&prev) {
                        Ordering::Equal => continue,
                        Ordering::Greater => {
                            self.head = Some(k);
                            return Ok(());
                        }
                        Ordering::Less => {
                            self.head = None;
                            return Err(unsorted(self.input, prev, k));
                        }
                    }
                }
            }
        }
    }

    /// Reads (and checks) the rest of the input.
    fn drain(&mut self) -> Result<(), SetError> {
        while self.head.is_some() {
            self.advance()?;
        }
        Ok(())
    }
}

/// Where a two-way operator is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Fresh,
    Running,
    Done,
}

/// Shared state and `Iterator::next` plumbing of the two-way operators.
macro_rules! two_way {
    ($(#[$doc:meta])* $name:ident, $(#[$ctor_doc:meta])* $ctor:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name<A, B> {
            a: Reader<A>,
            b: Reader<B>,
            phase: Phase,
            error: Option<SetError>,
        }

        impl<A, B> $name<A, B>
        where
            A: Iterator<Item = IdToken>,
            B: Iterator<Item = IdToken>,
        {
            /// The error that stopped the iteration, if an input was found
            /// unsorted. Meaningful once the iterator has returned `None`;
            /// if it is `Some`, discard everything that was yielded.
            pub fn error(&self) -> Option<&SetError> {
                self.error.as_ref()
            }
        }

        $(#[$ctor_doc])*
        pub fn $ctor<A, B>(a: A, b: B) -> $name<A::IntoIter, B::IntoIter>
        where
            A: IntoIterator<Item = IdToken>,
            B: IntoIterator<Item = IdToken>,
        {
            $name {
                a: Reader::new(a.into_iter(), 0),
                b: Reader::new(b.into_iter(), 1),
                phase: Phase::Fresh,
                error: None,
            }
        }

        impl<A, B> Iterator for $name<A, B>
        where
            A: Iterator<Item = IdToken>,
            B: Iterator<Item = IdToken>,
        {
            type Item = IdToken;

            #[inline]
            fn next(&mut self) -> Option<IdToken> {
                match self.phase {
                    Phase::Done => return None,
                    Phase::Fresh => {
                        self.a.prime();
                        self.b.prime();
                        self.phase = Phase::Running;
                    }
                    Phase::Running => {}
                }
                match self.step() {
                    Ok(Some(k)) => Some(token(k)),
                    Ok(None) => {
                        self.phase = Phase::Done;
                        None
                    }
                    Err(e) => {
                        self.phase = Phase::Done;
                        self.error = Some(e);
                        None
                    }
                }
            }
        }

        impl<A, B> FusedIterator for $name<A, B>
        where
            A: Iterator<Item = IdToken>,
            B: Iterator<Item = IdToken>,
        {
        }
    };
}

two_way!(
    /// The tokens in `a` or `b` (or both), each once, increasing.
    /// Made by [`union`]; see the [module documentation](self) for errors.
    Union,
    /// The union of two sorted token streams; see [`Union`].
    union
);

two_way!(
    /// The tokens in both `a` and `b`, each once, increasing.
    /// Made by [`intersection`]; see the [module documentation](self) for
    /// errors.
    Intersection,
    /// The intersection of two sorted token streams; see [`Intersection`].
    intersection
);

two_way!(
    /// The tokens in `a` but not in `b` (`a − b`), each once, increasing.
    /// Made by [`difference`]; see the [module documentation](self) for
    /// errors.
    Difference,
    /// The tokens of sorted stream `a` that are not in sorted stream `b`;
    /// see [`Difference`].
    difference
);

impl<A, B> Union<A, B>
where
    A: Iterator<Item = IdToken>,
    B: Iterator<Item = IdToken>,
{
    #[inline]
    fn step(&mut self) -> Result<Option<u128>, SetError> {
        Ok(Some(match (self.a.head, self.b.head) {
            (None, None) => return Ok(None),
            (Some(x), None) => {
                self.a.advance()?;
                x
            }
            (None, Some(y)) => {
                self.b.advance()?;
                y
            }
            (Some(x), Some(y)) => match x.cmp(&y) {
                Ordering::Less => {
                    self.a.advance()?;
                    x
                }
                Ordering::Greater => {
                    self.b.advance()?;
                    y
                }
                Ordering::Equal => {
                    self.a.advance()?;
                    self.b.advance()?;
                    x
                }
            },
        }))
    }
}

impl<A, B> Intersection<A, B>
where
    A: Iterator<Item = IdToken>,
    B: Iterator<Item = IdToken>,
{
    #[inline]
    fn step(&mut self) -> Result<Option<u128>, SetError> {
        loop {
            match (self.a.head, self.b.head) {
                (Some(x), Some(y)) => match x.cmp(&y) {
                    Ordering::Less => self.a.advance()?,
                    Ordering::Greater => self.b.advance()?,
                    Ordering::Equal => {
                        self.a.advance()?;
                        self.b.advance()?;
                        return Ok(Some(x));
                    }
                },
                _ => {
                    self.a.drain()?;
                    self.b.drain()?;
                    return Ok(None);
                }
            }
        }
    }
}

impl<A, B> Difference<A, B>
where
    A: Iterator<Item = IdToken>,
    B: Iterator<Item = IdToken>,
{
    #[inline]
    fn step(&mut self) -> Result<Option<u128>, SetError> {
        loop {
            match (self.a.head, self.b.head) {
                (None, _) => {
                    self.b.drain()?;
                    return Ok(None);
                }
                (Some(x), None) => {
                    self.a.advance()?;
                    return Ok(Some(x));
                }
                (Some(x), Some(y)) => match x.cmp(&y) {
                    Ordering::Less => {
                        self.a.advance()?;
                        return Ok(Some(x));
                    }
                    Ordering::Greater => self.b.advance()?,
                    Ordering::Equal => {
                        self.a.advance()?;
                        self.b.advance()?;
                    }
                },
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Attribute mismatch
// ---------------------------------------------------------------------------

/// One `(IdToken, AttrToken)` input of [`AttrMismatch`]: `head` is the first
/// row of the current token's group.
#[derive(Debug, Clone)]
struct GroupReader<I> {
    iter: I,
    head: Option<(u128, AttrToken)>,
    input: usize,
}

impl<I: Iterator<Item = (IdToken, AttrToken)>> GroupReader<I> {
    fn prime(&mut self) {
        self.head = self.iter.next().map(|(t, a)| (key(t), a));
    }

    /// Moves past the current token's group, handing each further attribute
    /// of the group to `keep`.
    #[inline]
    fn next_group(&mut self, mut keep: impl FnMut(AttrToken)) -> Result<(), SetError> {
        let Some((prev, _)) = self.head else {
            return Ok(());
        };
        loop {
            match self.iter.next() {
                None => {
                    self.head = None;
                    return Ok(());
                }
                Some((t, a)) => {
                    let k = key(t);
                    match k.cmp(&prev) {
                        Ordering::Equal => keep(a),
                        Ordering::Greater => {
                            self.head = Some((k, a));
                            return Ok(());
                        }
                        Ordering::Less => {
                            self.head = None;
                            return Err(unsorted(self.input, prev, k));
                        }
                    }
                }
            }
        }
    }

    /// Collects the current group's distinct attributes into `buf`, sorted,
    /// and moves past the group.
    fn load(&mut self, buf: &mut Vec<AttrToken>) -> Result<(), SetError> {
        buf.clear();
        if let Some((_, a)) = self.head {
            buf.push(a);
        }
        self.next_group(|a| buf.push(a))?;
        if buf.len() > 1 {
            buf.sort_unstable();
            buf.dedup();
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<(), SetError> {
        while self.head.is_some() {
            self.next_group(|_| ())?;
        }
        Ok(())
    }
}

/// The tokens present in both inputs whose *sets* of attribute tokens differ
/// (the same person registered under a different name, say), each once,
/// increasing. Made by [`attr_mismatch`].
///
/// Inputs are `(IdToken, AttrToken)` rows sorted by ID token; the attribute
/// tokens of one ID may come in any order and repeat (a repeat counts once).
/// Memory: besides the two heads, the attribute tokens of the current ID
/// from each input, in two buffers that are reused, so it is bounded by the
/// largest number of rows one ID has in one input, not by the stream length.
/// Errors are as for the other operators (see the
/// [module documentation](self)); only the ID token order is checked.
#[derive(Debug, Clone)]
pub struct AttrMismatch<A, B> {
    a: GroupReader<A>,
    b: GroupReader<B>,
    buf_a: Vec<AttrToken>,
    buf_b: Vec<AttrToken>,
    phase: Phase,
    error: Option<SetError>,
}

/// The tokens in both `a` and `b` whose attribute-token sets differ; see
/// [`AttrMismatch`].
pub fn attr_mismatch<A, B>(a: A, b: B) -> AttrMismatch<A::IntoIter, B::IntoIter>
where
    A: IntoIterator<Item = (IdToken, AttrToken)>,
    B: IntoIterator<Item = (IdToken, AttrToken)>,
{
    AttrMismatch {
        a: GroupReader {
            iter: a.into_iter(),
            head: None,
            input: 0,
        },
        b: GroupReader {
            iter: b.into_iter(),
            head: None,
            input: 1,
        },
        buf_a: Vec::new(),
        buf_b: Vec::new(),
        phase: Phase::Fresh,
        error: None,
    }
}

impl<A, B> AttrMismatch<A, B>
where
    A: Iterator<Item = (IdToken, AttrToken)>,
    B: Iterator<Item = (IdToken, AttrToken)>,
{
    /// The error that stopped the iteration, if an input was found unsorted.
    /// Meaningful once the iterator has returned `None`; if it is `Some`,
    /// discard everything that was yielded.
    pub fn error(&self) -> Option<&SetError> {
        self.error.as_ref()
    }

    fn step(&mut self) -> Result<Option<u128>, SetError> {
        loop {
            match (self.a.head, self.b.head) {
                (Some((x, _)), Some((y, _))) => match x.cmp(&y) {
                    Ordering::Less => self.a.next_group(|_| ())?,
                    Ordering::Greater => self.b.next_group(|_| ())?,
                    Ordering::Equal => {
                        self.a.load(&mut self.buf_a)?;
                        self.b.load(&mut self.buf_b)?;
                        if self.buf_a != self.buf_b {
                            return Ok(Some(x));
                        }
                    }
                },
                _ => {
                    self.a.drain()?;
                    self.b.drain()?;
                    return Ok(None);
                }
            }
        }
    }
}

impl<A, B> Iterator for AttrMismatch<A, B>
where
    A: Iterator<Item = (IdToken, AttrToken)>,
    B: Iterator<Item = (IdToken, AttrToken)>,
{
    type Item = IdToken;

    fn next(&mut self) -> Option<IdToken> {
        match self.phase {
            Phase::Done => return None,
            Phase::Fresh => {
                self.a.prime();
                self.b.prime();
                self.phase = Phase::Running;
            }
            Phase::Running => {}
        }
        match self.step() {
            Ok(Some(k)) => Some(token(k)),
            Ok(None) => {
                self.phase = Phase::Done;
                None
            }
            Err(e) => {
                self.phase = Phase::Done;
                self.error = Some(e);
                None
            }
        }
    }
}

impl<A, B> FusedIterator for AttrMismatch<A, B>
where
    A: Iterator<Item = (IdToken, AttrToken)>,
    B: Iterator<Item = (IdToken, AttrToken)>,
{
}

// ---------------------------------------------------------------------------
// k-way merge with membership bits
// ---------------------------------------------------------------------------

/// A k-way merge (k ≤ 64) of sorted token streams that yields each distinct
/// token once, increasing, with a bitmask of the inputs that contain it (bit
/// `i` for the `i`-th input): `(token, mask)`, `mask != 0`.
///
/// All inputs have the same type; to merge different iterator types, box
/// them (`Box<dyn Iterator<Item = IdToken>>`).
///
/// Errors: the merge stops at the first input found going backwards and
/// keeps a [`SetError::Unsorted`] naming it; check [`MergeBits::error`]
/// after the iterator returned `None` (see the
/// [module documentation](self)).
///
/// Implementation: a tournament (loser) tree over the inputs' head tokens,
/// kept as big-endian `u128` keys; exhausted inputs hold `u128::MAX` (a
/// valid token too, so the all-ones token takes a separate, slow path). A
/// step pops the winner, advances that input past its duplicates and
/// replays its path to the root (⌈log₂ k⌉ branch-free matches), repeating
/// while the new winner equals the token being yielded. Measured on 6
/// inputs of 1 million random sorted tokens (one core, release build, a
/// shared 2-core machine, so noisy): when the inputs are disjoint, 80-115 M input
/// tokens/s, about twice a linear scan of the 6 heads (whose minimum lands
/// on an unpredictable input, so its comparisons mispredict) or a
/// `BinaryHeap`; when each token is in about 2.5 inputs, 55-90 M/s, where
/// the scan was up to about 25 % faster (one scan per output token against
/// one replay per input holding it) and the heap slower. The tree's worst
/// case is the better one, so it is used for every k. `benches/setops.rs`
/// has both cases.
#[derive(Debug, Clone)]
pub struct MergeBits<I> {
    inputs: Vec<I>,
    /// Head key per leaf (`leaves` of them; padding leaves stay `MAX`).
    keys: Vec<u128>,
    /// `tree[n]` for internal node `n` in `1..leaves`: the loser of the
    /// match there; `tree[0]`: the overall winner.
    tree: Vec<usize>,
    /// Number of leaves: the number of inputs rounded up to a power of
    /// two, at least 2.
    leaves: usize,
    /// Inputs that still have a head.
    live: u64,
    phase: Phase,
    error: Option<SetError>,
}

impl<I: Iterator<Item = IdToken>> MergeBits<I> {
    /// The most inputs one merge takes (the width of the mask).
    pub const MAX_INPUTS: usize = 64;

    /// A merge of `inputs` (in order: bit `i` is the `i`-th). Zero inputs
    /// make an empty merge; more than [`MergeBits::MAX_INPUTS`] are refused
    /// with [`SetError::TooManyInputs`]. Nothing is read until the first
    /// `next`.
    pub fn new<T>(inputs: impl IntoIterator<Item = T>) -> Result<MergeBits<I>, SetError>
    where
        T: IntoIterator<Item = IdToken, IntoIter = I>,
    {
        let inputs: Vec<I> = inputs.into_iter().map(IntoIterator::into_iter).collect();
        if inputs.len() > Self::MAX_INPUTS {
            return Err(SetError::TooManyInputs {
                count: inputs.len(),
            });
        }
        let leaves = inputs.len().next_power_of_two().max(2);
        Ok(MergeBits {
            inputs,
            keys: vec![u128::MAX; leaves],
            tree: vec![0; leaves],
            leaves,
            live: 0,
            phase: Phase::Fresh,
            error: None,
        })
    }

    /// The number of inputs.
    pub fn inputs(&self) -> usize {
        self.inputs.len()
    }

    /// The error that stopped the merge, if an input was found unsorted.
    /// Meaningful once the iterator has returned `None`; if it is `Some`,
    /// discard everything that was yielded.
    pub fn error(&self) -> Option<&SetError> {
        self.error.as_ref()
    }

    /// Moves input `i` past its head (and the head's duplicates).
    #[inline(always)]
    fn advance(&mut self, i: usize) -> Result<(), SetError> {
        let prev = self.keys[i];
        let input = &mut self.inputs[i];
        loop {
            match input.next() {
                None => {
                    self.keys[i] = u128::MAX;
                    self.live &= !(1u64 << i);
                    return Ok(());
                }
                Some(t) => {
                    let k = key(t);
                    if k > prev {
                        self.keys[i] = k;
                        return Ok(());
                    }
                    if k < prev {
                        return Err(unsorted(i, prev, k));
                    }
                }
            }
        }
    }

    /// Replays leaf `i`'s matches after its key changed.
    #[inline(always)]
    fn replay(&mut self, i: usize) {
        let mut winner = i;
        let mut winning = self.keys[i];
        let mut node = (i + self.leaves) >> 1;
        while node > 0 {
            let other = self.tree[node];
            let challenger = self.keys[other];
            let lost = challenger < winning;
            self.tree[node] = select_unpredictable(lost, winner, other);
            winner = select_unpredictable(lost, other, winner);
            winning = select_unpredictable(lost, challenger, winning);
            node >>= 1;
        }
        self.tree[0] = winner;
    }

    /// Reads every input's first token and plays the whole tournament.
    fn prime(&mut self) {
        for (i, (input, head)) in self.inputs.iter_mut().zip(&mut self.keys).enumerate() {
            if let Some(t) = input.next() {
                *head = key(t);
                self.live |= 1u64 << i;
            }
        }
        // winners[n]: the winner of the subtree at node n (leaves at
        // `leaves..2 * leaves`).
        let n = self.leaves;
        let mut winners = vec![0usize; 2 * n];
        for (i, w) in winners[n..].iter_mut().enumerate() {
            *w = i;
        }
        for node in (1..n).rev() {
            let (l, r) = (winners[2 * node], winners[2 * node + 1]);
            let (w, lost) = if self.keys[r] < self.keys[l] {
                (r, l)
            } else {
                (l, r)
            };
            winners[node] = w;
            self.tree[node] = lost;
        }
        self.tree[0] = winners[1];
    }

    /// The slow path for a winning key of `u128::MAX`: either every input
    /// is exhausted, or the live inputs whose head is the all-ones token
    /// are the last to yield.
    fn last(&mut self) -> Result<Option<(IdToken, u64)>, SetError> {
        self.phase = Phase::Done;
        let mut mask = 0;
        for i in 0..self.inputs.len() {
            if self.live & (1 << i) != 0 && self.keys[i] == u128::MAX {
                mask |= 1u64 << i;
                // Nothing sorts after it: the input must end here.
                self.advance(i)?;
            }
        }
        Ok((mask != 0).then_some((token(u128::MAX), mask)))
    }

    #[inline(always)]
    fn step(&mut self) -> Result<Option<(IdToken, u64)>, SetError> {
        let mut winner = self.tree[0];
        let k = self.keys[winner];
        if k == u128::MAX {
            return self.last();
        }
        let mut mask = 0u64;
        loop {
            mask |= 1u64 << winner;
            self.advance(winner)?;
            self.replay(winner);
            winner = self.tree[0];
            if self.keys[winner] != k {
                return Ok(Some((token(k), mask)));
            }
        }
    }
}

/// `if condition { a } else { b }`, as a conditional move: which input wins
/// a match is a coin toss for random tokens, so a branch would mispredict.
#[inline(always)]
fn select_unpredictable<T>(condition: bool, a: T, b: T) -> T {
    std::hint::select_unpredictable(condition, a, b)
}

impl<I: Iterator<Item = IdToken>> Iterator for MergeBits<I> {
    type Item = (IdToken, u64);

    #[inline]
    fn next(&mut self) -> Option<(IdToken, u64)> {
        match self.phase {
            Phase::Running => {}
            Phase::Done => return None,
            Phase::Fresh => {
                self.prime();
                self.phase = Phase::Running;
            }
        }
        match self.step() {
            Ok(Some(item)) => Some(item),
            Ok(None) => {
                self.phase = Phase::Done;
                None
            }
            Err(e) => {
                self.phase = Phase::Done;
                self.error = Some(e);
                None
            }
        }
    }
}

impl<I: Iterator<Item = IdToken>> FusedIterator for MergeBits<I> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(b: u8) -> IdToken {
        IdToken([b; 16])
    }

    fn ts(bs: &[u8]) -> Vec<IdToken> {
        bs.iter().map(|&b| t(b)).collect()
    }

    fn at(b: u8) -> AttrToken {
        AttrToken([b; 8])
    }

    fn rows(rs: &[(u8, u8)]) -> Vec<(IdToken, AttrToken)> {
        rs.iter().map(|&(i, a)| (t(i), at(a))).collect()
    }

    /// Drains `it` and returns the output and the error.
    fn run<I: Iterator>(
        mut it: I,
        err: impl Fn(&I) -> Option<SetError>,
    ) -> (Vec<I::Item>, Option<SetError>) {
        let out: Vec<_> = it.by_ref().collect();
        let e = err(&it);
        (out, e)
    }

    #[test]
    fn two_way_fixed_cases() {
        let a = ts(&[1, 2, 2, 4, 7, 7, 7, 9]);
        let b = ts(&[2, 3, 4, 4, 8, 9, 9]);
        let (u, e) = run(union(a.clone(), b.clone()), |i| i.error().cloned());
        assert_eq!((u, e), (ts(&[1, 2, 3, 4, 7, 8, 9]), None));
        let (i, e) = run(intersection(a.clone(), b.clone()), |i| i.error().cloned());
        assert_eq!((i, e), (ts(&[2, 4, 9]), None));
        let (d, e) = run(difference(a.clone(), b.clone()), |i| i.error().cloned());
        assert_eq!((d, e), (ts(&[1, 7]), None));
        let (d, e) = run(difference(b, a), |i| i.error().cloned());
        assert_eq!((d, e), (ts(&[3, 8]), None));
    }

    #[test]
    fn empty_inputs() {
        let e = Vec::<IdToken>::new();
        let a = ts(&[3, 3, 5]);
        assert_eq!(union(e.clone(), e.clone()).count(), 0);
        assert_eq!(union(e.clone(), a.clone()).collect::<Vec<_>>(), ts(&[3, 5]));
        assert_eq!(union(a.clone(), e.clone()).collect::<Vec<_>>(), ts(&[3, 5]));
        assert_eq!(intersection(a.clone(), e.clone()).count(), 0);
        assert_eq!(intersection(e.clone(), a.clone()).count(), 0);
        assert_eq!(
            difference(a.clone(), e.clone()).collect::<Vec<_>>(),
            ts(&[3, 5])
        );
        assert_eq!(difference(e.clone(), a.clone()).count(), 0);
        assert_eq!(attr_mismatch(rows(&[]), rows(&[(1, 1)])).count(), 0);
        let mut m = MergeBits::new(Vec::<Vec<IdToken>>::new()).unwrap();
        assert_eq!(m.next(), None);
        assert_eq!(m.error(), None);
        let mut m = MergeBits::new([e.clone(), a.clone(), e]).unwrap();
        assert_eq!(
            m.by_ref().collect::<Vec<_>>(),
            [(t(3), 0b010), (t(5), 0b010)]
        );
        assert_eq!(m.error(), None);
    }

    #[test]
    fn byte_order_is_lexicographic() {
        // Differs only in the last byte vs only in the first byte.
        let mut lo = [0u8; 16];
        lo[15] = 0xff;
        let mut hi = [0u8; 16];
        hi[0] = 1;
        let a = vec![IdToken(lo), IdToken(hi)];
        let mut s = check_sorted(a.clone(), 0);
        assert!(s.all(|r| r.is_ok()));
        let m: Vec<_> = MergeBits::new([a.clone(), vec![IdToken(hi)]])
            .unwrap()
            .collect();
        assert_eq!(m, [(IdToken(lo), 1), (IdToken(hi), 3)]);
        assert_eq!(union(a, [IdToken(lo)]).count(), 2);
    }

    #[test]
    fn max_token_is_not_mistaken_for_exhaustion() {
        let max = IdToken([0xff; 16]);
        let m: Vec<_> = MergeBits::new([vec![t(1)], vec![max, max], vec![]])
            .unwrap()
            .collect();
        assert_eq!(m, [(t(1), 0b001), (max, 0b010)]);
        // A dead input before and after live all-ones heads.
        let m: Vec<_> = MergeBits::new([vec![], vec![max], vec![t(1), max], vec![t(2)]])
            .unwrap()
            .collect();
        assert_eq!(m, [(t(1), 0b0100), (t(2), 0b1000), (max, 0b0110)]);
        let mut m = MergeBits::new([vec![max, t(3)], vec![t(4)]]).unwrap();
        assert_eq!(m.by_ref().count(), 1);
        assert_eq!(
            m.error(),
            Some(&SetError::Unsorted {
                input: 0,
                previous: max,
                next: t(3)
            })
        );
        assert_eq!(union([max], [max]).collect::<Vec<_>>(), [max]);
        assert_eq!(intersection([max], [max]).collect::<Vec<_>>(), [max]);
    }

    #[test]
    fn check_sorted_reports_first_disorder() {
        let v = ts(&[1, 1, 4, 2, 0]);
        let out: Vec<_> = check_sorted(v, 3).collect();
        assert_eq!(
            out,
            [
                Ok(t(1)),
                Ok(t(1)),
                Ok(t(4)),
                Err(SetError::Unsorted {
                    input: 3,
                    previous: t(4),
                    next: t(2)
                })
            ]
        );
        assert_eq!(check_sorted(Vec::new(), 0).count(), 0);
    }

    #[test]
    fn two_way_report_unsorted_input_even_in_an_unread_tail() {
        let good = ts(&[5]);
        let bad = ts(&[6, 6, 5]);
        let want = SetError::Unsorted {
            input: 1,
            previous: t(6),
            next: t(5),
        };
        let mut d = difference(good.clone(), bad.clone());
        d.by_ref().for_each(drop);
        assert_eq!(d.error(), Some(&want));
        let mut i = intersection(good.clone(), bad.clone());
        i.by_ref().for_each(drop);
        assert_eq!(i.error(), Some(&want));
        let mut u = union(good.clone(), bad.clone());
        u.by_ref().for_each(drop);
        assert_eq!(u.error(), Some(&want));
        // Fused after the error.
        assert_eq!(u.next(), None);
        let mut u = union(bad, good);
        u.by_ref().for_each(drop);
        assert_eq!(
            u.error(),
            Some(&SetError::Unsorted {
                input: 0,
                previous: t(6),
                next: t(5)
            })
        );
    }

    #[test]
    fn merge_bits_fixed_case_and_errors() {
        let ins = [ts(&[1, 3, 3, 5]), ts(&[3, 4]), ts(&[1, 1, 5, 6])];
        let mut m = MergeBits::new(ins).unwrap();
        assert_eq!(m.inputs(), 3);
        let out: Vec<_> = m.by_ref().collect();
        assert_eq!(
            out,
            [
                (t(1), 0b101),
                (t(3), 0b011),
                (t(4), 0b010),
                (t(5), 0b101),
                (t(6), 0b100)
            ]
        );
        assert_eq!(m.error(), None);
        assert_eq!(m.next(), None);

        let mut m = MergeBits::new([ts(&[1, 2, 3]), ts(&[2, 9, 4])]).unwrap();
        m.by_ref().for_each(drop);
        assert_eq!(
            m.error(),
            Some(&SetError::Unsorted {
                input: 1,
                previous: t(9),
                next: t(4)
            })
        );

        let many: Vec<Vec<IdToken>> = (0..64).map(|i| ts(&[i as u8])).collect();
        let out: Vec<_> = MergeBits::new(many).unwrap().collect();
        assert_eq!(out.len(), 64);
        assert_eq!(out[63], (t(63), 1u64 << 63));
        let too_many: Vec<Vec<IdToken>> = vec![Vec::new(); 65];
        assert_eq!(
            MergeBits::new(too_many).err(),
            Some(SetError::TooManyInputs { count: 65 })
        );
    }

    #[test]
    fn attr_mismatch_compares_sets() {
        let a = rows(&[(1, 1), (2, 1), (2, 2), (3, 5), (4, 1), (6, 1), (6, 1)]);
        let b = rows(&[(2, 2), (2, 1), (2, 2), (3, 6), (5, 1), (6, 1), (7, 7)]);
        let mut m = attr_mismatch(a, b);
        let out: Vec<_> = m.by_ref().collect();
        assert_eq!(out, ts(&[3]));
        assert_eq!(m.error(), None);

        let a = rows(&[(1, 1), (1, 2)]);
        let b = rows(&[(1, 1)]);
        assert_eq!(attr_mismatch(a, b).collect::<Vec<_>>(), ts(&[1]));

        let mut m = attr_mismatch(rows(&[(1, 1), (3, 1), (2, 1)]), rows(&[(1, 1)]));
        m.by_ref().for_each(drop);
        assert_eq!(
            m.error(),
            Some(&SetError::Unsorted {
                input: 0,
                previous: t(3),
                next: t(2)
            })
        );
    }

    #[test]
    fn operators_are_lazy() {
        let mut pulled = 0;
        let a = std::iter::from_fn(|| {
            pulled += 1;
            Some(t(1))
        });
        let u = union(a, Vec::new());
        drop(u);
        assert_eq!(pulled, 0);
    }

    #[test]
    fn error_messages_name_the_input() {
        let e = SetError::Unsorted {
            input: 2,
            previous: t(1),
            next: t(0),
        };
        assert!(e.to_string().contains("input 2"));
        assert!(
            SetError::TooManyInputs { count: 70 }
                .to_string()
                .contains("at most 64")
        );
    }
}
