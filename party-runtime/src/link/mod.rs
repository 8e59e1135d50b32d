//! The link between parties: tagged byte messages to a named peer.
//!
//! [`Link`] is deliberately small (after swanky's `AbstractChannel`): `send` and `recv` by peer and tag, with
//! per-(peer, tag) ordering. [`Channel`] wraps any link, counts bytes and rounds (job code never counts), and
//! adds typed JSON helpers. Sub-protocols use their own tag prefix (`"scaler/parts"`).
//!
//! # Disconnection
//! A `recv` from a peer that has gone away fails with [`LinkError::PeerClosed`] once its queued messages are
//! consumed; a peer that stays silent fails the `recv` with [`LinkError::Timeout`] after the link timeout.
//! Neither ever hangs.

pub mod grpc;
pub mod identity;
pub mod mailbox;
pub mod memory;
pub mod session;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use secretflow_crds::result::CommStats;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The tag of the message a party whose job failed sends every peer before it leaves: its error, which every
/// pending and later receive from it then fails with ([`LinkError::PeerFailed`]), so a peer blocked on a third
/// party's failure learns the root cause instead of only that this party went away.
pub const ABORT_TAG: &str = "link/abort";

/// Default time a `recv` waits for its peer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What can go wrong on a link; every variant names the peer.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LinkError {
    /// The peer is not part of this session.
    #[error("unknown peer `{peer}`")]
    UnknownPeer {
        /// The peer.
        peer: String,
    },
    /// Nothing arrived within the timeout.
    #[error("timed out after {secs} s waiting for peer `{peer}` (message `{tag}`)")]
    Timeout {
        /// The peer.
        peer: String,
        /// The awaited message.
        tag: String,
        /// The timeout.
        secs: u64,
    },
    /// The peer went away.
    #[error("peer `{peer}` disconnected (waiting for message `{tag}`)")]
    PeerClosed {
        /// The peer.
        peer: String,
        /// The awaited message.
        tag: String,
    },
    /// The peer's own job failed and it said why before leaving ([`ABORT_TAG`]): the root cause is there.
    #[error("peer `{peer}` failed: {message}")]
    PeerFailed {
        /// The peer.
        peer: String,
        /// The peer's error as it reports it to others (no cell values).
        message: String,
    },
    /// The connection to the peer failed (refused, reset, or an error the peer reported).
    #[error("link to peer `{peer}` failed: {message}")]
    Transport {
        /// The peer.
        peer: String,
        /// What went wrong.
        message: String,
    },
    /// The peer sent more than [`Limits`] allow.
    #[error("peer `{peer}` exceeded the link's limits (message `{tag}`): {message}")]
    Limit {
        /// The peer.
        peer: String,
        /// The message.
        tag: String,
        /// Which limit, and by how much.
        message: String,
    },
    /// A message from the peer could not be decoded.
    #[error("bad message `{tag}` from peer `{peer}`: {message}")]
    Decode {
        /// The peer.
        peer: String,
        /// The message.
        tag: String,
        /// What is wrong with it.
        message: String,
    },
}

/// Bounds on what a peer can make this party hold: one message's size, and the bytes received from one peer and
/// not yet consumed (queued messages and partly received ones). Past either the run fails naming the peer,
/// instead of growing memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest message, in bytes.
    pub message: usize,
    /// The most bytes buffered from one peer.
    pub buffered: usize,
}

impl Default for Limits {
    /// 2 GiB per message (the largest legitimate one, KKRT's OT-extension matrix at 10^7 keys, is about
    /// 0.8 GB) and 4 GiB buffered per peer.
    fn default() -> Self {
        Limits { message: 2 << 30, buffered: 4 << 30 }
    }
}

impl Limits {
    /// The defaults, overridden by `SF_LINK_MAX_MESSAGE_BYTES` and `SF_LINK_MAX_BUFFERED_BYTES` where set.
    pub fn from_env() -> Self {
        let read = |name: &str, default: usize| {
            std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
        };
        let d = Limits::default();
        Limits {
            message: read("SF_LINK_MAX_MESSAGE_BYTES", d.message),
            buffered: read("SF_LINK_MAX_BUFFERED_BYTES", d.buffered),
        }
    }
}

impl LinkError {
    /// The peer this error names.
    pub fn peer(&self) -> &str {
        match self {
            LinkError::UnknownPeer { peer }
            | LinkError::Timeout { peer, .. }
            | LinkError::PeerClosed { peer, .. }
            | LinkError::PeerFailed { peer, .. }
            | LinkError::Transport { peer, .. }
            | LinkError::Decode { peer, .. }
            | LinkError::Limit { peer, .. } => peer,
        }
    }
}

