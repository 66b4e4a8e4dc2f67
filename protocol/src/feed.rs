//! Feeds: what a provider publishes for one agreement and epoch, and how a
//! consumer verifies every byte of it as it arrives.
//!
//! A feed is a list of records sorted by ID token, cut into **chunks** of
//! about 1 MiB. A chunk is columnar: the records' ID tokens as one byte
//! string, one byte string per attribute-token field, one string column per
//! clear field. Each encoded chunk's RFC 6962 leaf hash is listed in the
//! **manifest**, whose Merkle root commits to the list; the provider signs
//! the manifest. A consumer checks the manifest's signature and root first,
//! then each chunk against its listed hash the moment it arrives, so a bad
//! chunk is caught at that chunk, not at the end of the transfer.
//!
//! Also here: the disclosure record set a provider signs, and the pull
//! request sent at the start of a bulk stream.

use crate::agreement::terms::{AgreementId, FieldTerm, Treatment};
use crate::codec::{self, CodecError};
use crate::date::Date;
use crate::display::hex;
use crate::hash::{Hash, sha256};
use crate::identity::PublicKey;
use crate::merkle;
use crate::signed::SignedKind;
use crate::time::Timestamp;
use crate::token::{AttrToken, IdToken};
use serde::{Deserialize, Serialize};

/// The bulk-transfer stream protocol (libp2p-stream).
pub const FEED_PROTOCOL: &str = "/dxmesh/feed/1";
/// Target size of an encoded chunk.
pub const CHUNK_TARGET_BYTES: usize = 1024 * 1024;
/// Largest chunk frame a consumer accepts.
pub const MAX_CHUNK_FRAME: usize = 8 * 1024 * 1024;

/// Why a feed, chunk or manifest was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum FeedError {
    /// The manifest contradicts itself.
    #[error("manifest is inconsistent: {0}")]
    Manifest(String),
    /// A chunk's hash is not the one the manifest lists.
    #[error("chunk {index}: hash {actual} does not match the manifest's {expected}")]
    ChunkHash {
        /// Chunk index.
        index: u32,
        /// Hash listed in the manifest (hex).
        expected: String,
        /// Hash of the bytes received (hex).
        actual: String,
    },
    /// A chunk matches its hash but not the manifest's schema or order.
    #[error("chunk {index}: {problem}")]
    Chunk {
        /// Chunk index.
        index: u32,
        /// What is wrong.
        problem: String,
    },
    /// A chunk index outside the manifest.
    #[error("chunk {index} is not in a feed of {chunks} chunks")]
    NoSuchChunk {
        /// Asked for.
        index: u32,
        /// Chunks in the feed.
        chunks: u32,
    },
    /// Bytes that do not decode.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// A column of strings: concatenated UTF-8 and end offsets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StrColumn {
    /// Concatenated values.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    /// End offset of each value (u32 little-endian each).
    #[serde(with = "serde_bytes")]
    pub ends: Vec<u8>,
}

impl StrColumn {
    /// Appends a value.
    pub fn push(&mut self, v: &str) {
        self.data.extend_from_slice(v.as_bytes());
        self.ends
            .extend_from_slice(&(self.data.len() as u32).to_le_bytes());
    }
    /// Number of values.
    pub fn len(&self) -> usize {
        self.ends.len() / 4
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
    fn end(&self, i: usize) -> usize {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.ends[i * 4..i * 4 + 4]);
        u32::from_le_bytes(b) as usize
    }
    /// Value `i` (validated chunks only).
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.end(i - 1) };
        std::str::from_utf8(&self.data[start..self.end(i)]).unwrap_or("")
    }
    fn validate(&self, count: usize) -> Result<(), String> {
        if self.ends.len() != count * 4 {
            return Err("a clear column has the wrong number of values".into());
        }
        let mut prev = 0;
        for i in 0..count {
            let e = self.end(i);
            if e < prev || e > self.data.len() {
                return Err("a clear column's offsets are not increasing".into());
            }
            if std::str::from_utf8(&self.data[prev..e]).is_err() {
                return Err("a clear column holds invalid UTF-8".into());
            }
            prev = e;
        }
        if prev != self.data.len() {
            return Err("a clear column has trailing bytes".into());
        }
        Ok(())
    }
}

