//! Keyed tokens: what feeds carry instead of identities.
//!
//! * `epoch_key = HKDF-SHA256(ikm = group_master_key, salt = empty,
//!   info = "dxmesh/epoch/v1" || group_id || epoch_number as u64 big-endian)`,
//!   32 bytes. A new key every epoch, so tokens of different epochs cannot be
//!   linked.
//! * ID token: the first 16 bytes of
//!   `HMAC-SHA256(epoch_key, "dxmesh/id/v1" || normalised_id)`.
//! * Attribute token (same person, different name?): the first 8 bytes of
//!   `HMAC-SHA256(epoch_key, "dxmesh/attr/v1" || field || normalised_id || normalised_value)`.
//!   Field names are restricted to `[a-z_]` ([`AttrField`]) and the ID is
//!   always 18 bytes, so the concatenation is unambiguous.
//!
//! Only providers of a token group ever hold its master key; the comparator
//! sees tokens, never keys. All primitives are ring's.

use crate::display::hex;
use crate::id::IdNumber;
use ring::{hkdf, hmac, rand::SecureRandom};
use serde::{Deserialize, Serialize};
use std::fmt;

const EPOCH_INFO: &[u8] = b"dxmesh/epoch/v1";
const ID_PREFIX: &[u8] = b"dxmesh/id/v1";
const ATTR_PREFIX: &[u8] = b"dxmesh/attr/v1";

/// Why a token input was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum TokenError {
    /// An attribute field name outside `[a-z_]{1,64}`.
    #[error("attribute field name {0:?} must be 1-64 characters of a-z and _")]
    BadField(String),
    /// Randomness could not be obtained.
    #[error("the system random source failed")]
    Random,
}

/// A token group's master key (32 secret bytes), held by the group's providers only.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupMasterKey(pub [u8; 32]);

impl fmt::Debug for GroupMasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GroupMasterKey(..)")
    }
}

impl GroupMasterKey {
    /// A fresh random key.
    pub fn generate(rng: &dyn SecureRandom) -> Result<GroupMasterKey, TokenError> {
        let mut k = [0u8; 32];
        rng.fill(&mut k).map_err(|_| TokenError::Random)?;
        Ok(GroupMasterKey(k))
    }

    /// The epoch key for `group_id` and `epoch`.
    pub fn epoch_key(&self, group_id: &str, epoch: u64) -> EpochKey {
        struct Len32;
        impl hkdf::KeyType for Len32 {
            fn len(&self) -> usize {
                32
            }
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(&self.0);
        let epoch_be = epoch.to_be_bytes();
        let info = [EPOCH_INFO, group_id.as_bytes(), &epoch_be];
        let okm = prk
            .expand(&info, Len32)
            .expect("32 bytes is within HKDF-SHA256's output limit");
        let mut bytes = [0u8; 32];
        okm.fill(&mut bytes)
            .expect("buffer length equals the requested length");
        EpochKey::from_bytes(bytes)
    }
}

/// The key tokens of one group and epoch are made with.
#[derive(Clone)]
pub struct EpochKey {
    bytes: [u8; 32],
    key: hmac::Key,
}

impl fmt::Debug for EpochKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EpochKey(..)")
    }
}

/// A 16-byte ID token. Feeds are sorted by it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IdToken(pub [u8; 16]);

/// An 8-byte attribute token.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AttrToken(pub [u8; 8]);

impl fmt::Debug for IdToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdToken({})", hex(&self.0))
    }
}
impl fmt::Display for IdToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}
impl fmt::Debug for AttrToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AttrToken({})", hex(&self.0))
    }
}

/// The record key of a feed that carries IDs in clear (no group key is
/// involved, so it hides nothing): the first 16 bytes of
/// `SHA-256("dxmesh/clear-id/v1" || normalised_id)`. Used only to sort such
/// feeds like tokenised ones.
pub fn clear_id_key(id: &IdNumber) -> IdToken {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"dxmesh/clear-id/v1");
    ctx.update(id.as_bytes());
    let d = ctx.finish();
    let mut t = [0u8; 16];
    t.copy_from_slice(&d.as_ref()[..16]);
    IdToken(t)
}

/// A validated attribute field name (`[a-z_]{1,64}`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AttrField(String);

impl AttrField {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<AttrField, TokenError> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        if ok {
            Ok(AttrField(name.to_string()))
        } else {
            Err(TokenError::BadField(name.to_string()))
        }
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl EpochKey {
    /// An epoch key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> EpochKey {
        EpochKey {
            bytes,
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
        }
    }

    /// The key's bytes (secret).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// The ID token of `id`.
    pub fn id_token(&self, id: &IdNumber) -> IdToken {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(ID_PREFIX);
        ctx.update(id.as_bytes());
        let tag = ctx.sign();
        let mut t = [0u8; 16];
        t.copy_from_slice(&tag.as_ref()[..16]);
        IdToken(t)
    }

    /// The attribute token of `field` = `normalised_value` for `id`.
    /// Normalise the value first with [`normalise_attr`].
    pub fn attr_token(
        &self,
        field: &AttrField,
        id: &IdNumber,
        normalised_value: &str,
    ) -> AttrToken {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(ATTR_PREFIX);
        ctx.update(field.0.as_bytes());
        ctx.update(id.as_bytes());
        ctx.update(normalised_value.as_bytes());
        let tag = ctx.sign();
        let mut t = [0u8; 8];
        t.copy_from_slice(&tag.as_ref()[..8]);
        AttrToken(t)
    }
}

/// Normalises an attribute value before it is tokenised, so that spelling
/// noise does not look like a conflict: full-width ASCII folded to ASCII,
/// ASCII letters upper-cased, all whitespace removed (Chinese names have
/// none; Latin names compare without it), and the middle-dot variants used
/// in transliterated names (`・`, `•`, `．`, `‧`) unified to `·` (U+00B7).
pub fn normalise_attr(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    normalise_attr_into(value, &mut out);
    out
}

/// [`normalise_attr`] into a reused buffer (cleared first): no allocation
/// per value on hot paths.
pub fn normalise_attr_into(value: &str, out: &mut String) {
    out.clear();
    for c in value.chars() {
        let c = match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            c => c,
        };
        if c.is_whitespace() || c == '\u{FEFF}' || c == '\u{200B}' {
            continue;
        }
        let c = match c {
            '\u{30FB}' | '\u{2022}' | '\u{2027}' | '\u{FF65}' => '\u{00B7}',
            c => c.to_ascii_uppercase(),
        };
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::date::Date;
    use crate::id::normalise;

    #[test]
    fn epochs_and_groups_give_unlinkable_tokens() {
        let m = GroupMasterKey([5; 32]);
        let id = normalise("11010519491231002X", Date::new(2026, 1, 1).unwrap()).unwrap();
        let a = m.epoch_key("registration", 1).id_token(&id);
        assert_eq!(a, m.epoch_key("registration", 1).id_token(&id));
        assert_ne!(a, m.epoch_key("registration", 2).id_token(&id));
        assert_ne!(a, m.epoch_key("other", 1).id_token(&id));
    }

    #[test]
    fn attr_values_normalise() {
        assert_eq!(normalise_attr(" 张　三 "), "张三");
        assert_eq!(normalise_attr("阿卜杜拉・买买提"), "阿卜杜拉·买买提");
        assert_eq!(normalise_attr("ｊｏｈｎ smith"), "JOHNSMITH");
        assert!(AttrField::new("name").is_ok());
        assert!(AttrField::new("name1").is_err());
        assert!(AttrField::new("").is_err());
    }
}
