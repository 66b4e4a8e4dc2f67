//! Feeds arbitrary UTF-8 to `id::normalise`. Must never panic; whatever it
//! accepts is a valid 18-character number that normalises to itself with no
//! fixes (idempotence), with the right check character.

#![no_main]

use dxmesh_protocol::date::Date;
use dxmesh_protocol::id::{Fixes, check_character, normalise, normalise_with_fixes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let reference = Date::new(2026, 11, 27).expect("a real date");
    match normalise(raw, reference) {
        Ok(id) => {
            assert_eq!(
                normalise_with_fixes(id.as_str(), reference),
                Ok((id, Fixes::default()))
            );
            let bytes = id.as_bytes();
            assert_eq!(check_character(&bytes[..17]), bytes[17]);
            assert!(id.birth_date() <= reference);
        }
        Err(e) => {
            let _ = (e.code(), e.to_string());
        }
    }
});