/// One chunk of a feed, columnar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Chunk {
    /// Position in the feed.
    pub index: u32,
    /// Records in the chunk.
    pub count: u32,
    /// ID tokens, 16 bytes each, sorted.
    #[serde(with = "serde_bytes")]
    pub ids: Vec<u8>,
    /// One column per `attr_token` field (schema order): 8 bytes per record.
    pub attrs: Vec<serde_bytes::ByteBuf>,
    /// One column per `clear` field (schema order).
    pub clear: Vec<StrColumn>,
}

impl Chunk {
    /// A new, empty chunk for a schema.
    pub fn new(index: u32, schema: &[FieldTerm]) -> Chunk {
        let (a, c) = schema_shape(schema);
        Chunk {
            index,
            count: 0,
            ids: Vec::new(),
            attrs: vec![serde_bytes::ByteBuf::new(); a],
            clear: vec![StrColumn::default(); c],
        }
    }

    /// Appends a record (the caller keeps records sorted by token).
    pub fn push(&mut self, id: &IdToken, attrs: &[AttrToken], clear: &[&str]) {
        self.ids.extend_from_slice(&id.0);
        for (col, a) in self.attrs.iter_mut().zip(attrs) {
            col.extend_from_slice(&a.0);
        }
        for (col, v) in self.clear.iter_mut().zip(clear) {
            col.push(v);
        }
        self.count += 1;
    }

    /// Approximate encoded size so far.
    pub fn approx_bytes(&self) -> usize {
        self.ids.len()
            + self.attrs.iter().map(|a| a.len()).sum::<usize>()
            + self
                .clear
                .iter()
                .map(|c| c.data.len() + c.ends.len())
                .sum::<usize>()
    }

    /// ID token of record `i`.
    pub fn id(&self, i: usize) -> IdToken {
        let mut t = [0u8; 16];
        t.copy_from_slice(&self.ids[i * 16..i * 16 + 16]);
        IdToken(t)
    }

    /// Attribute token of record `i` in attribute column `col`.
    pub fn attr(&self, col: usize, i: usize) -> AttrToken {
        let mut t = [0u8; 8];
        t.copy_from_slice(&self.attrs[col][i * 8..i * 8 + 8]);
        AttrToken(t)
    }

    /// Clear value of record `i` in clear column `col`.
    pub fn clear_value(&self, col: usize, i: usize) -> &str {
        self.clear[col].get(i)
    }

    /// Checks shape against `schema` and that tokens are sorted.
    pub fn validate(&self, schema: &[FieldTerm]) -> Result<(), String> {
        let n = self.count as usize;
        let (a, c) = schema_shape(schema);
        if self.ids.len() != n * 16 {
            return Err("the ID column has the wrong length".into());
        }
        if self.attrs.len() != a || self.attrs.iter().any(|col| col.len() != n * 8) {
            return Err("the attribute-token columns do not match the schema".into());
        }
        if self.clear.len() != c {
            return Err("the clear columns do not match the schema".into());
        }
        for col in &self.clear {
            col.validate(n)?;
        }
        if (1..n).any(|i| self.ids[(i - 1) * 16..i * 16] > self.ids[i * 16..i * 16 + 16]) {
            return Err("records are not sorted by ID token".into());
        }
        Ok(())
    }
}

/// Numbers of attribute-token and clear fields in a schema.
pub fn schema_shape(schema: &[FieldTerm]) -> (usize, usize) {
    let a = schema
        .iter()
        .filter(|f| f.treatment == Treatment::AttrToken)
        .count();
    let c = schema
        .iter()
        .filter(|f| f.treatment == Treatment::Clear)
        .count();
    (a, c)
}

/// Data-quality statistics a provider publishes with a feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Quality {
    /// Rows in the department export.
    pub rows_read: u64,
    /// Rows quarantined at import, by reason.
    pub quarantined: Vec<(String, u64)>,
    /// ID numbers normalised, by kind of fix.
    pub fixes: Vec<(String, u64)>,
    /// Exact duplicate rows collapsed.
    pub duplicate_rows: u64,
    /// Rows kept after import.
    pub rows_kept: u64,
    /// Rows outside the agreement's row scope.
    pub rows_out_of_scope: u64,
    /// Distinct ID numbers in the feed.
    pub distinct_ids: u64,
}

