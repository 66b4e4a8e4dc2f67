//! Feeds arbitrary UTF-8 to the protocol's text parsers: times
//! (`Timestamp::parse`), dates, cycle periods and durations (as terms
//! files and the command line give them), roles and PEM keys. Must never
//! panic; whatever parses prints as text that parses back to it.

#![no_main]

use dxmesh_protocol::cycle::{Period, format_duration_secs, parse_duration_secs};
use dxmesh_protocol::date::Date;
use dxmesh_protocol::identity::{Identity, PublicKey};
use dxmesh_protocol::roster::Role;
use dxmesh_protocol::time::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = Timestamp::parse(s) {
        assert_eq!(Timestamp::parse(&t.to_string()), Ok(t));
    }
    if let Ok(d) = Date::parse(s) {
        assert_eq!(Date::parse(&d.to_string()), Ok(d));
    }
    if let Ok(p) = Period::parse(s) {
        assert_eq!(Period::parse(&p.to_iso()), Ok(p));
    }
    if let Ok(secs) = parse_duration_secs(s) {
        assert_eq!(parse_duration_secs(&format_duration_secs(secs)), Ok(secs));
    }
    if let Ok(r) = s.parse::<Role>() {
        assert_eq!(r.as_str().parse::<Role>(), Ok(r));
    }
    if let Ok(k) = PublicKey::from_pem(s) {
        assert_eq!(PublicKey::from_pem(&k.to_pem()), Ok(k));
    }
    let _ = Identity::from_pkcs8_pem(s).map(|i| i.public());
});
