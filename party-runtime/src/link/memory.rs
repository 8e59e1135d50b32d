//! The in-memory link: every party of a local-mode session in one process.
//!
//! A [`MemoryHub`] holds one unbounded queue per (from, to, tag). Dropping a party's [`MemoryLink`] marks the
//! party as gone, so a peer waiting on it fails with `PeerClosed` at once instead of waiting for the timeout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};

use super::{Link, LinkError};

type Key = (String, String, String);
type Queue = (
    mpsc::UnboundedSender<Vec<u8>>,
    Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Vec<u8>>>>,
);

/// The shared state of one local session.
pub struct MemoryHub {
    queues: Mutex<HashMap<Key, Queue>>,
    alive: HashMap<String, watch::Sender<bool>>,
    timeout: Duration,
}

impl MemoryHub {
    /// A hub for `parties`, whose `recv`s wait at most `timeout`.
    pub fn new(parties: &[String], timeout: Duration) -> Arc<Self> {
        let alive = parties
            .iter()
            .map(|p| (p.clone(), watch::channel(true).0))
            .collect();
        Arc::new(MemoryHub {
            queues: Mutex::default(),
            alive,
            timeout,
        })
    }

    /// The link endpoint of `party`.
    pub fn link(self: &Arc<Self>, party: &str) -> MemoryLink {
        MemoryLink {
            hub: self.clone(),
            party: party.to_string(),
        }
    }

    fn queue(&self, key: Key) -> Queue {
        let mut q = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        q.entry(key)
            .or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                (tx, Arc::new(tokio::sync::Mutex::new(rx)))
            })
            .clone()
    }
}

/// One party's end of a [`MemoryHub`].
pub struct MemoryLink {
    hub: Arc<MemoryHub>,
    party: String,
}

impl Drop for MemoryLink {
    fn drop(&mut self) {
        if let Some(tx) = self.hub.alive.get(&self.party) {
            tx.send_replace(false);
        }
    }
}

#[async_trait]
impl Link for MemoryLink {
    fn party(&self) -> &str {
        &self.party
    }

    async fn send(&self, peer: &str, tag: &str, bytes: Vec<u8>) -> Result<(), LinkError> {
        if !self.hub.alive.contains_key(peer) {
            return Err(LinkError::UnknownPeer { peer: peer.into() });
        }
        let (tx, _) = self
            .hub
            .queue((self.party.clone(), peer.into(), tag.into()));
        // The hub keeps the receiver alive, so this cannot fail.
        let _ = tx.send(bytes);
        Ok(())
    }

    async fn recv(&self, peer: &str, tag: &str) -> Result<Vec<u8>, LinkError> {
        let mut alive = match self.hub.alive.get(peer) {
            Some(tx) => tx.subscribe(),
            None => return Err(LinkError::UnknownPeer { peer: peer.into() }),
        };
        let (_, rx) = self
            .hub
            .queue((peer.into(), self.party.clone(), tag.into()));
        let mut rx = rx.lock().await;
        let closed = || LinkError::PeerClosed {
            peer: peer.into(),
            tag: tag.into(),
        };
        tokio::select! {
            biased;
            m = rx.recv() => m.ok_or_else(closed),
            _ = alive.wait_for(|a| !*a) => rx.try_recv().map_err(|_| closed()),
            _ = tokio::time::sleep(self.hub.timeout) => Err(LinkError::Timeout {
                peer: peer.into(),
                tag: tag.into(),
                secs: self.hub.timeout.as_secs(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::Channel;

    fn pair(timeout: Duration) -> (Channel, Channel) {
        let hub = MemoryHub::new(&["alice".into(), "bob".into()], timeout);
        (
            Channel::new(Arc::new(hub.link("alice"))),
            Channel::new(Arc::new(hub.link("bob"))),
        )
    }

    #[tokio::test]
    async fn messages_arrive_in_order_per_tag_and_are_counted() {
        let (a, b) = pair(Duration::from_secs(5));
        a.send_bytes("bob", "t", vec![1, 2]).await.unwrap();
        a.send_bytes("bob", "u", vec![9]).await.unwrap();
        a.send_bytes("bob", "t", vec![3]).await.unwrap();
        assert_eq!(b.recv_bytes("alice", "u").await.unwrap(), vec![9]);
        assert_eq!(b.recv_bytes("alice", "t").await.unwrap(), vec![1, 2]);
        assert_eq!(b.recv_bytes("alice", "t").await.unwrap(), vec![3]);
        assert_eq!(a.stats().bytes_sent, 4);
        assert_eq!(b.stats().bytes_received, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn silent_peer_times_out_naming_it() {
        let (a, _b) = pair(Duration::from_secs(30));
        let err = a.recv_bytes("bob", "x").await.unwrap_err();
        assert!(
            matches!(err, LinkError::Timeout { ref peer, .. } if peer == "bob"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn departed_peer_fails_the_receive_at_once() {
        let (a, b) = pair(Duration::from_secs(3600));
        b.send_bytes("alice", "x", vec![7]).await.unwrap();
        drop(b);
        assert_eq!(a.recv_bytes("bob", "x").await.unwrap(), vec![7]);
        let err = a.recv_bytes("bob", "x").await.unwrap_err();
        assert!(
            matches!(err, LinkError::PeerClosed { ref peer, .. } if peer == "bob"),
            "{err}"
        );
    }
}