/// The signed description of one feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The provider that signs it.
    pub provider: PublicKey,
    /// The agreement it is published under.
    pub agreement: AgreementId,
    /// The agreement's consumer: the only node the feed is for.
    pub consumer: PublicKey,
    /// Dataset name.
    pub dataset: String,
    /// Epoch.
    pub epoch: u64,
    /// The epoch's reference date.
    pub reference_date: Date,
    /// Fields, in record order (the agreement's fields).
    pub schema: Vec<FieldTerm>,
    /// Records in the feed.
    pub records: u64,
    /// RFC 6962 leaf hash of each encoded chunk.
    pub chunk_hashes: Vec<Hash>,
    /// First ID token of each chunk (for range pulls).
    pub first_tokens: Vec<IdToken>,
    /// Merkle root over `chunk_hashes`.
    pub root: Hash,
    /// Data quality.
    pub quality: Quality,
    /// When it was built.
    pub created_at: Timestamp,
    /// Digest of the previous epoch's signed manifest of this agreement.
    pub previous: Option<Hash>,
}

impl SignedKind for Manifest {
    const TAG: &'static str = "dxmesh/feed-manifest/v1";
}

impl Manifest {
    /// Number of chunks.
    pub fn chunks(&self) -> u32 {
        self.chunk_hashes.len() as u32
    }

    /// Checks the manifest is self-consistent: the root commits to the chunk list.
    pub fn check(&self) -> Result<(), FeedError> {
        if self.first_tokens.len() != self.chunk_hashes.len() {
            return Err(FeedError::Manifest(
                "one first token per chunk is required".into(),
            ));
        }
        if merkle::root(&self.chunk_hashes) != self.root {
            return Err(FeedError::Manifest(
                "the Merkle root does not match the chunk hashes".into(),
            ));
        }
        if !self.first_tokens.windows(2).all(|w| w[0] <= w[1]) {
            return Err(FeedError::Manifest("chunks are not in token order".into()));
        }
        if self.records > 0 && self.chunk_hashes.is_empty() {
            return Err(FeedError::Manifest("records but no chunks".into()));
        }
        Ok(())
    }

    /// Checks chunk `index`'s bytes against the hash the manifest lists
    /// (what a pull checks as each chunk arrives; the structure is checked
    /// by [`Manifest::verify_chunk`] when the chunk is read).
    pub fn verify_chunk_hash(&self, index: u32, bytes: &[u8]) -> Result<(), FeedError> {
        let expected = *self
            .chunk_hashes
            .get(index as usize)
            .ok_or(FeedError::NoSuchChunk {
                index,
                chunks: self.chunks(),
            })?;
        let actual = merkle::leaf_hash(bytes);
        if actual != expected {
            return Err(FeedError::ChunkHash {
                index,
                expected: hex(&expected),
                actual: hex(&actual),
            });
        }
        Ok(())
    }

    /// Verifies chunk `index`'s bytes against the manifest and decodes it.
    pub fn verify_chunk(&self, index: u32, bytes: &[u8]) -> Result<Chunk, FeedError> {
        self.verify_chunk_hash(index, bytes)?;
        let chunk: Chunk = codec::decode(bytes)?;
        let bad = |problem: String| FeedError::Chunk { index, problem };
        if chunk.index != index {
            return Err(bad(format!("says it is chunk {}", chunk.index)));
        }
        chunk.validate(&self.schema).map_err(bad)?;
        if chunk.count == 0 || chunk.id(0) != self.first_tokens[index as usize] {
            return Err(bad(
                "its first token is not the one the manifest lists".into()
            ));
        }
        Ok(chunk)
    }

    /// Chunks that may hold tokens in `[from, to]` (inclusive).
    pub fn chunks_for_range(&self, from: &IdToken, to: &IdToken) -> std::ops::Range<u32> {
        let n = self.first_tokens.len();
        // First chunk whose successor starts after `from`.
        let start = self
            .first_tokens
            .partition_point(|t| t <= from)
            .saturating_sub(1);
        let end = self.first_tokens.partition_point(|t| t <= to);
        (start.min(n) as u32)..(end.max(start).min(n) as u32)
    }
}

