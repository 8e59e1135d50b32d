//! The gRPC link (tonic): one `PartyLink` server per party, one client per peer.
//!
//! Messages travel in chunks of at most [`CHUNK`] bytes on one `Messages` stream per peer, held open for the
//! session (a unary call per message cost a new HTTP/2 stream and its headers: a 100-byte round trip took
//! 173-225 us against 136 us on the stream). A `send` returns once its chunks are on the stream, without
//! waiting for the peer; [`Link::flush`] sends a marker chunk the peer acknowledges once it has queued
//! everything before it, so a party flushes before it exits (the session's goodbye does). Waiting for an
//! acknowledgement of every chunk in `send` put a loopback round trip (about 0.1 ms) behind each message, in
//! front of the sender's next step, and an acknowledgement each way per message. A chunk the peer refuses ends
//! the stream with its status: the next `send`, `recv` or `flush` to that peer fails with it. Chunks carry the
//! pair's run session ([`super::session`]): chunks of another task or of another run are refused, so two tasks
//! never mix and a recording is not replayed. Connecting retries with backoff while peers start, up
//! to the link timeout.
//!
//! With [`TlsMaterial`] the link runs over mutual TLS: each party presents its certificate and accepts only
//! peers whose certificate chains to the given CA and names the party they speak for ([`identity`]): a
//! connection's messages must come from the party its client certificate names, and a party dials a peer only
//! if the peer's server certificate names that peer.
//!
//! # Disconnection
//! After connecting, each party holds a `Watch` stream open to every peer; HTTP/2 keep-alive pings run on it.
//! When a peer's process dies the stream ends and the peer is marked departed: receives from it fail with
//! `PeerClosed` once its queued messages are consumed. A peer that never answers fails receives with
//! `Timeout` after the link timeout.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{Mutex as AsyncMutex, oneshot};
use tokio_stream::Stream;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{
    Certificate, Channel as GrpcChannel, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig,
};
use tonic::{Request, Response, Status};

use super::identity;
use super::mailbox::Mailboxes;
use super::session::Runs;
use super::{Limits, Link, LinkError};

/// Generated protobuf and gRPC code.
#[allow(missing_docs, clippy::all, clippy::unwrap_used)]
pub mod pb {
    tonic::include_proto!("secretflow.link.v1");
}

use pb::party_link_client::PartyLinkClient;
use pb::party_link_server::{PartyLink, PartyLinkServer};

/// The tag of a flush's marker chunk: acknowledged, never delivered to a mailbox.
const FLUSH_TAG: &str = "link/flush";

/// Largest chunk pushed in one call.
pub const CHUNK: usize = 4 << 20;
const MAX_MESSAGE: usize = CHUNK + (64 << 10);
/// The largest HTTP/2 frame this party accepts (the peer's chunks come as frames of up to this size): with
/// the 16 KiB default a 4 MiB chunk is 256 frames, each one accounted, buffered and woken for on its own.
const MAX_FRAME: u32 = 1 << 20;
/// HTTP/2 flow-control windows: a whole chunk per stream, a few per connection. With the 64 KiB default the
/// sender of a multi-megabyte MPC message waits for a window update every 64 KiB.
const STREAM_WINDOW: u32 = CHUNK as u32 + (64 << 10);
const CONNECTION_WINDOW: u32 = 4 * STREAM_WINDOW;

/// PEM material for mutual TLS on the link.
#[derive(Clone)]
pub struct TlsMaterial {
    /// This party's certificate chain.
    pub cert_pem: Vec<u8>,
    /// Its private key.
    pub key_pem: Vec<u8>,
    /// The CA that signs every party's certificate.
    pub ca_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsMaterial { .. }")
    }
}

impl TlsMaterial {
    fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert_pem, &self.key_pem)
    }

    fn ca(&self) -> Certificate {
        Certificate::from_pem(&self.ca_pem)
    }
}

