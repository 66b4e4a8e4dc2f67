//! [`FakeMember`]: a roster member's key driven by a test instead of a
//! node: it dials a node and answers each control request the node sends
//! it as the test says (falling back to empty answers for the requests
//! every connection brings), so tests can play a dishonest provider that
//! signs whatever it likes.

use dxmesh_protocol::wire::{Request, Response};
use futures::StreamExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// How a fake member answers a request (`None`: the default answer).
pub type Answerer = Box<dyn Fn(&Request) -> Option<Response> + Send>;

/// A fake member connected to a node; stops when dropped.
pub struct FakeMember {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
    connected: Arc<AtomicBool>,
}

impl FakeMember {
    /// Whether it is connected to the node.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }
}

impl Drop for FakeMember {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The answer a fake member gives when its test gives none: nothing to
/// sync, no peers; anything else is left unanswered.
fn default_answer(request: &Request) -> Option<Response> {
    match request {
        Request::RosterSync { .. } => Some(Response::Roster { chain: vec![] }),
        Request::Peers => Some(Response::Peers { peers: vec![] }),
        Request::AgreementSync { .. } => Some(Response::Transcripts {
            transcripts: vec![],
        }),
        _ => None,
    }
}

/// Dials the node at `addr` as the identity in `key_file` and answers its
/// requests with `answer`.
pub fn fake_member(key_file: &Path, addr: &str, answer: Answerer) -> Result<FakeMember, String> {
    use libp2p::request_response::{Event, Message};
    use libp2p::swarm::SwarmEvent;
    let (identity, ma, peer) = crate::raw::member_client(key_file, addr)?;
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let connected = Arc::new(AtomicBool::new(false));
    let up = connected.clone();
    let thread = std::thread::spawn(move || {
        crate::raw::runtime()?.block_on(async move {
            let mut swarm = crate::raw::dial(&identity, ma, peer)?;
            loop {
                tokio::select! {
                    _ = &mut stopped => return Ok(()),
                    ev = swarm.select_next_some() => match ev {
                        SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == peer => {
                            up.store(true, Ordering::SeqCst);
                        }
                        SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } if peer_id == peer => {
                            up.store(false, Ordering::SeqCst);
                        }
                        SwarmEvent::Behaviour(dxmesh_node::daemon::net::BehaviourEvent::Control(
                            Event::Message { message: Message::Request { request, channel, .. }, .. },
                        )) => {
                            let dxmesh_node::daemon::net::Inbound::Request(request, _) = request else {
                                continue;
                            };
                            let response = answer(&request).or_else(|| default_answer(&request));
                            if let Some(response) = response {
                                let _ = swarm.behaviour_mut().control.send_response(channel, response);
                            }
                        }
                        _ => {}
                    },
                }
            }
        })
    });
    Ok(FakeMember {
        stop: Some(stop),
        thread: Some(thread),
        connected,
    })
}
