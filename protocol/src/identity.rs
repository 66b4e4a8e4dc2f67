//! Node identities and public keys.
//!
//! A node identity is one 32-byte Ed25519 seed. From it come both the ring
//! signing key dxmesh signs with and the libp2p keypair (and so the `PeerId`)
//! the node is known by on the mesh; the two produce identical signatures.
//! Seeds are stored as PKCS#8 PEM (RFC 8410), public keys exported as
//! SubjectPublicKeyInfo PEM, so `openssl` can read both. This module does no
//! I/O: callers read and write the files and supply randomness.

use crate::display::hex;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use libp2p_identity::PeerId;
use ring::rand::SecureRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use std::fmt;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), before the 32 key bytes.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// DER prefix of an Ed25519 PKCS#8 v1 private key (RFC 8410), before the 32 seed bytes.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Why a key could not be read or a signature did not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum KeyError {
    /// The PEM text has no block with the expected label.
    #[error("no PEM block labelled {expected:?}")]
    PemLabel {
        /// The label looked for.
        expected: &'static str,
    },
    /// The PEM body is not valid base64.
    #[error("PEM body is not valid base64")]
    PemBase64,
    /// The DER inside is not an Ed25519 key of the expected kind.
    #[error("not an Ed25519 {0} (wrong DER structure or length)")]
    NotEd25519(&'static str),
    /// The signature does not verify under this key.
    #[error("signature does not verify")]
    BadSignature,
    /// Randomness could not be obtained.
    #[error("the system random source failed")]
    Random,
    /// The seed was rejected by the signing library.
    #[error("seed rejected by the Ed25519 implementation")]
    BadSeed,
}

/// An Ed25519 public key: the stable name of a node in signed structures.
///
/// Always a valid curve point: construction and decoding refuse the byte
/// strings that are not (about half of all 32-byte strings), so every key
/// has a `PeerId` and formatting one can never fail.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PublicKey([u8; 32]);

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = <[u8; 32]>::deserialize(d)?;
        PublicKey::from_bytes(bytes).map_err(serde::de::Error::custom)
    }
}

impl PublicKey {
    /// The key with these bytes, if they are a valid Ed25519 point.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<PublicKey, KeyError> {
        if points::known(&bytes) {
            return Ok(PublicKey(bytes));
        }
        libp2p_identity::ed25519::PublicKey::try_from_bytes(&bytes)
            .map_err(|_| KeyError::NotEd25519("public key (not a curve point)"))?;
        points::remember(bytes);
        Ok(PublicKey(bytes))
    }

    /// The 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The libp2p `PeerId` of the node holding this key.
    pub fn peer_id(&self) -> PeerId {
        self.to_libp2p().to_peer_id()
    }

    /// This key as a libp2p public key.
    pub fn to_libp2p(&self) -> libp2p_identity::PublicKey {
        let ed = libp2p_identity::ed25519::PublicKey::try_from_bytes(&self.0)
            .expect("a PublicKey is always a valid point (checked at construction)");
        libp2p_identity::PublicKey::from(ed)
    }

    /// Recovers the public key embedded in an Ed25519 `PeerId`, if it is one.
    pub fn from_peer_id(peer: &PeerId) -> Option<PublicKey> {
        let mh = multihash_digest_if_identity(peer)?;
        let pk = libp2p_identity::PublicKey::try_decode_protobuf(&mh).ok()?;
        let ed = pk.try_into_ed25519().ok()?;
        Some(PublicKey(ed.to_bytes()))
    }

    /// Verifies `signature` over `message` (the exact bytes signed).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, signature)
            .map_err(|_| KeyError::BadSignature)
    }

    /// SubjectPublicKeyInfo DER.
    pub fn to_spki_der(&self) -> Vec<u8> {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.0);
        der
    }

    /// PEM (`-----BEGIN PUBLIC KEY-----`), readable by `openssl pkey -pubin`.
    pub fn to_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.to_spki_der())
    }

    /// Parses the PEM written by [`PublicKey::to_pem`] (or by openssl).
    pub fn from_pem(text: &str) -> Result<PublicKey, KeyError> {
        let der = pem_decode(text, "PUBLIC KEY")?;
        match der.strip_prefix(&SPKI_PREFIX[..]) {
            Some(key) if key.len() == 32 => {
                let mut k = [0u8; 32];
                k.copy_from_slice(key);
                PublicKey::from_bytes(k)
            }
            _ => Err(KeyError::NotEd25519("public key")),
        }
    }

    /// Lowercase hex of the 32 key bytes.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.peer_id())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.peer_id())
    }
}

fn multihash_digest_if_identity(peer: &PeerId) -> Option<Vec<u8>> {
    // A PeerId is a multihash: varint code, varint length, digest. Ed25519
    // keys are short enough to be inlined with the identity code (0x00).
    let bytes = peer.to_bytes();
    let (&code, rest) = bytes.split_first()?;
    if code != 0x00 {
        return None;
    }
    let (&len, digest) = rest.split_first()?;
    (usize::from(len) == digest.len()).then(|| digest.to_vec())
}

/// A node's signing identity, made from its 32-byte seed.
pub struct Identity {
    seed: [u8; 32],
    keypair: Ed25519KeyPair,
    public: PublicKey,
}