/// How to start a party's gRPC link.
#[derive(Clone, Debug)]
pub struct GrpcConfig {
    /// This party.
    pub party: String,
    /// The session id both parties derive from the task.
    pub session: String,
    /// Where this party listens (`host:port`).
    pub listen: String,
    /// Every peer and its address (`host:port`).
    pub peers: Vec<(String, String)>,
    /// Receive and connect timeout.
    pub timeout: Duration,
    /// Mutual TLS, when set.
    pub tls: Option<TlsMaterial>,
    /// What one peer can make this party hold.
    pub limits: Limits,
}

/// A party's gRPC link.
pub struct GrpcLink {
    party: String,
    session: String,
    /// This run's nonce and the sessions peers registered.
    runs: Arc<Runs>,
    boxes: Arc<Mailboxes>,
    peers: HashMap<String, Peer>,
    timeout: Duration,
    shutdown: Option<oneshot::Sender<()>>,
    watchers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    tls: Option<TlsMaterial>,
}

struct Peer {
    address: String,
    outbox: AsyncMutex<Option<Arc<Outbox>>>,
    /// The run session this party sends to the peer under, once the peer's watch answered with its nonce.
    run: std::sync::OnceLock<String>,
}

/// The sending side of one peer's `Messages` stream: chunks go out in order; the acknowledgements of the
/// flush markers among them come back in the same order, each resolving the oldest pending flush.
struct Outbox {
    /// Held while a message's chunks are queued, so the pending list and the stream stay in the same order.
    chunks: AsyncMutex<tokio::sync::mpsc::Sender<pb::Chunk>>,
    acks: Mutex<Acks>,
}

#[derive(Default)]
struct Acks {
    pending: std::collections::VecDeque<oneshot::Sender<Result<(), Status>>>,
    /// Why the stream ended (a refused chunk's status, or the peer gone): later sends fail with it.
    ended: Option<Status>,
}

impl Outbox {
    /// Open the stream on `client` and start the task that matches acknowledgements to pending flushes. When
    /// the stream ends the peer is marked departed in `boxes`, so receives from it fail instead of waiting.
    async fn open(
        peer: &str,
        mut client: PartyLinkClient<GrpcChannel>,
        boxes: Arc<Mailboxes>,
    ) -> Result<Arc<Outbox>, LinkError> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let mut acks = client
            .messages(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .map_err(|s| status_error(peer, "messages", s))?
            .into_inner();
        let outbox = Arc::new(Outbox { chunks: AsyncMutex::new(tx), acks: Mutex::default() });
        let out = outbox.clone();
        let peer = peer.to_string();
        tokio::spawn(async move {
            let ended = loop {
                match acks.message().await {
                    Ok(Some(_)) => {
                        if let Some(p) = out.lock_acks().pending.pop_front() {
                            let _ = p.send(Ok(()));
                        }
                    }
                    Ok(None) => break Status::unavailable("the peer closed the message stream"),
                    Err(status) => break status,
                }
            };
            {
                let mut a = out.lock_acks();
                for p in a.pending.drain(..) {
                    let _ = p.send(Err(ended.clone()));
                }
                a.ended = Some(ended);
            }
            boxes.depart(&peer);
        });
        Ok(outbox)
    }

    fn lock_acks(&self) -> std::sync::MutexGuard<'_, Acks> {
        self.acks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why the stream ended, once it has.
    fn ended(&self) -> Option<Status> {
        self.lock_acks().ended.clone()
    }

