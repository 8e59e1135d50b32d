//! Per-(from, to, tag) message queues with peer liveness: the in-memory link's shared state and the gRPC
//! link's inbound side.
//!
//! A `receive` returns the next queued message; when the sender has departed and its queue is empty it fails
//! with `PeerClosed` at once, and when nothing arrives within the timeout it fails with `Timeout`. Bytes from
//! each peer are counted from arrival to consumption against [`Limits`]: a peer past them is refused, and every
//! receive from it fails with the `Limit` error naming it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{ABORT_TAG, Limits, LinkError};

type Key = (String, String, String);
type Queue = (mpsc::UnboundedSender<Vec<u8>>, Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Vec<u8>>>>);

/// Bytes from one sender to one receiver admitted and not yet received, and the limit error that stopped the
/// sender, if any.
type Held = (usize, Option<LinkError>);

/// Message queues for a fixed set of parties.
pub struct Mailboxes {
    queues: Mutex<HashMap<Key, Queue>>,
    alive: HashMap<String, watch::Sender<bool>>,
    timeout: Duration,
    limits: Limits,
    /// Per (sender, receiver): bytes admitted and not yet received, and the limit error that stopped the
    /// sender, if any.
    held: Mutex<HashMap<(String, String), Held>>,
    /// Per (sender, receiver): the failure the sender reported before leaving ([`ABORT_TAG`]); its queued
    /// messages are still received first.
    reports: Mutex<HashMap<(String, String), LinkError>>,
}

impl Mailboxes {
    /// Queues between `parties`; a `receive` waits at most `timeout`.
    pub fn new(parties: &[String], timeout: Duration) -> Arc<Self> {
        Mailboxes::with_limits(parties, timeout, Limits::default())
    }

    /// [`Mailboxes::new`] with explicit limits.
    pub fn with_limits(parties: &[String], timeout: Duration, limits: Limits) -> Arc<Self> {
        let alive = parties.iter().map(|p| (p.clone(), watch::channel(true).0)).collect();
        Arc::new(Mailboxes {
            queues: Mutex::default(),
            alive,
            timeout,
            limits,
            held: Mutex::default(),
            reports: Mutex::default(),
        })
    }

    /// The limits on what a peer can make this party hold.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Count `n` more bytes from `from` to `to` (part of message `tag`, of `so_far` bytes with these): refused
    /// past the limits, which also stops the sender (pending and later receives from it fail with the error).
    pub fn admit(&self, (from, to): (&str, &str), tag: &str, n: usize, so_far: usize) -> Result<(), LinkError> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let (count, stopped) = held.entry((from.to_string(), to.to_string())).or_default();
        if let Some(e) = stopped {
            return Err(e.clone());
        }
        let over = if so_far > self.limits.message {
            Some(format!("a message of {so_far} bytes or more, above the {} allowed", self.limits.message))
        } else if *count + n > self.limits.buffered {
            Some(format!("{} bytes held unread, above the {} allowed", *count + n, self.limits.buffered))
        } else {
            None
        };
        if let Some(message) = over {
            let e = LinkError::Limit { peer: from.into(), tag: tag.into(), message };
            *stopped = Some(e.clone());
            drop(held);
            self.depart(from);
            return Err(e);
        }
        *count += n;
        Ok(())
    }

    /// Why `from` can no longer send to `to`: it passed the limits, or its job failed and it said why.
    pub fn failure(&self, from: &str, to: &str) -> Option<LinkError> {
        self.stopped(from, to).or_else(|| {
            let reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
            reports.get(&(from.to_string(), to.to_string())).cloned()
        })
    }

    /// The error that stopped `from` sending to `to`, if it passed the limits.
    fn stopped(&self, from: &str, to: &str) -> Option<LinkError> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.get(&(from.to_string(), to.to_string())).and_then(|h| h.1.clone())
    }

    /// `n` bytes from `from` to `to` were consumed.
    fn release(&self, from: &str, to: &str, n: usize) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = held.get_mut(&(from.to_string(), to.to_string())) {
            h.0 = h.0.saturating_sub(n);
        }
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

    /// Queue a message from `from` to `to`, counting it against the limits.
    pub fn deliver(&self, from: &str, to: &str, tag: &str, bytes: Vec<u8>) -> Result<(), LinkError> {
        self.admit((from, to), tag, bytes.len(), bytes.len())?;
        self.deliver_admitted(from, to, tag, bytes)
    }

    /// Queue a message whose bytes were already counted by [`Mailboxes::admit`] as they arrived. A message
    /// under [`ABORT_TAG`] is not queued: it stops the sender with its error.
    pub fn deliver_admitted(&self, from: &str, to: &str, tag: &str, bytes: Vec<u8>) -> Result<(), LinkError> {
        for p in [from, to] {
            if !self.knows(p) {
                return Err(LinkError::UnknownPeer { peer: p.into() });
            }
        }
        if tag == ABORT_TAG {
            let message = String::from_utf8_lossy(&bytes).into_owned();
            let mut reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
            reports
                .entry((from.to_string(), to.to_string()))
                .or_insert(LinkError::PeerFailed { peer: from.into(), message });
            drop(reports);
            self.depart(from);
            return Ok(());
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
        if let Some(e) = self.stopped(from, to) {
            return Err(e);
        }
        let (_, rx) = self.queue((from.into(), to.into(), tag.into()));
        let mut rx = rx.lock().await;
        let closed =
            || self.failure(from, to).unwrap_or_else(|| LinkError::PeerClosed { peer: from.into(), tag: tag.into() });
        let got = tokio::select! {
            biased;
            m = rx.recv() => m.ok_or_else(closed),
            _ = alive.wait_for(|a| !*a) => match self.stopped(from, to) {
                Some(e) => Err(e),
                None => rx.try_recv().map_err(|_| closed()),
            },
            _ = tokio::time::sleep(self.timeout) => Err(LinkError::Timeout {
                peer: from.into(),
                tag: tag.into(),
                secs: self.timeout.as_secs(),
            }),
        };
        if let Ok(m) = &got {
            self.release(from, to, m.len());
        }
        got
    }

    /// `party` is gone: its pending and future receives fail once its queued messages are consumed.
    pub fn depart(&self, party: &str) {
        if let Some(tx) = self.alive.get(party) {
            tx.send_replace(false);
        }
    }
}
