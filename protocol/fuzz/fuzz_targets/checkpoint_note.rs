//! Feeds arbitrary UTF-8 to the checkpoint note and cosignature parsers
//! (`audit::Checkpoint::verify`, `audit::verify_cosignature`), as a witness
//! reads a peer's note and an auditor a bundle's. Must never panic; a note
//! that verifies under a fixed key was signed by it (only the key's owner
//! can make one, so none verifies), and its body re-parses.

#![no_main]

use dxmesh_protocol::audit::{Checkpoint, verify_cosignature};
use dxmesh_protocol::identity::Identity;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let key = Identity::from_seed([1; 32]).expect("a seed").public();
    let name = key.peer_id().to_string();
    for n in [name.as_str(), "", "witness"] {
        if let Ok(cp) = Checkpoint::verify(text, n, &key) {
            let _ = cp.body();
        }
        let _ = verify_cosignature(text, n, &key, "origin\n1\nAAAA\n");
        if let Some((line, body)) = text.split_once('\n') {
            let _ = verify_cosignature(line, n, &key, body);
        }
    }
});