    /// Queue `chunks` in order on the stream; a chunk with `ack` set (a flush marker) gets a pending entry that
    /// its acknowledgement resolves. Returns the last such entry.
    async fn send(
        &self,
        peer: &str,
        tag: &str,
        chunks: impl Iterator<Item = pb::Chunk>,
    ) -> Result<Option<oneshot::Receiver<Result<(), Status>>>, LinkError> {
        let tx = self.chunks.lock().await;
        let mut wait = None;
        for chunk in chunks {
            // Room first: from here to the chunk's hand-over nothing awaits, so a send dropped midway (the other
            // half of a failed `try_join!`) cannot leave a pending entry without its chunk, which would shift
            // every later acknowledgement by one.
            let permit =
                tx.reserve().await.map_err(|_| LinkError::PeerClosed { peer: peer.into(), tag: tag.into() })?;
            {
                let mut acks = self.lock_acks();
                if let Some(status) = &acks.ended {
                    return Err(status_error(peer, tag, status.clone()));
                }
                if chunk.ack {
                    let (done, w) = oneshot::channel();
                    acks.pending.push_back(done);
                    wait = Some(w);
                }
            }
            permit.send(chunk);
        }
        Ok(wait)
    }

    /// Queue the flush marker `marker` and wait (at most `timeout`) for its acknowledgement: the peer then
    /// holds every message sent before it.
    async fn flush(&self, peer: &str, marker: pb::Chunk, timeout: Duration) -> Result<(), LinkError> {
        let what = FLUSH_TAG;
        let Some(wait) = self.send(peer, what, std::iter::once(marker)).await? else {
            return Ok(());
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(status))) => Err(status_error(peer, what, status)),
            Ok(Err(_)) => Err(LinkError::PeerClosed { peer: peer.into(), tag: what.into() }),
            Err(_) => Err(LinkError::Timeout { peer: peer.into(), tag: what.into(), secs: timeout.as_secs() }),
        }
    }
}

