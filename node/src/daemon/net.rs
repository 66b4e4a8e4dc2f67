//! The libp2p side of a node: transport (TCP + noise + yamux), the combined
//! network behaviour (admission allow-list, connection limits, identify,
//! ping, control request/response, bulk streams) and the control codec that
//! frames protocol messages, refuses oversized ones from their header and
//! reads a frame's body as it arrives.

use dxmesh_protocol::codec;
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::wire::{self, MAX_CONTROL_FRAME, Request, Response};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{
    StreamProtocol, Swarm, allow_block_list, connection_limits, identify, noise, ping,
    request_response, tcp, yamux,
};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The identify protocol version string dxmesh nodes announce.
pub const IDENTIFY_PROTOCOL: &str = "/dxmesh/id/1";
/// Connections one member may hold to a node (two members dialling each
/// other at once hold two; more is a misbehaving member).
pub const MAX_CONNECTIONS_PER_PEER: u32 = 4;
/// Incoming connections still in their handshake, from anyone, at a time.
pub const MAX_PENDING_INCOMING: u32 = 64;

pub use behaviour::{Behaviour, BehaviourEvent};

mod behaviour {
    // The derive generates an undocumented event enum.
    #![allow(missing_docs)]
    use super::ControlCodec;
    use libp2p::swarm::NetworkBehaviour;
    use libp2p::{allow_block_list, connection_limits, identify, ping, request_response};

    /// The combined behaviour of a dxmesh node.
    #[derive(NetworkBehaviour)]
    pub struct Behaviour {
        /// Admission: only current, unrevoked roster members may connect.
        pub allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
        /// At most [`super::MAX_CONNECTIONS_PER_PEER`] connections per
        /// member and [`super::MAX_PENDING_INCOMING`] handshakes at a time.
        pub limits: connection_limits::Behaviour,
        /// Learns peers' listen addresses and agent versions.
        pub identify: identify::Behaviour,
        /// Liveness.
        pub ping: ping::Behaviour,
        /// Control request/response (`/dxmesh/control/1`).
        pub control: request_response::Behaviour<ControlCodec>,
        /// Bulk one-directional streams (feeds; later protocols).
        pub stream: libp2p_stream::Behaviour,
    }
}

/// The control frame bodies one connection may be reading at once, in
/// bytes: two of the largest frames. With [`MAX_CONNECTIONS_PER_PEER`] this
/// bounds what one member's frames in flight hold at 128 MiB.
pub const CONNECTION_INBOUND_BUDGET: usize = 2 * MAX_CONTROL_FRAME + 2 * 1024 * 1024;
/// Streams one connection may hold open at once (yamux), control and bulk.
pub const MAX_STREAMS_PER_CONNECTION: usize = 128;

/// Frames control messages: 4-byte big-endian length, then the canonical
/// encoding, whose first byte names the message's kind. A reader refuses a
/// frame over [`MAX_CONTROL_FRAME`] or over its kind's limit
/// ([`wire::REQUEST_KINDS`], [`wire::RESPONSE_KINDS`]) from its first five
/// bytes, then reserves the body's length from its connection's inbound
/// budget ([`CONNECTION_INBOUND_BUDGET`]), refusing the frame if the
/// connection's other frames hold too much of it, and reads the body as it
/// arrives.
///
/// The budget is per connection: libp2p-request-response clones the
/// behaviour's codec once for each connection and that clone once for each
/// stream, so a clone of a codec without a budget starts a new budget and a
/// clone of one with a budget shares it.
#[derive(Debug, Default)]
pub struct ControlCodec {
    budget: Option<Arc<Budget>>,
}

impl Clone for ControlCodec {
    fn clone(&self) -> Self {
        ControlCodec {
            budget: Some(
                self.budget
                    .clone()
                    .unwrap_or_else(|| Arc::new(Budget::new(CONNECTION_INBOUND_BUDGET))),
            ),
        }
    }
}

impl ControlCodec {
    fn budget(&mut self) -> Arc<Budget> {
        self.budget
            .get_or_insert_with(|| Arc::new(Budget::new(CONNECTION_INBOUND_BUDGET)))
            .clone()
    }
}

/// Bytes a connection's frames in flight may still hold.
#[derive(Debug)]
pub struct Budget {
    left: Mutex<usize>,
}