/// The request at the start of a bulk feed stream (consumer to provider).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRequest {
    /// Agreement.
    pub agreement: AgreementId,
    /// Epoch.
    pub epoch: u64,
    /// The pull session opened with `PullOpen`.
    pub pull_id: [u8; 16],
    /// First chunk wanted.
    pub from: u32,
    /// One past the last chunk wanted.
    pub to: u32,
}

/// One disclosed record: the allowed fields of a record whose token was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisclosedRecord {
    /// The token asked for.
    pub token: IdToken,
    /// Values of the disclosed fields, in the disclosure's field order.
    pub values: Vec<String>,
}

/// What a provider discloses for one request, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disclosure {
    /// Agreement.
    pub agreement: AgreementId,
    /// Epoch.
    pub epoch: u64,
    /// Result kind.
    pub result_kind: String,
    /// Field names, in value order.
    pub fields: Vec<String>,
    /// Records found (an ID with several rows gives several records).
    pub records: Vec<DisclosedRecord>,
    /// Tokens with no record.
    pub unknown: Vec<IdToken>,
    /// When.
    pub at: Timestamp,
}

impl SignedKind for Disclosure {
    const TAG: &'static str = "dxmesh/disclosure/v1";
}

/// A provider's signed receipt for the ID numbers it disclosed under a
/// commitment: each disclosed token with its ID number, as an RFC 6962
/// root over the sorted distinct pairs (leaf data: the 16 token bytes,
/// then the 18 ID characters). A ministry answers only about ID numbers a
/// receipt vouches for, so a comparator cannot ask it about anyone its
/// registry provider did not disclose as a committed candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisclosureReceipt {
    /// The agreement the IDs were disclosed under.
    pub agreement: AgreementId,
    /// Epoch.
    pub epoch: u64,
    /// Who they were disclosed to.
    pub consumer: PublicKey,
    /// The result kind of the commitment.
    pub result_kind: String,
    /// Digest of the signed commitment they were disclosed under.
    pub commitment: Hash,
    /// Distinct (token, ID number) pairs.
    pub count: u64,
    /// RFC 6962 root over the sorted pairs.
    pub root: Hash,
}

impl SignedKind for DisclosureReceipt {
    const TAG: &'static str = "dxmesh/disclosure-receipt/v1";
}

/// The count and root of sorted, distinct (token, ID number) pairs, as a
/// [`DisclosureReceipt`] states them.
pub fn id_pairs_root(pairs: &[(IdToken, crate::id::IdNumber)]) -> (u64, Hash) {
    let leaves: Vec<Hash> = pairs
        .iter()
        .map(|(t, id)| {
            let mut leaf = [0u8; 34];
            leaf[..16].copy_from_slice(&t.0);
            leaf[16..].copy_from_slice(id.as_bytes());
            crate::merkle::leaf_hash(&leaf)
        })
        .collect();
    (pairs.len() as u64, crate::merkle::root(&leaves))
}

/// The distinct (token, ID number) pairs of a disclosure whose fields
/// include `id_number`, sorted; values that are not a normalised ID number
/// are left out.
pub fn disclosed_id_pairs(d: &Disclosure) -> Vec<(IdToken, crate::id::IdNumber)> {
    let Some(col) = d.fields.iter().position(|f| f == "id_number") else {
        return Vec::new();
    };
    let mut pairs: Vec<(IdToken, crate::id::IdNumber)> = d
        .records
        .iter()
        .filter_map(|r| {
            let v = r.values.get(col)?;
            crate::id::IdNumber::from_normalised(v.as_bytes())
                .ok()
                .map(|id| (r.token, id))
        })
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// The ministry's signed answer to a ministry query: the national index
/// records of the queried ID numbers it found, each under the token the
/// query paired it with (no ID number: the answer can be kept as evidence
/// beside the comparator's token files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinistryAnswer {
    /// Agreement the query was made under.
    pub agreement: AgreementId,
    /// Epoch.
    pub epoch: u64,
    /// Digest of the commitment to the candidates the query carried.
    pub commitment: Hash,
    /// Digest of the disclosure receipt the query carried.
    pub receipt: Hash,
    /// Field names of `values`.
    pub fields: Vec<String>,
    /// Records found: the token the ID was asked with, and field values.
    pub found: Vec<(IdToken, Vec<String>)>,
    /// IDs asked for.
    pub asked: u64,
    /// When.
    pub at: Timestamp,
}