impl GrpcLink {
    /// Bind the server and prepare clients (connections are made on first use).
    pub async fn start(cfg: GrpcConfig) -> Result<GrpcLink, LinkError> {
        let mut names: Vec<String> = cfg.peers.iter().map(|(p, _)| p.clone()).collect();
        names.push(cfg.party.clone());
        let boxes = Mailboxes::with_limits(&names, cfg.timeout, cfg.limits);
        let addr: SocketAddr =
            tokio::net::lookup_host(&cfg.listen).await.ok().and_then(|mut a| a.next()).ok_or_else(|| {
                LinkError::Transport {
                    peer: cfg.party.clone(),
                    message: format!("cannot resolve listen address {}", cfg.listen),
                }
            })?;
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| LinkError::Transport {
            peer: cfg.party.clone(),
            message: format!("cannot listen on {addr}: {e}"),
        })?;
        let runs = Arc::new(
            Runs::new(&cfg.party, &cfg.session)
                .map_err(|message| LinkError::Transport { peer: cfg.party.clone(), message })?,
        );
        let service = Service(Arc::new(Shared {
            party: cfg.party.clone(),
            runs: runs.clone(),
            tls: cfg.tls.is_some(),
            boxes: boxes.clone(),
            partial: Mutex::default(),
            watches: Mutex::default(),
        }));
        let server =
            PartyLinkServer::new(service).max_decoding_message_size(MAX_MESSAGE).max_encoding_message_size(MAX_MESSAGE);
        let (tx, rx) = oneshot::channel::<()>();
        // Small messages (acknowledgements, openings) must not wait for Nagle's algorithm.
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let mut builder = Server::builder()
            .max_frame_size(MAX_FRAME)
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .http2_keepalive_interval(Some(Duration::from_secs(5)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)));
        match &cfg.tls {
            Some(_) => {
                tracing::info!(party = %cfg.party, "link: mutual TLS, each peer's certificate must name its party")
            }
            None => tracing::warn!(
                party = %cfg.party,
                "link: plaintext gRPC (no --tls-cert, --tls-key, --tls-ca): messages are neither encrypted nor \
                 authenticated"
            ),
        }
        if let Some(t) = &cfg.tls {
            builder =
                builder.tls_config(ServerTlsConfig::new().identity(t.identity()).client_ca_root(t.ca())).map_err(
                    |e| LinkError::Transport { peer: cfg.party.clone(), message: format!("TLS configuration: {e}") },
                )?;
        }
        tokio::spawn(async move {
            let _ = builder
                .add_service(server)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await;
        });
        let peers = cfg
            .peers
            .into_iter()
            .map(|(p, address)| (p, Peer { address, outbox: AsyncMutex::new(None), run: Default::default() }))
            .collect();
        Ok(GrpcLink {
            party: cfg.party,
            session: cfg.session,
            runs,
            boxes,
            peers,
            timeout: cfg.timeout,
            shutdown: Some(tx),
            watchers: Mutex::default(),
            tls: cfg.tls,
        })
    }

    /// The message stream to `peer`, connecting (with backoff, up to the timeout) on first use.
    async fn outbox(&self, peer: &str) -> Result<Arc<Outbox>, LinkError> {
        let p = self.peers.get(peer).ok_or_else(|| LinkError::UnknownPeer { peer: peer.into() })?;
        let mut slot = p.outbox.lock().await;
        if let Some(o) = slot.as_ref() {
            return Ok(o.clone());
        }
        let transport = |message: String| LinkError::Transport { peer: peer.into(), message };
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", p.address))
            .map_err(|e| transport(format!("bad address {}: {e}", p.address)))?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        if let Some(t) = &self.tls {
            // The peer's certificate must name the peer (not merely the host it listens on).
            let name = identity::expected(peer).map_err(transport)?;
            let tls = ClientTlsConfig::new().ca_certificate(t.ca()).identity(t.identity()).domain_name(name);
            endpoint = endpoint.tls_config(tls).map_err(|e| transport(format!("TLS configuration: {e}")))?;
        }
        let deadline = Instant::now() + self.timeout;
        let mut backoff = Duration::from_millis(20);
        let channel = loop {
            match endpoint.connect().await {
                Ok(c) => break c,
                Err(e) if Instant::now() + backoff >= deadline => {
                    return Err(LinkError::Timeout {
                        peer: peer.into(),
                        tag: format!("connect to {} ({e})", p.address),
                        secs: self.timeout.as_secs(),
                    });
                }
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
            }
        };
        let client =
            PartyLinkClient::new(channel).max_decoding_message_size(MAX_MESSAGE).max_encoding_message_size(MAX_MESSAGE);
        self.watch(peer, client.clone()).await?;
        let outbox = Outbox::open(peer, client, self.boxes.clone()).await?;
        *slot = Some(outbox.clone());
        Ok(outbox)
    }

    /// Open the peer's `Watch` stream; mark the peer departed when it ends.
    async fn watch(&self, peer: &str, mut client: PartyLinkClient<GrpcChannel>) -> Result<(), LinkError> {
        let hello = pb::Hello { session: self.session.clone(), from: self.party.clone(), nonce: self.runs.nonce() };
        let mut stream = client.watch(hello).await.map_err(|s| status_error(peer, "watch", s))?.into_inner();
        // The peer's first beat carries its run nonce: the session of this party's chunks to it.
        let first = stream.message().await.map_err(|s| status_error(peer, "watch", s))?;
        let theirs = first.map(|b| b.nonce).unwrap_or_default();
        let run =
            self.runs.to_peer(peer, &theirs).map_err(|message| LinkError::Transport { peer: peer.into(), message })?;
        if let Some(p) = self.peers.get(peer) {
            let _ = p.run.set(run);
        }
        let boxes = self.boxes.clone();
        let peer = peer.to_string();
        let handle = tokio::spawn(async move {
            while let Ok(Some(_)) = stream.message().await {}
            boxes.depart(&peer);
        });
        self.watchers.lock().unwrap_or_else(|p| p.into_inner()).push(handle);
        Ok(())
    }

    /// Connect to every peer now (cluster init), so that a missing peer fails early.
    pub async fn connect_all(&self) -> Result<(), LinkError> {
        for peer in self.peers.keys() {
            self.outbox(peer).await?;
        }
        Ok(())
    }

    /// A chunk to `peer` under `tag` in this run's session with it; `ack` asks the peer to acknowledge it (a
    /// flush marker).
    fn chunk(&self, peer: &str, tag: &str, data: Vec<u8>, last: bool, ack: bool) -> pb::Chunk {
        let session = self.peers.get(peer).and_then(|p| p.run.get()).cloned().unwrap_or_default();
        pb::Chunk { session, from: self.party.clone(), tag: tag.into(), data, last, ack }
    }
}