impl Budget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Budget {
        Budget {
            left: Mutex::new(bytes),
        }
    }

    /// Reserves `bytes` until the reservation is dropped, if that many are left.
    pub fn reserve(self: &Arc<Self>, bytes: usize) -> Option<Reserved> {
        let mut left = self.left.lock().unwrap_or_else(|p| p.into_inner());
        *left = left.checked_sub(bytes)?;
        Some(Reserved {
            budget: self.clone(),
            bytes,
        })
    }

    /// Bytes left.
    pub fn left(&self) -> usize {
        *self.left.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Bytes reserved from a [`Budget`], given back when dropped.
#[derive(Debug)]
pub struct Reserved {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Drop for Reserved {
    fn drop(&mut self) {
        let mut left = self.budget.left.lock().unwrap_or_else(|p| p.into_inner());
        *left += self.bytes;
    }
}

/// Reads one frame: `Err` if the stream failed, `Ok(Err(why))` if the
/// frame was refused (over a limit or the budget, or not a message; the
/// rest of its body is left unread), else the message and its reservation
/// of the connection's budget (held until the message is dealt with).
async fn read_frame<T, M>(
    io: &mut T,
    kinds: &[wire::Kind],
    budget: &Arc<Budget>,
) -> io::Result<Result<(M, Reserved), String>>
where
    T: AsyncRead + Unpin + Send,
    M: serde::de::DeserializeOwned,
{
    let mut header = [0u8; 4];
    io.read_exact(&mut header).await?;
    let len = match wire::frame_len(header, MAX_CONTROL_FRAME) {
        Ok(len) => len,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let mut first = [0u8; 1];
    if len > 0 {
        io.read_exact(&mut first).await?;
    }
    let kind = match wire::frame_kind(kinds, first[0], len) {
        Ok(kind) => kind,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let Some(reserved) = budget.reserve(len) else {
        return Ok(Err(format!(
            "a {} frame of {len} bytes is over the connection's inbound budget \
             ({} of {CONNECTION_INBOUND_BUDGET} bytes left)",
            kind.name,
            budget.left()
        )));
    };
    // Read as the bytes arrive: memory follows what the peer has sent, not
    // what its header announces (a peer that announces 15 MiB and stops
    // short holds only what it sent).
    let mut body = vec![first[0]];
    (&mut *io)
        .take(len.saturating_sub(1) as u64)
        .read_to_end(&mut body)
        .await?;
    if body.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("a frame of {len} bytes ended after {}", body.len()),
        ));
    }
    Ok(codec::decode(&body)
        .map(|m| (m, reserved))
        .map_err(|e| format!("a {} frame: {e}", kind.name)))
}

async fn write_frame<T, M>(io: &mut T, msg: &M, kinds: &[wire::Kind]) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
    M: serde::Serialize,
{
    let frame = wire::encode_frame(msg, MAX_CONTROL_FRAME, kinds)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    io.write_all(&frame).await?;
    io.flush().await
}

/// A control request as the codec reads it: a message, or a frame it
/// refused before decoding it, with why, so that the node can log the
/// refusal with its peer and answer it (libp2p reports no peer for a
/// request that fails to read).
#[derive(Debug)]
pub enum Inbound {
    /// A request, and the part of its connection's inbound budget it
    /// holds until the node has dealt with it (so requests queued at the
    /// node count against the budget as those being read do).
    Request(Box<Request>, Held),
    /// A refused frame.
    Refused(String),
}

/// A request's hold on its connection's inbound budget, given back when
/// dropped (none for a request this node sends).
#[derive(Debug, Default)]
pub struct Held {
    _reserved: Option<Reserved>,
}

impl From<Request> for Inbound {
    fn from(r: Request) -> Inbound {
        Inbound::Request(Box::new(r), Held::default())
    }
}

impl request_response::Codec for ControlCodec {
    type Protocol = StreamProtocol;
    type Request = Inbound;
    type Response = Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Inbound>
    where
        T: AsyncRead + Unpin + Send,
    {
        let read = read_frame(io, &wire::REQUEST_KINDS, &self.budget()).await?;
        Ok(read.map_or_else(Inbound::Refused, |(r, held)| {
            Inbound::Request(
                Box::new(r),
                Held {
                    _reserved: Some(held),
                },
            )
        }))
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, &wire::RESPONSE_KINDS, &self.budget())
            .await?
            .map(|(response, _)| response)
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Inbound,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match req {
            Inbound::Request(req, _) => write_frame(io, &req, &wire::REQUEST_KINDS).await,
            Inbound::Refused(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a refused frame is not sent",
            )),
        }
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res, &wire::RESPONSE_KINDS).await
    }
}

/// Why the swarm could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the libp2p transport: {0}")]
pub struct BuildError(String);

impl BuildError {
    /// A build error with this message.
    pub fn new(message: String) -> BuildError {
        BuildError(message)
    }
}

