//! Disclosure at the provider: resolving result tokens through the epoch's
//! private index (fence lookups, see [`crate::dataset::sorted`]) to the
//! records they came from, and reading just those records (nearby ones in
//! one read) for the allowed fields. Only records inside the committed
//! inputs' row scope ([`RowScope`]: an input's `where`) are returned; the
//! index holds only the agreement's row scope. A request's cost follows
//! the tokens it asks for, not the size of the dataset.

use crate::dataset::sorted::SortedFile;
use crate::dataset::{BlockCursor, DatasetReader};
use crate::publish::store::{FeedStoreError, feed_dir, io_err};
use dxmesh_protocol::agreement::Terms;
use dxmesh_protocol::commitment::RowScope;
use dxmesh_protocol::feed::{DisclosedRecord, Disclosure};
use dxmesh_protocol::time::Timestamp;
use dxmesh_protocol::token::IdToken;
use rayon::prelude::*;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// What a disclosure asks of the epoch's feed: the result kind, the
/// fields, the tokens and the rows they may come from.
pub struct Asked<'a> {
    /// The result kind.
    pub result_kind: &'a str,
    /// The fields to return (`id_number` is the normalised ID; other names
    /// are dataset columns).
    pub fields: &'a [String],
    /// The tokens.
    pub tokens: &'a [IdToken],
    /// The rows a record may come from.
    pub scope: &'a RowScope,
}

/// Resolves the asked tokens through the epoch's index to the values of
/// the asked fields of their records in scope; a token with no record in
/// scope is `unknown`.
pub fn disclose(
    data_dir: &Path,
    terms: &Terms,
    epoch: u64,
    asked: &Asked<'_>,
    now: Timestamp,
) -> Result<Disclosure, FeedStoreError> {
    let Asked {
        result_kind,
        fields,
        tokens,
        scope,
    } = *asked;
    let agreement = terms.id();
    let index_path = feed_dir(data_dir, &agreement, epoch).join(crate::publish::build::INDEX_FILE);
    let index = SortedFile::open(&index_path)?;
    let generation = <[u8; 8]>::try_from(index.meta())
        .map(u64::from_be_bytes)
        .map_err(|_| FeedStoreError::Io {
            path: index_path.clone(),
            message: "the index names no dataset generation".into(),
        })?;
    // The generation the feed was built from, kept for it (see
    // `dataset::pin`) however many imports came since.
    let reader = match DatasetReader::open_at(data_dir, &terms.dataset, generation) {
        Err(crate::dataset::ImportError::GenerationGone { .. }) => {
            return Err(FeedStoreError::GenerationGone {
                dataset: terms.dataset.clone(),
                epoch,
                generation,
            });
        }
        other => other?,
    };
    let source = |f: &str, what: &str| {
        if f == reader.id_column() {
            Ok(None)
        } else {
            reader
                .columns()
                .iter()
                .position(|c| c == f)
                .map(Some)
                .ok_or_else(|| FeedStoreError::Schema {
                    dataset: terms.dataset.clone(),
                    problem: format!("has no column {f:?} {what}"),
                })
        }
    };
    let sources: Vec<Option<usize>> = fields
        .iter()
        .map(|f| source(f, "to disclose"))
        .collect::<Result<_, _>>()?;
    let scoped = Scoped {
        scope,
        fields: scope
            .fields()
            .into_iter()
            .map(|f| Ok((f, source(f, "that the row scope reads")?)))
            .collect::<Result<_, FeedStoreError>>()?,
    };
    // Token -> (offset, length) of every record, by fence lookups.
    let mut asked: Vec<IdToken> = tokens.to_vec();
    asked.par_sort_unstable();
    asked.dedup();
    let asked = asked;
    let located: Vec<Result<Lookup, FeedStoreError>> = asked
        .par_chunks(LOOKUP_TASK)
        .map(|task| {
            let keys: Vec<&[u8]> = task.iter().map(|t| &t.0[..]).collect();
            let mut hits = Vec::new();
            let mut seen = vec![false; task.len()];
            index.lookup(&keys, |i, e| {
                seen[i] = true;
                let mut at = [0u8; 8];
                at.copy_from_slice(&e[16..24]);
                hits.push(Located {
                    at: u64::from_be_bytes(at),
                    len: u32::from_be_bytes([e[24], e[25], e[26], e[27]]),
                    token: task[i],
                });
            })?;
            let unknown = task
                .iter()
                .zip(&seen)
                .filter(|(_, s)| !**s)
                .map(|(t, _)| *t)
                .collect();
            Ok((hits, unknown))
        })
        .collect();
    let mut wanted = Vec::new();
    let mut unknown = Vec::new();
    for part in located {
        let (hits, missing) = part?;
        wanted.extend(hits);
        unknown.extend(missing);
    }
    // Read the records in file order, nearby ones in one read.
    wanted.sort_unstable_by_key(|l| (l.at, l.token));
    wanted.dedup_by_key(|l| (l.at, l.token));
    let file = reader.records_file()?;
    let path = reader.dir().join(crate::dataset::RECORDS_FILE);
    let per_task: Vec<Result<Vec<DisclosedRecord>, FeedStoreError>> = wanted
        .par_chunks(READ_TASK)
        .map(|task| read_records(&file, &path, task, &sources, &scoped))
        .collect();
    let mut records = Vec::with_capacity(wanted.len());
    for r in per_task {
        records.extend(r?);
    }
    // A token found only in rows out of scope has no record to disclose.
    let mut kept: Vec<IdToken> = records.iter().map(|r| r.token).collect();
    kept.par_sort_unstable();
    kept.dedup();
    let mut found: Vec<IdToken> = wanted.iter().map(|l| l.token).collect();
    found.par_sort_unstable();
    found.dedup();
    unknown.extend(found.into_iter().filter(|t| kept.binary_search(t).is_err()));
    unknown.sort_unstable();
    Ok(Disclosure {
        agreement,
        epoch,
        result_kind: result_kind.to_string(),
        fields: fields.to_vec(),
        records,
        unknown,
        at: now,
    })
}

