//! Decodes arbitrary bytes as an agreement transcript (`Vec<Signed<Step>>`,
//! a `.dxt` file of a bundle and what `Transcripts` carries) and replays
//! it, then asks the state what a node asks: status, agreement id, the
//! epoch and pull window at any time. Must never panic.

#![no_main]

use dxmesh_protocol::agreement::{Negotiation, Step, reconcile};
use dxmesh_protocol::codec::{decode, encode};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(steps) = decode::<Vec<Signed<Step>>>(data) else {
        return;
    };
    assert_eq!(
        decode::<Vec<Signed<Step>>>(&encode(&steps).unwrap()).as_ref(),
        Ok(&steps)
    );
    let _ = format!("{steps:?}");
    let Ok(n) = Negotiation::replay(&steps) else {
        return;
    };
    let _ = reconcile(&steps[..1], &steps);
    for now in [0, 1_796_083_200, u64::MAX] {
        let _ = n.status(Timestamp(now), false).to_string();
        if let Some(epoch) = n.terms.cycle.epoch_at(Timestamp(now)) {
            let _ = n.terms.cycle.window(epoch);
        }
    }
    let _ = (n.agreement_id(), n.terms.id(), format!("{n:?}"));
});
