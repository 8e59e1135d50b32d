//! Per-(from, to, tag) message queues with peer liveness: the in-memory link's shared state and the gRPC
//! link's inbound side.
//!
//! A `receive` returns the next queued message; when the sender has departed and its queue is empty it fails
//! with `PeerClosed` at once, and when nothing arrives within the timeout it fails with `Timeout`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::LinkError;

type Key = (String, String, String);
type Queue = (mpsc::UnboundedSender<Vec<u8>>, Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Vec<u8>>>>);

/// Message queues for a fixed set of parties.
pub struct Mailboxes {
    queues: Mutex<HashMap<Key, Queue>>,
    alive: HashMap<String, watch::Sender<bool>>,
    timeout: Duration,
}

impl Mailboxes {
    /// Queues between `parties`; a `receive` waits at most `timeout`.
    pub fn new(parties: &[String], timeout: Duration) -> Arc<Self> {
        let alive = parties.iter().map(|p| (p.clone(), watch::channel(true).0)).collect();
        Arc::new(Mailboxes { queues: Mutex::default(), alive, timeout })
    }

    /// Whether `party` belongs to this set.
    pub fn knows(&self, party: &str) -> bool {
        self.alive.contains_key(party)
    }

    /// The receive timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
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

    /// Queue a message from `from` to `to`.
    pub fn deliver(&self, from: &str, to: &str, tag: &str, bytes: Vec<u8>) -> Result<(), LinkError> {
        for p in [from, to] {
            if !self.knows(p) {
                return Err(LinkError::UnknownPeer { peer: p.into() });
            }
        }
        let (tx, _) = self.queue((from.into(), to.into(), tag.into()));
        // The mailboxes keep every receiver alive, so this cannot fail.
        let _ = tx.send(bytes);
        Ok(())
    }

    /// The next message from `from` to `to` under `tag`.
    pub async fn receive(&self, from: &str, to: &str, tag: &str) -> Result<Vec<u8>, LinkError> {
        let mut alive = match self.alive.get(from) {
            Some(tx) => tx.subscribe(),
            None => return Err(LinkError::UnknownPeer { peer: from.into() }),
        };
        let (_, rx) = self.queue((from.into(), to.into(), tag.into()));
        let mut rx = rx.lock().await;
        let closed = || LinkError::PeerClosed { peer: from.into(), tag: tag.into() };
        tokio::select! {
            biased;
            m = rx.recv() => m.ok_or_else(closed),
            _ = alive.wait_for(|a| !*a) => rx.try_recv().map_err(|_| closed()),
            _ = tokio::time::sleep(self.timeout) => Err(LinkError::Timeout {
                peer: from.into(),
                tag: tag.into(),
                secs: self.timeout.as_secs(),
            }),
        }
    }

    /// `party` is gone: its pending and future receives fail once its queued messages are consumed.
    pub fn depart(&self, party: &str) {
        if let Some(tx) = self.alive.get(party) {
            tx.send_replace(false);
        }
    }
}