impl SignedKind for MinistryAnswer {
    const TAG: &'static str = "dxmesh/ministry-answer/v1";
}

/// A ministry query as its sender checks the answer against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinistryAsked<'a> {
    /// Agreement.
    pub agreement: AgreementId,
    /// Epoch.
    pub epoch: u64,
    /// Digest of the commitment the query carried.
    pub commitment: Hash,
    /// Digest of the receipt the query carried.
    pub receipt: Hash,
    /// Fields asked for.
    pub fields: &'a [String],
    /// Tokens of the IDs asked about, sorted.
    pub tokens: &'a [IdToken],
}

impl MinistryAnswer {
    /// Whether this answers `asked`: the same agreement, epoch, commitment,
    /// receipt and fields, as many IDs asked, each found record of a token
    /// asked about with a value for each field. A ministry answering
    /// another query (an old answer replayed, or records of people not
    /// asked about) is not taken.
    pub fn answers(&self, asked: &MinistryAsked<'_>) -> Result<(), String> {
        if (self.agreement, self.epoch, self.commitment, self.receipt)
            != (
                asked.agreement,
                asked.epoch,
                asked.commitment,
                asked.receipt,
            )
        {
            return Err(
                "it answers another query (agreement, epoch, commitment or receipt)".into(),
            );
        }
        if self.fields != asked.fields || self.asked != asked.tokens.len() as u64 {
            return Err(format!(
                "it answers {} IDs with fields {:?}, not {} with {:?}",
                self.asked,
                self.fields,
                asked.tokens.len(),
                asked.fields
            ));
        }
        for (token, values) in &self.found {
            if asked.tokens.binary_search(token).is_err() {
                return Err(format!(
                    "it names token {}, not asked about",
                    crate::hex(&token.0)
                ));
            }
            if values.len() != self.fields.len() {
                return Err(format!(
                    "token {} has {} values for {} fields",
                    crate::hex(&token.0),
                    values.len(),
                    self.fields.len()
                ));
            }
        }
        Ok(())
    }
}