/// Tagged, ordered byte messages between the parties of one session.
#[async_trait]
pub trait Link: Send + Sync {
    /// This party.
    fn party(&self) -> &str;
    /// Send `bytes` to `peer` under `tag`; messages with the same (peer, tag) arrive in order. Returns once
    /// the message is on its way, not when it has arrived: see [`Link::flush`].
    async fn send(&self, peer: &str, tag: &str, bytes: Vec<u8>) -> Result<(), LinkError>;
    /// Receive the next message from `peer` under `tag`.
    async fn recv(&self, peer: &str, tag: &str) -> Result<Vec<u8>, LinkError>;
    /// Wait until `peer` holds every message sent to it so far (before this party exits). A link whose sends
    /// complete on delivery has nothing to wait for.
    async fn flush(&self, peer: &str) -> Result<(), LinkError> {
        let _ = peer;
        Ok(())
    }
}

/// A link with communication counters and typed helpers.
#[derive(Clone)]
pub struct Channel {
    link: Arc<dyn Link>,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
    rounds: AtomicU64,
    sending: AtomicBool,
}

impl Channel {
    /// Wrap `link`.
    pub fn new(link: Arc<dyn Link>) -> Self {
        Channel { link, counters: Arc::default() }
    }

    /// This party.
    pub fn party(&self) -> &str {
        self.link.party()
    }

    /// Send raw bytes.
    pub async fn send_bytes(&self, peer: &str, tag: &str, bytes: Vec<u8>) -> Result<(), LinkError> {
        self.counters.sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.counters.sending.store(true, Ordering::Relaxed);
        self.link.send(peer, tag, bytes).await
    }

    /// Wait until `peer` holds every message sent to it so far ([`Link::flush`]).
    pub async fn flush(&self, peer: &str) -> Result<(), LinkError> {
        self.link.flush(peer).await
    }

    /// Receive raw bytes. A receive right after sends starts a new round.
    pub async fn recv_bytes(&self, peer: &str, tag: &str) -> Result<Vec<u8>, LinkError> {
        if self.counters.sending.swap(false, Ordering::Relaxed) {
            self.counters.rounds.fetch_add(1, Ordering::Relaxed);
        }
        let bytes = self.link.recv(peer, tag).await?;
        self.counters.received.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(bytes)
    }

    /// Send a value as JSON.
    pub async fn send_json<T: Serialize>(&self, peer: &str, tag: &str, value: &T) -> Result<(), LinkError> {
        let bytes = serde_json::to_vec(value).map_err(|e| LinkError::Decode {
            peer: peer.into(),
            tag: tag.into(),
            message: format!("cannot encode: {e}"),
        })?;
        self.send_bytes(peer, tag, bytes).await
    }

    /// Receive a JSON value; a message that does not decode as `T` is a [`LinkError::Decode`].
    pub async fn recv_json<T: DeserializeOwned>(&self, peer: &str, tag: &str) -> Result<T, LinkError> {
        let bytes = self.recv_bytes(peer, tag).await?;
        serde_json::from_slice(&bytes).map_err(|e| LinkError::Decode {
            peer: peer.into(),
            tag: tag.into(),
            message: e.to_string(),
        })
    }

    /// Bytes and rounds so far.
    pub fn stats(&self) -> CommStats {
        CommStats {
            bytes_sent: self.counters.sent.load(Ordering::Relaxed),
            bytes_received: self.counters.received.load(Ordering::Relaxed),
            rounds: self.counters.rounds.load(Ordering::Relaxed),
        }
    }
}

/// A link that appends every byte this party sends to a shared log: for transcript audits (tests check that no
/// input crosses the link in the clear).
pub struct Recording<L> {
    inner: L,
    sent: Arc<std::sync::Mutex<Vec<u8>>>,
}

impl<L> Recording<L> {
    /// Wrap `inner`, logging into `sent`.
    pub fn new(inner: L, sent: Arc<std::sync::Mutex<Vec<u8>>>) -> Self {
        Recording { inner, sent }
    }
}

#[async_trait]
impl<L: Link> Link for Recording<L> {
    fn party(&self) -> &str {
        self.inner.party()
    }

    async fn send(&self, peer: &str, tag: &str, bytes: Vec<u8>) -> Result<(), LinkError> {
        if let Ok(mut log) = self.sent.lock() {
            log.extend_from_slice(&bytes);
        }
        self.inner.send(peer, tag, bytes).await
    }

    async fn recv(&self, peer: &str, tag: &str) -> Result<Vec<u8>, LinkError> {
        self.inner.recv(peer, tag).await
    }
}
