//! Decodes arbitrary bytes as the audit records of an evidence bundle: an
//! `audit::Entry` (one frame of `entries.bin`) and the signed
//! `BundleIndex` (`index.bin`), and uses them as `dxmesh audit verify`
//! does: leaf hash, event kind, times, signature. Must never panic;
//! whatever decodes re-encodes to the same value.

#![no_main]

use dxmesh_protocol::audit::{BundleIndex, Entry};
use dxmesh_protocol::codec::{decode, encode};
use dxmesh_protocol::signed::Signed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = decode::<Entry>(data) {
        assert_eq!(decode::<Entry>(&encode(&e).unwrap()).as_ref(), Ok(&e));
        let _ = (
            e.leaf_hash(),
            e.event.kind(),
            e.at.to_string(),
            format!("{e:?}"),
        );
    }
    if let Ok(s) = decode::<Signed<BundleIndex>>(data) {
        let _ = format!("{s:?}");
        if let Ok(index) = s.verify() {
            let _ = format!("{index:?} {}", index.exported_at);
        }
    }
});
