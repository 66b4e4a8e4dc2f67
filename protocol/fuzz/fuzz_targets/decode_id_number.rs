//! Decodes arbitrary bytes as an `IdNumber` (the wire form, which decoding
//! re-validates). Must never panic; whatever decodes is a valid, normalised
//! number whose accessors work.

#![no_main]

use dxmesh_protocol::codec::{decode, encode};
use dxmesh_protocol::date::Date;
use dxmesh_protocol::id::{IdNumber, normalise};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(id) = decode::<IdNumber>(data) else {
        return;
    };
    let latest = Date::new(9999, 12, 31).expect("a real date");
    assert_eq!(normalise(id.as_str(), latest), Ok(id));
    assert_eq!(decode::<IdNumber>(&encode(&id).unwrap()), Ok(id));
    let _ = (
        id.birth_date(),
        id.gender(),
        id.sequence(),
        id.region_code(),
    );
});
