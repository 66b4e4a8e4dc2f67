//! Interoperability with the `openssl` command line, as a security officer
//! would use it (`docs/protocol.md`): a `Signed<Manifest>` signature verifies
//! with `openssl pkeyutl -verify -rawin` over `Signed::signing_input()` and the
//! exported public key PEM, and stops verifying when one byte of the message
//! changes; `openssl pkey -pubout` derives from `Identity::to_pkcs8_pem()` the
//! same PEM as `PublicKey::to_pem()`; openssl signs the signing input with the
//! same (deterministic Ed25519) signature; and a key made by `openssl genpkey`
//! reads back. Skipped, with a message, when `openssl` is not on PATH.

use dxmesh_protocol::date::Date;
use dxmesh_protocol::feed::{Manifest, Quality};
use dxmesh_protocol::identity::{Identity, PublicKey};
use dxmesh_protocol::merkle::{self, leaf_hash};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;
use dxmesh_protocol::token::IdToken;
use std::path::Path;
use std::process::{Command, Output};

/// Whether `openssl` can be run at all.
fn have_openssl() -> bool {
    match Command::new("openssl").arg("version").output() {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            eprintln!(
                "skipping openssl interop: `openssl version` failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            false
        }
        Err(e) => {
            eprintln!("skipping openssl interop: openssl is not on PATH ({e})");
            false
        }
    }
}

/// Runs `openssl args...` in `dir`.
fn openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs")
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn verify_with_openssl(dir: &Path) -> Output {
    openssl(
        dir,
        &[
            "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "msg.bin",
            "-sigfile", "sig.bin",
        ],
    )
}

fn signed_manifest(identity: &Identity) -> Signed<Manifest> {
    let chunk_hashes = vec![leaf_hash(b"dxmesh openssl interop")];
    let manifest = Manifest {
        provider: identity.public(),
        agreement: [0x11; 32],
        consumer: identity.public(),
        dataset: "registry".into(),
        epoch: 3,
        reference_date: Date::new(2026, 12, 1).unwrap(),
        schema: Vec::new(),
        records: 1_000_003,
        root: merkle::root(&chunk_hashes),
        chunk_hashes,
        first_tokens: vec![IdToken([0; 16])],
        quality: Quality::default(),
        created_at: Timestamp(1_796_083_200),
        previous: None,
    };
    Signed::sign(identity, &manifest).expect("a manifest encodes")
}

#[test]
fn openssl_verifies_signed_manifests() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let identity = Identity::from_seed([0x5A; 32]).unwrap();
    let signed = signed_manifest(&identity);
    assert_eq!(signed.signer(), &identity.public());
    let msg = signed.signing_input();
    assert!(msg.starts_with(b"dxmesh/feed-manifest/v1\0"));
    std::fs::write(dir.path().join("pub.pem"), identity.public().to_pem()).unwrap();
    std::fs::write(dir.path().join("msg.bin"), &msg).unwrap();
    std::fs::write(dir.path().join("sig.bin"), signed.signature().0).unwrap();

    let out = verify_with_openssl(dir.path());
    assert!(
        out.status.success(),
        "openssl refused a good signature:\n{}",
        describe(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Signature Verified Successfully"),
        "{}",
        describe(&out)
    );

    // One changed byte of the message (in the body, after the tag).
    let mut bad = msg.clone();
    let at = msg.len() - 5;
    bad[at] ^= 0x01;
    std::fs::write(dir.path().join("msg.bin"), &bad).unwrap();
    let out = verify_with_openssl(dir.path());
    assert!(
        !out.status.success(),
        "openssl accepted a changed message:\n{}",
        describe(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Signature Verification Failure"),
        "openssl failed for another reason than the signature:\n{}",
        describe(&out)
    );

    // A changed byte of the tag is refused too.
    let mut bad = msg.clone();
    bad[0] ^= 0x20;
    std::fs::write(dir.path().join("msg.bin"), &bad).unwrap();
    let out = verify_with_openssl(dir.path());
    assert!(!out.status.success(), "{}", describe(&out));
}

#[test]
fn openssl_derives_the_same_public_key_pem() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for seed in [[0u8; 32], [0x5A; 32], [0xFF; 32]] {
        let identity = Identity::from_seed(seed).unwrap();
        std::fs::write(dir.path().join("seed.pem"), identity.to_pkcs8_pem()).unwrap();
        let out = openssl(dir.path(), &["pkey", "-in", "seed.pem", "-pubout"]);
        assert!(out.status.success(), "{}", describe(&out));
        let pem = String::from_utf8(out.stdout).unwrap();
        assert_eq!(pem, identity.public().to_pem());
        assert_eq!(PublicKey::from_pem(&pem).unwrap(), identity.public());
    }
}

#[test]
fn openssl_signs_the_signing_input_identically() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let identity = Identity::from_seed([0x5A; 32]).unwrap();
    let signed = signed_manifest(&identity);
    std::fs::write(dir.path().join("seed.pem"), identity.to_pkcs8_pem()).unwrap();
    std::fs::write(dir.path().join("msg.bin"), signed.signing_input()).unwrap();
    let out = openssl(
        dir.path(),
        &[
            "pkeyutl", "-sign", "-inkey", "seed.pem", "-rawin", "-in", "msg.bin", "-out", "sig.bin",
        ],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let sig = std::fs::read(dir.path().join("sig.bin")).unwrap();
    assert_eq!(sig, signed.signature().0, "Ed25519 is deterministic");
}

#[test]
fn keys_generated_by_openssl_read_back() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = openssl(
        dir.path(),
        &["genpkey", "-algorithm", "ed25519", "-out", "gen.pem"],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let text = std::fs::read_to_string(dir.path().join("gen.pem")).unwrap();
    let identity = Identity::from_pkcs8_pem(&text).expect("openssl's PKCS#8 reads back");
    assert_eq!(identity.to_pkcs8_pem(), text, "same PEM both ways");
    let out = openssl(dir.path(), &["pkey", "-in", "gen.pem", "-pubout"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        PublicKey::from_pem(&String::from_utf8(out.stdout).unwrap()).unwrap(),
        identity.public()
    );
}
