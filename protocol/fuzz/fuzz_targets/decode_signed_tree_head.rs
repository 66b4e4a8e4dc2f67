//! Decodes arbitrary bytes as a `Signed<TreeHead>`, then verifies it and
//! formats the outcome the way a node logs a refusal. Must never panic.
//! A forged signature must never verify.
//!
//! Note: formatting a refusal whose signer bytes are not a valid Ed25519
//! point currently panics in `PublicKey`'s `Debug`/`Display` (see the ignored
//! test in `protocol/tests/prop_codec.rs`); this target finds it quickly.

#![no_main]

use dxmesh_protocol::codec::{decode, encode};
use dxmesh_protocol::merkle::TreeHead;
use dxmesh_protocol::signed::Signed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(signed) = decode::<Signed<TreeHead>>(data) else {
        return;
    };
    // Whatever decodes re-encodes to something that decodes to the same value.
    let again = encode(&signed).expect("a decoded Signed encodes");
    assert_eq!(decode::<Signed<TreeHead>>(&again).as_ref(), Ok(&signed));
    match signed.verify() {
        Ok(head) => {
            // Only a real signature gets here: the body is what was signed.
            assert_eq!(decode::<TreeHead>(signed.body()), Ok(head));
        }
        Err(e) => {
            let _ = format!("{e} {e:?}");
        }
    }
});
