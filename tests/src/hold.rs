//! [`hold_streams`]: a hostile member that opens many streams to a node
//! over one connection, writes the same bytes on each (say, a frame header
//! announcing 15 MiB and part of its body) and holds them open, so tests
//! and benchmarks can see what the node keeps and whether it still serves.

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Streams held open by [`hold_streams`].
pub struct HeldStreams {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
    written: Arc<AtomicUsize>,
    ended: Arc<AtomicUsize>,
    /// Connections up now (0 or 1).
    up: Arc<AtomicUsize>,
    /// Connections closed or refused so far.
    down: Arc<AtomicUsize>,
}

impl HeldStreams {
    /// Streams whose bytes were all written.
    pub fn written(&self) -> usize {
        self.written.load(Ordering::SeqCst)
    }

    /// Whether the connection is up (established and not closed).
    pub fn connected(&self) -> bool {
        self.up.load(Ordering::SeqCst) > 0
    }

    /// Waits until the connection is closed or refused (at most
    /// `timeout`); whether it was.
    pub fn wait_down(&self, timeout: Duration) -> bool {
        let until = std::time::Instant::now() + timeout;
        while self.down.load(Ordering::SeqCst) == 0 {
            if std::time::Instant::now() > until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }

    /// Streams the node ended (closed or reset) while we held them.
    pub fn ended(&self) -> usize {
        self.ended.load(Ordering::SeqCst)
    }

    /// Waits until `n` streams are written or ended, or `timeout` passes.
    pub fn wait_settled(&self, n: usize, timeout: Duration) -> bool {
        let until = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < until {
            if self.written() + self.ended() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Closes the connection; the error of the holder, if it failed.
    pub fn release(mut self) -> Result<(), String> {
        self.finish()
    }

    fn finish(&mut self) -> Result<(), String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| "the holder panicked".to_string())?,
            None => Ok(()),
        }
    }
}

impl Drop for HeldStreams {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Opens `streams` streams of `protocol` to the node at `addr` over one
/// connection, as the identity in `key_file`, writes `bytes` on each and
/// holds them open until released, counting those the node ends.
pub fn hold_streams(
    key_file: &Path,
    addr: &str,
    protocol: &'static str,
    streams: usize,
    bytes: Vec<u8>,
) -> Result<HeldStreams, String> {
    let (identity, ma, peer) = crate::raw::member_client(key_file, addr)?;
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let written = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(AtomicUsize::new(0));
    let up = Arc::new(AtomicUsize::new(0));
    let down = Arc::new(AtomicUsize::new(0));
    let (w, e, u, d) = (written.clone(), ended.clone(), up.clone(), down.clone());
    let bytes = Arc::new(bytes);
    let thread = std::thread::spawn(move || {
        crate::raw::runtime()?.block_on(async move {
            let mut swarm = crate::raw::dial(&identity, ma, peer)?;
            let mut control = swarm.behaviour().stream.new_control();
            let mut opened = false;
            loop {
                tokio::select! {
                    _ = &mut stopped => return Ok(()),
                    ev = swarm.select_next_some() => {
                        match &ev {
                            libp2p::swarm::SwarmEvent::ConnectionEstablished { peer_id, .. } if *peer_id == peer => {
                                u.fetch_add(1, Ordering::SeqCst);
                            }
                            libp2p::swarm::SwarmEvent::ConnectionClosed { peer_id, .. } if *peer_id == peer => {
                                u.fetch_sub(1, Ordering::SeqCst);
                                d.fetch_add(1, Ordering::SeqCst);
                            }
                            libp2p::swarm::SwarmEvent::OutgoingConnectionError { .. } => {
                                d.fetch_add(1, Ordering::SeqCst);
                            }
                            _ => {}
                        }
                        if let libp2p::swarm::SwarmEvent::ConnectionEstablished { peer_id, .. } = ev
                            && peer_id == peer
                            && !opened
                        {
                            {
                                opened = true;
                                for _ in 0..streams {
                                    let mut control = control.clone();
                                    let (bytes, w, e) = (bytes.clone(), w.clone(), e.clone());
                                    tokio::spawn(async move {
                                        let Ok(s) = control
                                            .open_stream(peer, libp2p::StreamProtocol::new(protocol))
                                            .await
                                        else {
                                            e.fetch_add(1, Ordering::SeqCst);
                                            return;
                                        };
                                        let (mut reader, mut writer) = s.split();
                                        let mut one = [0u8; 1];
                                        // The node answers nothing to a frame it is still
                                        // reading: a read ends only when the node answers
                                        // (a refusal) or ends the stream, written or not.
                                        let written = {
                                            let write = async {
                                                writer.write_all(&bytes).await?;
                                                writer.flush().await
                                            };
                                            tokio::select! {
                                                r = write => r.is_ok(),
                                                _ = reader.read(&mut one) => false,
                                            }
                                        };
                                        if written {
                                            w.fetch_add(1, Ordering::SeqCst);
                                            let _ = reader.read(&mut one).await;
                                            w.fetch_sub(1, Ordering::SeqCst);
                                        }
                                        e.fetch_add(1, Ordering::SeqCst);
                                    });
                                }
                                control = swarm.behaviour().stream.new_control();
                            }
                        }
                    }
                }
            }
        })
    });
    Ok(HeldStreams {
        stop: Some(stop),
        thread: Some(thread),
        written,
        ended,
        up,
        down,
    })
}

/// Opens one stream of `protocol` to the node at `addr` as the identity in
/// `key_file`, writes `bytes`, closes its side and reads what the node
/// writes until it ends the stream (at most 20 s): how tests send frames
/// no honest node sends (a feed stream under another's pull, a frame over
/// its kind's limit).
pub fn raw_stream(
    key_file: &Path,
    addr: &str,
    protocol: &'static str,
    bytes: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let (identity, ma, peer) = crate::raw::member_client(key_file, addr)?;
    crate::raw::runtime()?.block_on(async move {
        let mut swarm = crate::raw::dial(&identity, ma, peer)?;
        let mut control = swarm.behaviour().stream.new_control();
        let exchange = async move {
            let mut s = control
                .open_stream(peer, libp2p::StreamProtocol::new(protocol))
                .await
                .map_err(|e| e.to_string())?;
            s.write_all(&bytes).await.map_err(|e| e.to_string())?;
            s.close().await.map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            s.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(out)
        };
        tokio::pin!(exchange);
        let deadline = tokio::time::sleep(Duration::from_secs(20));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return Err("timed out".to_string()),
                out = &mut exchange => return out,
                _ = swarm.select_next_some() => {}
            }
        }
    })
}