/// The hash of a disclosed set (for logs that must not hold the records).
pub fn disclosure_digest(d: &Disclosure) -> Hash {
    sha256(&codec::encode(d).expect("disclosures encode"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ministry_answer_to_another_query_or_about_others_is_not_taken() {
        let fields = vec!["province_code".to_string(), "insurance_type".to_string()];
        let tokens = vec![IdToken([1; 16]), IdToken([2; 16])];
        let asked = MinistryAsked {
            agreement: [7; 32],
            epoch: 3,
            commitment: [8; 32],
            receipt: [9; 32],
            fields: &fields,
            tokens: &tokens,
        };
        let honest = MinistryAnswer {
            agreement: [7; 32],
            epoch: 3,
            commitment: [8; 32],
            receipt: [9; 32],
            fields: fields.clone(),
            found: vec![(IdToken([2; 16]), vec!["110000".into(), "urban".into()])],
            asked: 2,
            at: Timestamp(1),
        };
        assert_eq!(honest.answers(&asked), Ok(()));
        let lies: Vec<(MinistryAnswer, &str)> = vec![
            (
                MinistryAnswer {
                    epoch: 2,
                    ..honest.clone()
                },
                "another query",
            ),
            (
                MinistryAnswer {
                    receipt: [0; 32],
                    ..honest.clone()
                },
                "another query",
            ),
            (
                MinistryAnswer {
                    asked: 3,
                    ..honest.clone()
                },
                "answers 3 IDs",
            ),
            (
                MinistryAnswer {
                    found: vec![(IdToken([5; 16]), vec!["110000".into(), "urban".into()])],
                    ..honest.clone()
                },
                "not asked about",
            ),
            (
                MinistryAnswer {
                    found: vec![(IdToken([1; 16]), vec!["110000".into()])],
                    ..honest.clone()
                },
                "1 values for 2 fields",
            ),
        ];
        for (lie, why) in lies {
            let e = lie.answers(&asked).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    fn schema() -> Vec<FieldTerm> {
        vec![
            FieldTerm {
                name: "id_number".into(),
                treatment: Treatment::Token,
            },
            FieldTerm {
                name: "name".into(),
                treatment: Treatment::AttrToken,
            },
            FieldTerm {
                name: "region_code".into(),
                treatment: Treatment::Clear,
            },
        ]
    }

    fn chunk(index: u32, first: u8, n: u8) -> Chunk {
        let mut c = Chunk::new(index, &schema());
        for i in 0..n {
            c.push(&IdToken([first + i; 16]), &[AttrToken([i; 8])], &["440105"]);
        }
        c
    }

    fn manifest(chunks: &[Chunk]) -> (Manifest, Vec<Vec<u8>>) {
        let bytes: Vec<Vec<u8>> = chunks.iter().map(|c| codec::encode(c).unwrap()).collect();
        let hashes: Vec<Hash> = bytes.iter().map(|b| merkle::leaf_hash(b)).collect();
        let m = Manifest {
            provider: crate::identity::Identity::from_seed([1; 32])
                .unwrap()
                .public(),
            agreement: [7; 32],
            consumer: crate::identity::Identity::from_seed([2; 32])
                .unwrap()
                .public(),
            dataset: "registry".into(),
            epoch: 3,
            reference_date: Date::new(2026, 12, 1).unwrap(),
            schema: schema(),
            records: chunks.iter().map(|c| u64::from(c.count)).sum(),
            root: merkle::root(&hashes),
            chunk_hashes: hashes,
            first_tokens: chunks.iter().map(|c| c.id(0)).collect(),
            quality: Quality::default(),
            created_at: Timestamp(0),
            previous: None,
        };
        (m, bytes)
    }

    #[test]
    fn chunks_verify_and_a_flipped_byte_is_named() {
        let chunks = vec![chunk(0, 1, 3), chunk(1, 10, 2)];
        let (m, bytes) = manifest(&chunks);
        m.check().unwrap();
        assert_eq!(m.verify_chunk(1, &bytes[1]).unwrap(), chunks[1]);
        assert_eq!(
            m.verify_chunk(1, &bytes[1]).unwrap().clear_value(0, 1),
            "440105"
        );
        let mut bad = bytes[0].clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            m.verify_chunk(0, &bad),
            Err(FeedError::ChunkHash { index: 0, .. })
        ));
        assert!(matches!(
            m.verify_chunk(0, &bytes[1]),
            Err(FeedError::ChunkHash { index: 0, .. })
        ));
        assert!(matches!(
            m.verify_chunk(2, &bytes[1]),
            Err(FeedError::NoSuchChunk {
                index: 2,
                chunks: 2
            })
        ));
        let mut m2 = m.clone();
        m2.root[0] ^= 1;
        assert!(m2.check().is_err());
    }

    #[test]
    fn unsorted_or_misshapen_chunks_are_refused() {
        let mut c = chunk(0, 5, 2);
        c.ids[0] = 0xFF;
        assert!(c.validate(&schema()).is_err());
        let mut c = chunk(0, 5, 2);
        c.attrs[0].pop();
        assert!(c.validate(&schema()).is_err());
        let mut c = chunk(0, 5, 2);
        c.clear[0].data.push(b'x');
        assert!(c.validate(&schema()).is_err());
    }

    #[test]
    fn range_lookup() {
        let chunks = vec![chunk(0, 1, 3), chunk(1, 10, 2), chunk(2, 20, 2)];
        let (m, _) = manifest(&chunks);
        assert_eq!(
            m.chunks_for_range(&IdToken([0; 16]), &IdToken([0xFF; 16])),
            0..3
        );
        assert_eq!(
            m.chunks_for_range(&IdToken([11; 16]), &IdToken([12; 16])),
            1..2
        );
        assert_eq!(
            m.chunks_for_range(&IdToken([12; 16]), &IdToken([20; 16])),
            1..3
        );
        assert_eq!(
            m.chunks_for_range(&IdToken([2; 16]), &IdToken([2; 16])),
            0..1
        );
    }
}
