//! Decodes arbitrary bytes as a `DisclosureRequest` (with its signed result
//! commitment and multi-leaf proof) and checks the proof against the
//! commitment as a provider would. Must never panic; whatever decodes
//! re-encodes to the same bytes' value.

#![no_main]

use dxmesh_protocol::codec::{decode, encode};
use dxmesh_protocol::commitment::token_leaves;
use dxmesh_protocol::wire::DisclosureRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = decode::<DisclosureRequest>(data) else {
        return;
    };
    assert_eq!(
        decode::<DisclosureRequest>(&encode(&req).unwrap()).as_ref(),
        Ok(&req)
    );
    let Ok(c) = decode::<dxmesh_protocol::commitment::ResultCommitment>(req.commitment.body())
    else {
        return;
    };
    let items: Vec<_> = req
        .indices
        .iter()
        .copied()
        .zip(token_leaves(&req.tokens))
        .collect();
    let _ = req.proof.verify(c.count, &items, &c.root);
});
