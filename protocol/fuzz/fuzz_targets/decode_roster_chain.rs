//! Decodes arbitrary bytes as a roster chain (`Vec<Signed<Roster>>`, what
//! `RosterPush` and `Roster` carry) and as one signed roster file, accepts
//! them against a fixed anchor key, and asks an accepted roster about every
//! member. Must never panic; only anchor-signed rosters are accepted.

#![no_main]

use dxmesh_protocol::codec::decode;
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::roster::{Roster, accept_chain};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let anchor = Identity::from_seed([1; 32]).expect("a seed").public();
    let chain = match decode::<Vec<Signed<Roster>>>(data) {
        Ok(chain) => chain,
        Err(_) => match decode::<Signed<Roster>>(data) {
            Ok(one) => vec![one],
            Err(_) => return,
        },
    };
    let _ = format!("{chain:?}");
    let Ok(r) = accept_chain(None, &chain, &anchor) else {
        return;
    };
    assert!(chain.iter().all(|s| s.signer() == &anchor));
    for m in &r.members {
        for now in [m.valid_from, m.valid_until, Timestamp(u64::MAX)] {
            let _ = r.admission(&m.public_key, now).to_string();
        }
        let _ = format!("{m:?} {} {}", m.valid_from, m.valid_until.date());
    }
});