impl Drop for GrpcLink {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for w in self.watchers.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            w.abort();
        }
    }
}

fn status_error(peer: &str, what: &str, s: Status) -> LinkError {
    match s.code() {
        tonic::Code::Unavailable | tonic::Code::Cancelled => {
            LinkError::PeerClosed { peer: peer.into(), tag: what.into() }
        }
        _ => LinkError::Transport { peer: peer.into(), message: format!("{what}: {}", s.message()) },
    }
}

impl GrpcLink {
    /// `bytes` to `peer` as chunks on its stream.
    async fn send_chunks(&self, peer: &str, tag: &str, bytes: Vec<u8>) -> Result<(), LinkError> {
        let outbox = self.outbox(peer).await?;
        let chunk = |data: Vec<u8>, last: bool| self.chunk(peer, tag, data, last, false);
        // A message that fits one chunk (most of them) moves without a copy.
        if bytes.len() <= CHUNK {
            return outbox.send(peer, tag, std::iter::once(chunk(bytes, true))).await.map(drop);
        }
        let n = bytes.len().div_ceil(CHUNK);
        let chunks = bytes.chunks(CHUNK).enumerate().map(|(i, c)| chunk(c.to_vec(), i + 1 == n));
        outbox.send(peer, tag, chunks).await.map(drop)
    }
}

#[async_trait]
impl Link for GrpcLink {
    fn party(&self) -> &str {
        &self.party
    }

    async fn send(&self, peer: &str, tag: &str, bytes: Vec<u8>) -> Result<(), LinkError> {
        // A peer that reported its failure is not sent to: its report is the error.
        let sent = self.send_chunks(peer, tag, bytes).await;
        sent.map_err(|e| self.boxes.failure(peer, &self.party).unwrap_or(e))
    }

    async fn recv(&self, peer: &str, tag: &str) -> Result<Vec<u8>, LinkError> {
        let Some(p) = self.peers.get(peer) else {
            return Err(LinkError::UnknownPeer { peer: peer.into() });
        };
        let received = self.boxes.receive(peer, &self.party, tag).await;
        if let Err(e) = &received
            && !matches!(e, LinkError::PeerFailed { .. })
        {
            // A stream the peer ended with a status (a refused chunk) says more than "disconnected".
            let ended = p.outbox.lock().await.as_ref().and_then(|o| o.ended());
            if let Some(status) = ended {
                return Err(status_error(peer, tag, status));
            }
        }
        received
    }

    async fn flush(&self, peer: &str) -> Result<(), LinkError> {
        let p = self.peers.get(peer).ok_or_else(|| LinkError::UnknownPeer { peer: peer.into() })?;
        let outbox = p.outbox.lock().await.clone();
        let marker = self.chunk(peer, FLUSH_TAG, Vec::new(), true, true);
        match outbox {
            Some(o) => o.flush(peer, marker, self.timeout).await,
            None => Ok(()),
        }
    }
}

/// The server side: queues pushed messages and holds watch streams open.
#[derive(Clone)]
struct Service(Arc<Shared>);

struct Shared {
    party: String,
    runs: Arc<Runs>,
    /// Whether connections come over mutual TLS: each then speaks only for the party its certificate names.
    tls: bool,
    boxes: Arc<Mailboxes>,
    partial: Mutex<HashMap<(String, String), Vec<u8>>>,
    watches: Mutex<Vec<tokio::sync::mpsc::Sender<Result<pb::Beat, Status>>>>,
}

