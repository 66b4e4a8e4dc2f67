//! [`raw_request`]: a bare libp2p client that sends one control request,
//! for tests that play a misbehaving or foreign member.

use std::path::Path;
use std::time::Duration;

/// Sends one control request to the node at `addr` as the identity in
/// `key_file`, from a bare libp2p client in this process (no dxmesh node
/// logic on our side): how tests play a misbehaving or foreign member.
pub fn raw_request(
    key_file: &Path,
    addr: &str,
    request: dxmesh_protocol::wire::Request,
) -> Result<dxmesh_protocol::wire::Response, String> {
    raw_requests(key_file, addr, vec![request])?
        .pop()
        .ok_or_else(|| "no response".to_string())
}

/// Sends `requests` all at once over one connection, as [`raw_request`]
/// does one; their responses, in the order of the requests.
pub fn raw_requests(
    key_file: &Path,
    addr: &str,
    requests: Vec<dxmesh_protocol::wire::Request>,
) -> Result<Vec<dxmesh_protocol::wire::Response>, String> {
    raw_requests_after(key_file, addr, requests, Duration::ZERO)
}

/// As [`raw_requests`], sent `wait` after the connection is established
/// (a member that connected while admitted and asks later).
pub fn raw_requests_after(
    key_file: &Path,
    addr: &str,
    requests: Vec<dxmesh_protocol::wire::Request>,
    wait: Duration,
) -> Result<Vec<dxmesh_protocol::wire::Response>, String> {
    use futures::StreamExt;
    use libp2p::request_response::{Event, Message};
    use libp2p::swarm::SwarmEvent;
    use std::collections::HashMap;
    let (identity, ma, peer) = member_client(key_file, addr)?;
    runtime()?.block_on(async move {
        let mut swarm = dial(&identity, ma, peer)?;
        let total = requests.len();
        let mut requests = Some(requests);
        let mut order = HashMap::new();
        let mut responses: Vec<Option<dxmesh_protocol::wire::Response>> = vec![None; total];
        let mut answered = 0;
        let deadline = tokio::time::sleep(Duration::from_secs(20) + wait);
        tokio::pin!(deadline);
        let send_at = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(send_at);
        loop {
            tokio::select! {
                _ = &mut deadline => return Err("timed out".to_string()),
                _ = &mut send_at, if requests.is_some() => {
                    for (i, r) in requests.take().into_iter().flatten().enumerate() {
                        order.insert(swarm.behaviour_mut().control.send_request(&peer, r.into()), i);
                    }
                }
                ev = swarm.select_next_some() => match ev {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == peer => {
                        send_at.as_mut().reset(tokio::time::Instant::now() + wait);
                    }
                    SwarmEvent::Behaviour(dxmesh_node::daemon::net::BehaviourEvent::Control(Event::Message {
                        message: Message::Response { response, request_id }, ..
                    })) => {
                        let i = order.get(&request_id).copied().ok_or("an unknown response")?;
                        responses[i] = Some(response);
                        answered += 1;
                        if answered == total {
                            return Ok(responses.into_iter().flatten().collect());
                        }
                    }
                    SwarmEvent::Behaviour(dxmesh_node::daemon::net::BehaviourEvent::Control(Event::OutboundFailure { error, .. })) => {
                        return Err(format!("request failed: {error}"));
                    }
                    SwarmEvent::OutgoingConnectionError { error, .. } => return Err(format!("cannot connect: {error}")),
                    SwarmEvent::ConnectionClosed { peer_id, .. } if peer_id == peer && requests.is_none() => {
                        return Err("the node closed the connection".to_string());
                    }
                    _ => {}
                },
            }
        }
    })
}

/// The identity in `key_file`, the node's address `addr` and its PeerId
/// (from the address's `/p2p/`): what a bare client needs to dial a node.
pub(crate) fn member_client(
    key_file: &Path,
    addr: &str,
) -> Result<
    (
        dxmesh_protocol::identity::Identity,
        libp2p::Multiaddr,
        libp2p::PeerId,
    ),
    String,
> {
    let identity =
        dxmesh_node::base::keyfile::read_identity(key_file).map_err(|e| e.to_string())?;
    let ma: libp2p::Multiaddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let peer = ma
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::P2p(p) => Some(p),
            _ => None,
        })
        .ok_or("the address has no /p2p/")?;
    Ok((identity, ma, peer))
}

/// A runtime for one bare client.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// A bare client's swarm as `identity`, dialling `peer` at `ma` (call
/// inside the runtime).
pub(crate) fn dial(
    identity: &dxmesh_protocol::identity::Identity,
    ma: libp2p::Multiaddr,
    peer: libp2p::PeerId,
) -> Result<libp2p::Swarm<dxmesh_node::daemon::net::Behaviour>, String> {
    let mut swarm = dxmesh_node::daemon::net::build_swarm(identity).map_err(|e| e.to_string())?;
    swarm.behaviour_mut().allow.allow_peer(peer);
    swarm.dial(ma).map_err(|e| e.to_string())?;
    Ok(swarm)
}