impl Identity {
    /// The identity for `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Result<Identity, KeyError> {
        let keypair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| KeyError::BadSeed)?;
        let mut pk = [0u8; 32];
        pk.copy_from_slice(keypair.public_key().as_ref());
        Ok(Identity {
            seed,
            keypair,
            public: PublicKey(pk),
        })
    }

    /// A new identity from `rng`.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Identity, KeyError> {
        let mut seed = [0u8; 32];
        rng.fill(&mut seed).map_err(|_| KeyError::Random)?;
        Identity::from_seed(seed)
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The libp2p `PeerId`.
    pub fn peer_id(&self) -> PeerId {
        self.public.peer_id()
    }

    /// The seed (secret). Only the key file writer should need this.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The libp2p keypair derived from the same seed.
    pub fn to_libp2p_keypair(&self) -> libp2p_identity::Keypair {
        libp2p_identity::Keypair::ed25519_from_bytes(self.seed)
            .expect("a 32-byte seed is always a valid ed25519 secret key")
    }

    /// Signs the exact bytes `message` (no domain tag: see [`crate::signed`]).
    pub fn sign_raw(&self, message: &[u8]) -> [u8; 64] {
        let mut sig = [0u8; 64];
        sig.copy_from_slice(self.keypair.sign(message).as_ref());
        sig
    }

    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) of the seed, readable by openssl.
    pub fn to_pkcs8_pem(&self) -> String {
        let mut der = PKCS8_PREFIX.to_vec();
        der.extend_from_slice(&self.seed);
        pem_encode("PRIVATE KEY", &der)
    }

    /// Parses the PEM written by [`Identity::to_pkcs8_pem`] (or `openssl genpkey -algorithm ed25519`).
    pub fn from_pkcs8_pem(text: &str) -> Result<Identity, KeyError> {
        let der = pem_decode(text, "PRIVATE KEY")?;
        match der.strip_prefix(&PKCS8_PREFIX[..]) {
            Some(seed) if seed.len() == 32 => {
                let mut s = [0u8; 32];
                s.copy_from_slice(seed);
                Identity::from_seed(s)
            }
            _ => Err(KeyError::NotEd25519("PKCS#8 private key")),
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("peer_id", &self.peer_id())
            .finish_non_exhaustive()
    }
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_decode(text: &str, label: &'static str) -> Result<Vec<u8>, KeyError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text
        .find(&begin)
        .ok_or(KeyError::PemLabel { expected: label })?
        + begin.len();
    let stop = text[start..]
        .find(&end)
        .ok_or(KeyError::PemLabel { expected: label })?
        + start;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    B64.decode(body).map_err(|_| KeyError::PemBase64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_and_libp2p_sign_identically_and_share_the_peer_id() {
        for i in 0..8u8 {
            let id = Identity::from_seed([i.wrapping_mul(37); 32]).unwrap();
            let kp = id.to_libp2p_keypair();
            assert_eq!(kp.public().to_peer_id(), id.peer_id());
            let msg = b"dxmesh identical signatures";
            assert_eq!(kp.sign(msg).unwrap(), id.sign_raw(msg).to_vec());
            assert_eq!(PublicKey::from_peer_id(&id.peer_id()), Some(id.public()));
        }
    }

    #[test]
    fn pem_round_trips_and_rejects_garbage() {
        let id = Identity::from_seed([7; 32]).unwrap();
        let pem = id.public().to_pem();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert_eq!(PublicKey::from_pem(&pem).unwrap(), id.public());
        let back = Identity::from_pkcs8_pem(&id.to_pkcs8_pem()).unwrap();
        assert_eq!(back.public(), id.public());
        assert_eq!(
            PublicKey::from_pem("nothing here"),
            Err(KeyError::PemLabel {
                expected: "PUBLIC KEY"
            })
        );
        assert_eq!(
            PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----"),
            Err(KeyError::PemBase64)
        );
        assert_eq!(
            PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
            Err(KeyError::NotEd25519("public key"))
        );
    }

    #[test]
    fn verify_refuses_a_wrong_signature() {
        let id = Identity::from_seed([1; 32]).unwrap();
        let mut sig = id.sign_raw(b"m");
        assert_eq!(id.public().verify(b"m", &sig), Ok(()));
        sig[0] ^= 1;
        assert_eq!(id.public().verify(b"m", &sig), Err(KeyError::BadSignature));
    }
}

/// Keys already found to be curve points. Decoding checks every key a
/// message names (a point decompression, the costliest part of decoding a
/// transcript), and messages name the same few keys again and again (a
/// transcript's two parties, the roster's members): each is checked once.
/// Bounded: forgotten wholesale when full.
mod points {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};

    const MAX: usize = 4096;

    fn set() -> &'static Mutex<HashSet<[u8; 32]>> {
        static SET: OnceLock<Mutex<HashSet<[u8; 32]>>> = OnceLock::new();
        SET.get_or_init(|| Mutex::new(HashSet::new()))
    }

    pub(super) fn known(bytes: &[u8; 32]) -> bool {
        set()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(bytes)
    }

    pub(super) fn remember(bytes: [u8; 32]) {
        let mut set = set().lock().unwrap_or_else(|p| p.into_inner());
        if set.len() >= MAX {
            set.clear();
        }
        set.insert(bytes);
    }
}
