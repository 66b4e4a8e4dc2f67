//! The one canonical codec. Every structure that is signed, hashed, stored or
//! sent goes through [`encode`] and [`decode`]; nothing else in dxmesh names
//! `bincode`.
//!
//! The format is bincode 2.0.1 in serde mode with one fixed configuration:
//! little-endian, variable-length integers, and a decode limit. Encoding is
//! canonical because every dxmesh type uses only sequences, fixed arrays,
//! integers, strings, enums and `BTreeMap`s (never hash maps or floats), so
//! one value has exactly one byte string. Golden vectors under
//! `protocol/tests/golden/` pin the bytes: if they change, the format changed.
//!
//! Decoding rejects trailing bytes, and refuses any input longer than the
//! limit, and any length prefix that would claim more than the limit, before
//! allocating for it.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest byte string [`decode`] accepts (and the largest allocation a
/// length prefix may claim): 16 MiB. Bulk feed chunks are about 1 MiB.
pub const MAX_DECODE_BYTES: usize = 16 * 1024 * 1024;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_DECODE_BYTES>,
>;

const CONFIG: Config = bincode::config::standard()
    .with_little_endian()
    .with_variable_int_encoding()
    .with_limit::<MAX_DECODE_BYTES>();

/// Why a value could not be encoded or decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum CodecError {
    /// The input is longer than [`MAX_DECODE_BYTES`].
    #[error("input of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit it exceeded.
        limit: usize,
    },
    /// The value decoded but bytes were left over.
    #[error("{extra} trailing bytes after the encoded value")]
    TrailingBytes {
        /// How many bytes were left.
        extra: usize,
    },
    /// The bytes are not a valid encoding of the expected type.
    #[error("malformed encoding: {0}")]
    Malformed(String),
    /// The value could not be encoded (a bug in the caller's type).
    #[error("cannot encode value: {0}")]
    Encode(String),
}

/// Encodes `value` canonically.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, CONFIG).map_err(|e| CodecError::Encode(e.to_string()))
}

/// Decodes exactly one `T` from `bytes`, refusing trailing bytes and oversized input.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_DECODE_BYTES {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            limit: MAX_DECODE_BYTES,
        });
    }
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(bytes, CONFIG)
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes {
            extra: bytes.len() - used,
        });
    }
    Ok(value)
}

/// Like [`decode`], but the value may borrow strings and byte slices from
/// `bytes` (no allocation per string): for bulk reads on hot paths.
pub fn decode_borrowed<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_DECODE_BYTES {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            limit: MAX_DECODE_BYTES,
        });
    }
    let (value, used) = bincode::serde::borrow_decode_from_slice::<T, _>(bytes, CONFIG)
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes {
            extra: bytes.len() - used,
        });
    }
    Ok(value)
}

/// Appends `n` in the codec's variable-length integer form (the form every
/// length, count and integer takes inside [`encode`]'s output): below 251
/// one byte; else a marker byte (251, 252, 253) and a little-endian `u16`,
/// `u32` or `u64`. For writers that produce encoded bytes directly, without
/// going through serde (the dataset records of an import).
pub fn put_varint(out: &mut Vec<u8>, n: u64) {
    if n < 251 {
        out.push(n as u8);
    } else if n <= u64::from(u16::MAX) {
        out.push(251);
        out.extend_from_slice(&(n as u16).to_le_bytes());
    } else if n <= u64::from(u32::MAX) {
        out.push(252);
        out.extend_from_slice(&(n as u32).to_le_bytes());
    } else {
        out.push(253);
        out.extend_from_slice(&n.to_le_bytes());
    }
}

/// Reads one variable-length integer (see [`put_varint`]) from the front of
/// `bytes` and advances past it; `None` if `bytes` does not start with one.
pub fn get_varint(bytes: &mut &[u8]) -> Option<u64> {
    let (&first, rest) = bytes.split_first()?;
    let width = match first {
        0..=250 => {
            *bytes = rest;
            return Some(u64::from(first));
        }
        251 => 2,
        252 => 4,
        253 => 8,
        _ => return None,
    };
    let (le, rest) = rest.split_at_checked(width)?;
    let mut buf = [0u8; 8];
    buf[..width].copy_from_slice(le);
    *bytes = rest;
    Some(u64::from_le_bytes(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_trailing_bytes() {
        let v: (u64, String, Vec<u8>) = (300, "dxmesh".into(), vec![1, 2, 3]);
        let mut bytes = encode(&v).unwrap();
        assert_eq!(decode::<(u64, String, Vec<u8>)>(&bytes).unwrap(), v);
        bytes.push(0);
        assert_eq!(
            decode::<(u64, String, Vec<u8>)>(&bytes),
            Err(CodecError::TrailingBytes { extra: 1 })
        );
    }

    #[test]
    fn borrowed_decoding_matches_owned_decoding() {
        let v: Vec<(u32, String)> = vec![(1, "甲".into()), (2, "乙丙".into())];
        let bytes = encode(&v).unwrap();
        let b: Vec<(u32, &str)> = decode_borrowed(&bytes).unwrap();
        assert_eq!(b, vec![(1, "甲"), (2, "乙丙")]);
        let mut more = bytes.clone();
        more.push(0);
        assert!(decode_borrowed::<Vec<(u32, &str)>>(&more).is_err());
    }

    #[test]
    fn huge_length_prefix_is_refused_without_allocating() {
        // varint 0xFD = u64 follows; claim 2^40 bytes for a Vec<u8>.
        let mut bytes = vec![0xFD];
        bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(matches!(
            decode::<Vec<u8>>(&bytes),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn oversized_input_is_refused() {
        let bytes = vec![0u8; MAX_DECODE_BYTES + 1];
        assert_eq!(
            decode::<Vec<u8>>(&bytes),
            Err(CodecError::TooLarge {
                len: MAX_DECODE_BYTES + 1,
                limit: MAX_DECODE_BYTES
            })
        );
    }

    #[test]
    fn varints_are_the_codecs_integers() {
        for n in [
            0u64,
            1,
            250,
            251,
            252,
            65_535,
            65_536,
            1 << 31,
            u64::from(u32::MAX) + 1,
            u64::MAX,
        ] {
            let mut ours = Vec::new();
            put_varint(&mut ours, n);
            assert_eq!(ours, encode(&n).unwrap(), "{n}");
            let mut rest = ours.as_slice();
            assert_eq!(get_varint(&mut rest), Some(n));
            assert!(rest.is_empty());
            // Every cut-short form is refused.
            for cut in 0..ours.len() {
                assert_eq!(get_varint(&mut &ours[..cut]), None, "{n} cut at {cut}");
            }
        }
        assert_eq!(get_varint(&mut &[254u8, 0, 0][..]), None);
    }
}
