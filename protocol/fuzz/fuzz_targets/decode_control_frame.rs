//! Reads arbitrary bytes as a control frame (`wire::frame_len`, then the
//! body) and decodes the body as a `Request` and as a `Response`, then uses
//! what decodes as a node would: formats it, replays transcripts, accepts
//! roster chains, checks notes, signatures and proofs, shows refusals.
//! Must never panic; whatever decodes re-encodes to the same value.

#![no_main]

use dxmesh_protocol::agreement::Negotiation;
use dxmesh_protocol::audit::{Checkpoint, verify_cosignature};
use dxmesh_protocol::codec::{decode, encode};
use dxmesh_protocol::commitment::token_leaves;
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::roster::accept_chain;
use dxmesh_protocol::wire::{MAX_CONTROL_FRAME, Request, Response, frame_len};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((header, body)) = data.split_first_chunk::<4>() else {
        return;
    };
    let Ok(len) = frame_len(*header, MAX_CONTROL_FRAME) else {
        return;
    };
    let Some(body) = body.get(..len) else {
        return;
    };
    let key = Identity::from_seed([1; 32]).expect("a seed").public();
    let name = key.peer_id().to_string();
    if let Ok(r) = decode::<Request>(body) {
        assert_eq!(decode::<Request>(&encode(&r).unwrap()).as_ref(), Ok(&r));
        let _ = format!("{r:?}");
        match &r {
            Request::RosterPush { chain } => drop(accept_chain(None, chain, &key)),
            Request::AgreementStep { step } => drop(Negotiation::start(step)),
            Request::GroupKey { transcript, .. } => drop(Negotiation::replay(transcript)),
            Request::Disclose(req) => {
                if let Ok(c) = req.commitment.verify() {
                    let items: Vec<_> = req
                        .indices
                        .iter()
                        .copied()
                        .zip(token_leaves(&req.tokens))
                        .collect();
                    let _ = req.proof.verify(c.count, &items, &c.root);
                }
            }
            Request::MinistryQuery { commitment, .. } => drop(commitment.verify()),
            Request::Witness { note, proof } => {
                let _ = Checkpoint::verify(note, &name, &key);
                if let Some(p) = proof {
                    let _ = p.verify(&[1; 32], &[2; 32]);
                }
            }
            _ => {}
        }
    }
    if let Ok(r) = decode::<Response>(body) {
        assert_eq!(decode::<Response>(&encode(&r).unwrap()).as_ref(), Ok(&r));
        let _ = format!("{r:?}");
        match &r {
            Response::Roster { chain } => drop(accept_chain(None, chain, &key)),
            Response::StepRefused { transcript, .. } => drop(Negotiation::replay(transcript)),
            Response::Transcripts { transcripts } => {
                transcripts
                    .iter()
                    .for_each(|t| drop(Negotiation::replay(t)));
            }
            Response::PullGranted { manifest } => {
                let _ = manifest
                    .verify()
                    .map(|m| (m.check(), m.created_at.to_string()));
            }
            Response::Disclosed { disclosure } => drop(disclosure.verify()),
            Response::Ministry { answer } => drop(answer.verify()),
            Response::Cosigned { line, .. } => {
                let _ = verify_cosignature(line, &name, &key, "origin\n1\nAAAA\n");
            }
            Response::Denied { refusal } => drop((refusal.to_string(), refusal.code())),
            _ => {}
        }
    }
});