/// Tokens looked up per parallel task.
const LOOKUP_TASK: usize = 4096;
/// Records read per parallel task.
const READ_TASK: usize = 2048;
/// Records closer than this are read together.
const READ_GAP: u64 = 4096;
/// At most this many bytes per read.
const READ_SPAN: u64 = 1 << 20;

/// What one lookup task found: where the records are, and the tokens the
/// index does not hold.
type Lookup = (Vec<Located>, Vec<IdToken>);

/// Where a token's record lies in `records.bin`.
#[derive(Clone, Copy)]
struct Located {
    at: u64,
    len: u32,
    token: IdToken,
}

/// The row scope of a disclosure and where each field it reads lies
/// (`None`: the ID).
struct Scoped<'a> {
    scope: &'a RowScope,
    fields: Vec<(&'a str, Option<usize>)>,
}

/// Reads and decodes the records of `task` (in file order), keeping the
/// values of `sources` (`None`: the ID) of the records in scope.
fn read_records(
    file: &std::fs::File,
    path: &Path,
    task: &[Located],
    sources: &[Option<usize>],
    scoped: &Scoped<'_>,
) -> Result<Vec<DisclosedRecord>, FeedStoreError> {
    let bad = |at: u64, problem: String| FeedStoreError::Io {
        path: path.to_path_buf(),
        message: format!("the record at byte {at} does not decode: {problem}"),
    };
    let mut out = Vec::with_capacity(task.len());
    let mut buf = Vec::new();
    let mut next = 0;
    while next < task.len() {
        // One read: from this record to the last one within reach.
        let from = task[next].at;
        let mut to = from + u64::from(task[next].len);
        let mut last = next + 1;
        while let Some(l) = task.get(last)
            && l.at <= to + READ_GAP
            && l.at + u64::from(l.len) - from <= READ_SPAN
        {
            to = to.max(l.at + u64::from(l.len));
            last += 1;
        }
        buf.resize((to - from) as usize, 0);
        file.read_exact_at(&mut buf, from).map_err(io_err(path))?;
        let mut values = Vec::new();
        for l in &task[next..last] {
            let start = (l.at - from) as usize;
            let mut cursor = BlockCursor::one(&buf[start..start + l.len as usize]);
            let wanted = |c: usize| {
                sources.contains(&Some(c)) || scoped.fields.iter().any(|(_, s)| *s == Some(c))
            };
            let id = cursor
                .next_record(wanted, &mut values)
                .map_err(|e| bad(l.at, e.to_string()))?
                .ok_or_else(|| bad(l.at, "no record".into()))?;
            if let Err(e) = cursor.next_record(|_| false, &mut Vec::new()) {
                return Err(bad(l.at, e.to_string()));
            }
            let in_scope = scoped.scope.keeps(|f| {
                let (_, s) = scoped.fields.iter().find(|(name, _)| *name == f)?;
                match s {
                    None => Some(id.as_str()),
                    Some(c) => values.get(*c).copied(),
                }
            });
            if !in_scope {
                continue;
            }
            out.push(DisclosedRecord {
                token: l.token,
                values: sources
                    .iter()
                    .map(|s| match s {
                        None => id.as_str().to_string(),
                        Some(c) => values.get(*c).map(|v| v.to_string()).unwrap_or_default(),
                    })
                    .collect(),
            });
        }
        next = last;
    }
    Ok(out)
}
