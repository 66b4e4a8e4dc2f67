//! Decodes arbitrary bytes as a `Signed<Manifest>` (what `PullGranted`
//! carries and a bundle keeps), verifies it, checks it and looks up chunk
//! ranges, as a consumer does before any chunk arrives. Must never panic;
//! whatever decodes re-encodes to the same value.

#![no_main]

use dxmesh_protocol::codec::{decode, encode};
use dxmesh_protocol::feed::Manifest;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::token::IdToken;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(signed) = decode::<Signed<Manifest>>(data) else {
        return;
    };
    assert_eq!(
        decode::<Signed<Manifest>>(&encode(&signed).unwrap()).as_ref(),
        Ok(&signed)
    );
    let _ = (format!("{signed:?}"), signed.digest());
    let Ok(m) = signed.verify() else {
        return;
    };
    let _ = format!("{m:?} {}", m.created_at);
    if m.check().is_ok() {
        let _ = m.chunks_for_range(&IdToken([0; 16]), &IdToken([0xFF; 16]));
        let _ = m.verify_chunk(0, data);
    }
});