impl std::ops::Deref for Service {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Shared {
    /// `from` must be a peer, and a chunk's session its run session with this party.
    fn check(&self, session: &str, from: &str) -> Result<(), Status> {
        self.known(from)?;
        self.runs.check(from, session)
    }

    fn known(&self, from: &str) -> Result<(), Status> {
        if !self.boxes.knows(from) || from == self.party {
            return Err(Status::permission_denied(format!("`{from}` is not a peer of party {}", self.party)));
        }
        Ok(())
    }

    /// Queue a chunk; a message's last chunk delivers the whole message to its mailbox. Answers the
    /// acknowledgement the chunk asks for, if any (a flush marker, which is not delivered).
    fn accept(&self, c: pb::Chunk) -> Result<Option<pb::Ack>, Status> {
        self.check(&c.session, &c.from)?;
        let ack = c.ack.then_some(pb::Ack {});
        if c.tag == FLUSH_TAG {
            return Ok(ack);
        }
        let key = (c.from.clone(), c.tag.clone());
        let whole = {
            let mut partial = self.partial.lock().unwrap_or_else(|p| p.into_inner());
            // Counted as it arrives: a peer cannot grow a partial message or its backlog past the limits.
            let so_far = partial.get(&key).map_or(0, Vec::len) + c.data.len();
            if let Err(e) = self.boxes.admit((&c.from, &self.party), &c.tag, c.data.len(), so_far) {
                partial.retain(|(from, _), _| *from != c.from);
                return Err(Status::resource_exhausted(e.to_string()));
            }
            if c.last {
                match partial.remove(&key) {
                    Some(mut head) => {
                        head.extend_from_slice(&c.data);
                        head
                    }
                    None => c.data,
                }
            } else {
                partial.entry(key).or_default().extend_from_slice(&c.data);
                return Ok(ack);
            }
        };
        self.boxes
            .deliver_admitted(&c.from, &self.party, &c.tag, whole)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(ack)
    }
}

#[tonic::async_trait]
impl PartyLink for Service {
    type MessagesStream = Pin<Box<dyn Stream<Item = Result<pb::Ack, Status>> + Send + 'static>>;

    async fn messages(
        &self,
        request: Request<tonic::Streaming<pb::Chunk>>,
    ) -> Result<Response<Self::MessagesStream>, Status> {
        let certs = request.peer_certs();
        let mut inbound = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let service = self.clone();
        tokio::spawn(async move {
            // The party the stream's certificate was checked for (one check per stream, not per chunk).
            let mut speaks_for: Option<String> = None;
            // Acknowledgements in order, for the chunks that ask; a refused chunk ends the stream with its status.
            while let Ok(Some(chunk)) = inbound.message().await {
                let bound = match &speaks_for {
                    Some(p) if *p == chunk.from => Ok(()),
                    _ if !service.tls => Ok(()),
                    _ => identity::check(&service.party, &certs, &chunk.from).map(|()| {
                        speaks_for = Some(chunk.from.clone());
                    }),
                };
                let answer = match bound.and_then(|()| service.accept(chunk)) {
                    Ok(None) => continue,
                    Ok(Some(ack)) => Ok(ack),
                    Err(status) => Err(status),
                };
                let refused = answer.is_err();
                if tx.send(answer).await.is_err() || refused {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::Beat, Status>> + Send + 'static>>;

    async fn watch(&self, request: Request<pb::Hello>) -> Result<Response<Self::WatchStream>, Status> {
        let certs = request.peer_certs();
        let h = request.into_inner();
        self.known(&h.from)?;
        if self.tls {
            identity::check(&self.party, &certs, &h.from)?;
        }
        self.runs.register(&h.from, &h.session, &h.nonce)?;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let _ = tx.try_send(Ok(pb::Beat { nonce: self.runs.nonce() }));
        // The sender stays here for the server's life; the stream ends when the server (process) goes away.
        self.watches.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

#[cfg(test)]
mod tests;
