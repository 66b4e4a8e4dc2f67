//! `Signed<T>`: a value's canonical bytes, the signer's public key and an
//! Ed25519 signature, with a domain-separation tag per message kind.
//!
//! The signature covers the *signing input*
//! `TAG || 0x00 || canonical bytes of T`, where `TAG` is the kind's ASCII tag
//! (for example `dxmesh/roster/v1`). Tags never contain a NUL byte, so a
//! signature made for one kind never verifies as another. The canonical bytes
//! are kept exactly as signed; decoding happens only after the signature has
//! been checked. A security officer can check any signature with `openssl
//! pkeyutl -verify -rawin` over the signing input (see `docs/protocol.md`).

use crate::codec::{self, CodecError};
use crate::display::hex;
use crate::hash::{Hash, sha256};
use crate::identity::{Identity, KeyError, PublicKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;

/// A kind of signed message: its type and its domain-separation tag.
pub trait SignedKind: Serialize + DeserializeOwned {
    /// ASCII tag naming the kind and its version, without NUL bytes.
    const TAG: &'static str;
}

/// Why a signed value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature does not verify over the signing input.
    #[error("bad signature by {signer} on a {kind} message")]
    BadSignature {
        /// Claimed signer.
        signer: PublicKey,
        /// The message kind's tag.
        kind: &'static str,
    },
    /// Signed by someone other than the key required.
    #[error("{kind} message signed by {actual}, expected {expected}")]
    WrongSigner {
        /// The message kind's tag.
        kind: &'static str,
        /// Key required.
        expected: PublicKey,
        /// Key that signed.
        actual: PublicKey,
    },
    /// The signed bytes are not a valid encoding of the kind.
    #[error("signed {kind} body does not decode: {source}")]
    Body {
        /// The message kind's tag.
        kind: &'static str,
        /// Decoder error.
        source: CodecError,
    },
}

/// An Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex(&self.0))
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(64)?;
        for b in &self.0 {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Signature, A::Error> {
                let mut out = [0u8; 64];
                for (i, b) in out.iter_mut().enumerate() {
                    *b = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(Signature(out))
            }
        }
        d.deserialize_tuple(64, V)
    }
}

/// A value of kind `T`, signed.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Signed<T> {
    body: Vec<u8>,
    signer: PublicKey,
    signature: Signature,
    #[serde(skip)]
    kind: PhantomData<fn() -> T>,
}

impl<T> Clone for Signed<T> {
    fn clone(&self) -> Self {
        Signed {
            body: self.body.clone(),
            signer: self.signer,
            signature: self.signature,
            kind: PhantomData,
        }
    }
}

impl<T> PartialEq for Signed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.body == other.body && self.signer == other.signer && self.signature == other.signature
    }
}
impl<T> Eq for Signed<T> {}

impl<T: SignedKind> fmt::Debug for Signed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed")
            .field("kind", &T::TAG)
            .field("signer", &self.signer)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The bytes a signature of kind `tag` covers: `tag || 0x00 || body`.
pub fn signing_input(tag: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(tag.len() + 1 + body.len());
    m.extend_from_slice(tag.as_bytes());
    m.push(0);
    m.extend_from_slice(body);
    m
}

impl<T: SignedKind> Signed<T> {
    /// Encodes `value` canonically and signs it with `identity`.
    pub fn sign(identity: &Identity, value: &T) -> Result<Signed<T>, CodecError> {
        debug_assert!(!T::TAG.as_bytes().contains(&0));
        let body = codec::encode(value)?;
        let signature = Signature(identity.sign_raw(&signing_input(T::TAG, &body)));
        Ok(Signed {
            body,
            signer: identity.public(),
            signature,
            kind: PhantomData,
        })
    }

    /// Checks the signature under the embedded signer key, then decodes.
    pub fn verify(&self) -> Result<T, SignatureError> {
        self.signer
            .verify(&self.signing_input(), &self.signature.0)
            .map_err(|_: KeyError| SignatureError::BadSignature {
                signer: self.signer,
                kind: T::TAG,
            })?;
        codec::decode(&self.body).map_err(|source| SignatureError::Body {
            kind: T::TAG,
            source,
        })
    }

    /// Like [`Signed::verify`], and also requires the signer to be `expected`.
    pub fn verify_by(&self, expected: &PublicKey) -> Result<T, SignatureError> {
        if &self.signer != expected {
            return Err(SignatureError::WrongSigner {
                kind: T::TAG,
                expected: *expected,
                actual: self.signer,
            });
        }
        self.verify()
    }

    /// The exact bytes the signature covers.
    pub fn signing_input(&self) -> Vec<u8> {
        signing_input(T::TAG, &self.body)
    }

    /// The canonical bytes of the value, as signed.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The signer's public key (not yet verified).
    pub fn signer(&self) -> &PublicKey {
        &self.signer
    }

    /// The signature.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// SHA-256 of the whole encoded signed value: its content address.
    pub fn digest(&self) -> Hash {
        sha256(&codec::encode(self).expect("a Signed always encodes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kind of the tests' own, so that they depend on no message type.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct SampleKind {
        size: u64,
        root: [u8; 32],
    }
    impl SignedKind for SampleKind {
        const TAG: &'static str = "dxmesh/test-sample/v1";
    }

    /// The same layout as `SampleKind` under another tag.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct OtherKind {
        size: u64,
        root: [u8; 32],
    }
    impl SignedKind for OtherKind {
        const TAG: &'static str = "dxmesh/test-other/v1";
    }

    fn sample() -> SampleKind {
        SampleKind {
            size: 5,
            root: [9; 32],
        }
    }

    #[test]
    fn sign_verify_and_round_trip() {
        let id = Identity::from_seed([3; 32]).unwrap();
        let s = Signed::sign(&id, &sample()).unwrap();
        assert_eq!(s.verify().unwrap(), sample());
        assert_eq!(s.verify_by(&id.public()).unwrap(), sample());
        let bytes = codec::encode(&s).unwrap();
        let back: Signed<SampleKind> = codec::decode(&bytes).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.verify().unwrap(), sample());
    }

    #[test]
    fn a_signature_for_one_kind_never_verifies_as_another() {
        // OtherKind has the same layout as SampleKind, so only the tag differs.
        let id = Identity::from_seed([3; 32]).unwrap();
        let s = Signed::sign(&id, &sample()).unwrap();
        let bytes = codec::encode(&s).unwrap();
        let other: Signed<OtherKind> = codec::decode(&bytes).unwrap();
        assert!(matches!(
            other.verify(),
            Err(SignatureError::BadSignature {
                kind: "dxmesh/test-other/v1",
                ..
            })
        ));
    }

    #[test]
    fn wrong_signer_and_flipped_bytes_are_refused() {
        let id = Identity::from_seed([3; 32]).unwrap();
        let other = Identity::from_seed([4; 32]).unwrap();
        let s = Signed::sign(&id, &sample()).unwrap();
        assert!(matches!(
            s.verify_by(&other.public()),
            Err(SignatureError::WrongSigner { .. })
        ));
        let bytes = codec::encode(&s).unwrap();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            if let Ok(t) = codec::decode::<Signed<SampleKind>>(&b) {
                assert!(t.verify().is_err(), "flip at byte {i} went unnoticed");
            }
        }
    }
}
