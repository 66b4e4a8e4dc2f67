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

/// Frames control messages: 4-byte big-endian length, then the canonical encoding.
#[derive(Debug, Clone, Default)]
pub struct ControlCodec;

async fn read_frame<T, M>(io: &mut T) -> io::Result<M>
where
    T: AsyncRead + Unpin + Send,
    M: serde::de::DeserializeOwned,
{
    let mut header = [0u8; 4];
    io.read_exact(&mut header).await?;
    let len = wire::frame_len(header, MAX_CONTROL_FRAME)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    // Read as the bytes arrive: memory follows what the peer has sent, not
    // what its header announces (a peer that announces 15 MiB and stops
    // short holds only what it sent).
    let mut body = Vec::new();
    (&mut *io).take(len as u64).read_to_end(&mut body).await?;
    if body.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("a frame of {len} bytes ended after {}", body.len()),
        ));
    }
    codec::decode(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

async fn write_frame<T, M>(io: &mut T, msg: &M) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
    M: serde::Serialize,
{
    let frame = wire::encode_frame(msg, MAX_CONTROL_FRAME)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    io.write_all(&frame).await?;
    io.flush().await
}

impl request_response::Codec for ControlCodec {
    type Protocol = StreamProtocol;
    type Request = Request;
    type Response = Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req).await
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
        write_frame(io, &res).await
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
            yamux::Config::default,
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

    #[tokio::test]
    async fn oversized_frames_are_refused_from_the_header_alone() {
        // A header announcing 1 GiB, followed by only 3 bytes: the reader must
        // fail on the header, not try to read (or allocate) the body.
        let mut bytes = (1u32 << 30).to_be_bytes().to_vec();
        bytes.extend_from_slice(&[1, 2, 3]);
        let mut io = Cursor::new(bytes);
        let err = read_frame::<_, Request>(&mut io).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("exceeds the limit"), "{err}");
        assert_eq!(io.position(), 4, "only the header was read");
    }

    #[tokio::test]
    async fn frames_round_trip() {
        let mut io = Cursor::new(Vec::new());
        write_frame(&mut io, &Request::Peers).await.unwrap();
        io.set_position(0);
        assert_eq!(
            read_frame::<_, Request>(&mut io).await.unwrap(),
            Request::Peers
        );
    }
}