/// Builds the swarm for `identity`: TCP + noise + yamux on tokio.
pub fn build_swarm(identity: &Identity) -> Result<Swarm<Behaviour>, BuildError> {
    let keypair = identity.to_libp2p_keypair();
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            || {
                let mut c = yamux::Config::default();
                c.set_max_num_streams(MAX_STREAMS_PER_CONNECTION);
                c
            },
        )
        .map_err(|e| BuildError(e.to_string()))?
        .with_behaviour(|key| Behaviour {
            allow: allow_block_list::Behaviour::default(),
            limits: connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
                    .with_max_pending_incoming(Some(MAX_PENDING_INCOMING)),
            ),
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.to_string(), key.public())
                    .with_agent_version(format!("dxmesh/{}", env!("CARGO_PKG_VERSION"))),
            ),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(15))),
            control: request_response::Behaviour::new(
                [(
                    StreamProtocol::new(wire::CONTROL_PROTOCOL),
                    request_response::ProtocolSupport::Full,
                )],
                request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
            ),
            stream: libp2p_stream::Behaviour::new(),
        })
        .map_err(|e| BuildError(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    Ok(swarm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;

    fn budget() -> Arc<Budget> {
        Arc::new(Budget::new(CONNECTION_INBOUND_BUDGET))
    }

    /// Reads a request frame: the request, why it was refused or how the stream failed.
    async fn read(bytes: Vec<u8>, budget: &Arc<Budget>) -> (Result<Request, String>, u64) {
        let mut io = Cursor::new(bytes);
        let r = read_frame::<_, Request>(&mut io, &wire::REQUEST_KINDS, budget).await;
        let r = r
            .unwrap_or_else(|e| Err(format!("io {:?}: {e}", e.kind())))
            .map(|(request, _)| request);
        (r, io.position())
    }

    #[tokio::test]
    async fn oversized_frames_are_refused_from_the_header_alone() {
        // A header announcing 1 GiB, followed by only 3 bytes: the reader must
        // fail on the header, not try to read (or allocate) the body.
        let mut bytes = (1u32 << 30).to_be_bytes().to_vec();
        bytes.extend_from_slice(&[1, 2, 3]);
        let (r, position) = read(bytes, &budget()).await;
        let err = r.unwrap_err();
        assert!(
            err.starts_with("frame of") && err.contains("exceeds the limit"),
            "{err}"
        );
        assert_eq!(position, 4, "only the header was read");
    }

    #[tokio::test]
    async fn a_frame_over_its_kinds_limit_is_refused_from_its_first_byte() {
        // A `Peers` request (kind 2, at most 1 KiB) announcing 10 MiB.
        let mut bytes = (10u32 << 20).to_be_bytes().to_vec();
        bytes.extend_from_slice(&[2, 0, 0, 0]);
        let (r, position) = read(bytes, &budget()).await;
        let err = r.unwrap_err();
        assert_eq!(
            err,
            "a Peers frame of 10485760 bytes exceeds its limit of 1024 bytes"
        );
        assert_eq!(position, 5, "only the header and the kind were read");
    }

    #[tokio::test]
    async fn a_frame_that_is_not_a_message_is_refused_and_holds_nothing() {
        // A `PullOpen` (kind 5) of 8 bytes that do not decode as one.
        let mut bytes = 8u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[5, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        let budget = budget();
        let (r, _) = read(bytes, &budget).await;
        let err = r.unwrap_err();
        assert!(err.starts_with("a PullOpen frame: "), "{err}");
        assert_eq!(budget.left(), CONNECTION_INBOUND_BUDGET);
    }

    #[tokio::test]
    async fn frames_past_the_connections_budget_are_refused_and_the_budget_comes_back() {
        let budget = Arc::new(Budget::new(MAX_CONTROL_FRAME + 100));
        // Another stream of the connection holds a 15 MiB frame in flight.
        let held = budget.reserve(MAX_CONTROL_FRAME).unwrap();
        let mut disclose = (1000u32).to_be_bytes().to_vec();
        disclose.extend_from_slice(&[6; 10]);
        let (r, position) = read(disclose.clone(), &budget).await;
        let err = r.unwrap_err();
        assert!(
            err.starts_with(
                "a Disclose frame of 1000 bytes is over the connection's inbound budget"
            ),
            "{err}"
        );
        assert_eq!(position, 5);
        drop(held);
        // Once it is read, the same frame is read (and fails only on its body).
        let (r, _) = read(disclose, &budget).await;
        assert!(r.unwrap_err().starts_with("io UnexpectedEof"));
        assert_eq!(
            budget.left(),
            MAX_CONTROL_FRAME + 100,
            "nothing stays reserved"
        );
    }

    #[test]
    fn a_connection_codec_shares_its_budget_and_a_behaviour_codec_starts_one() {
        let behaviour = ControlCodec::default();
        let connection = behaviour.clone();
        let stream = connection.clone();
        let other = behaviour.clone();
        let (a, b, c) = (
            connection.budget.unwrap(),
            stream.budget.unwrap(),
            other.budget.unwrap(),
        );
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }

    #[tokio::test]
    async fn frames_round_trip() {
        let mut io = Cursor::new(Vec::new());
        write_frame(&mut io, &Request::Peers, &wire::REQUEST_KINDS)
            .await
            .unwrap();
        io.set_position(0);
        assert_eq!(
            read(io.into_inner(), &budget()).await.0.unwrap(),
            Request::Peers
        );
    }
}
