//! The in-memory link: every party of a local-mode session in one process, sharing one set of [`Mailboxes`].
//! Dropping a party's [`MemoryLink`] marks the party as departed, so a peer waiting on it fails at once with
//! `PeerClosed` instead of waiting for the timeout.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::mailbox::Mailboxes;
use super::{Limits, Link, LinkError};

/// The shared state of one local session.
pub struct MemoryHub {
    boxes: Arc<Mailboxes>,
}

impl MemoryHub {
    /// A hub for `parties`, whose receives wait at most `timeout`.
    pub fn new(parties: &[String], timeout: Duration) -> Arc<Self> {
        MemoryHub::with_limits(parties, timeout, Limits::default())
    }

    /// [`MemoryHub::new`] with explicit limits on what one party can make another hold.
    pub fn with_limits(parties: &[String], timeout: Duration, limits: Limits) -> Arc<Self> {
        Arc::new(MemoryHub { boxes: Mailboxes::with_limits(parties, timeout, limits) })
    }

    /// The link endpoint of `party`.
    pub fn link(self: &Arc<Self>, party: &str) -> MemoryLink {
        MemoryLink { boxes: self.boxes.clone(), party: party.to_string() }
    }
}

/// One party's end of a [`MemoryHub`].
pub struct MemoryLink {
    boxes: Arc<Mailboxes>,
    party: String,
}

impl Drop for MemoryLink {
    fn drop(&mut self) {
        self.boxes.depart(&self.party);
    }
}

#[async_trait]
impl Link for MemoryLink {
    fn party(&self) -> &str {
        &self.party
    }

    async fn send(&self, peer: &str, tag: &str, bytes: Vec<u8>) -> Result<(), LinkError> {
        self.boxes.deliver(&self.party, peer, tag, bytes)
    }

    async fn recv(&self, peer: &str, tag: &str) -> Result<Vec<u8>, LinkError> {
        self.boxes.receive(peer, &self.party, tag).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::Channel;

    fn pair(timeout: Duration) -> (Channel, Channel) {
        let hub = MemoryHub::new(&["alice".into(), "bob".into()], timeout);
        (Channel::new(Arc::new(hub.link("alice"))), Channel::new(Arc::new(hub.link("bob"))))
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
        assert!(matches!(a.send_bytes("carol", "t", vec![]).await, Err(LinkError::UnknownPeer { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn silent_peer_times_out_naming_it() {
        let (a, _b) = pair(Duration::from_secs(30));
        let err = a.recv_bytes("bob", "x").await.unwrap_err();
        assert!(matches!(err, LinkError::Timeout { ref peer, .. } if peer == "bob"), "{err}");
    }

    #[tokio::test]
    async fn departed_peer_fails_the_receive_at_once() {
        let (a, b) = pair(Duration::from_secs(3600));
        b.send_bytes("alice", "x", vec![7]).await.unwrap();
        drop(b);
        assert_eq!(a.recv_bytes("bob", "x").await.unwrap(), vec![7]);
        let err = a.recv_bytes("bob", "x").await.unwrap_err();
        assert!(matches!(err, LinkError::PeerClosed { ref peer, .. } if peer == "bob"), "{err}");
    }

    #[tokio::test]
    async fn a_peer_that_reports_its_failure_fails_receives_with_it_after_its_queued_messages() {
        let (a, b) = pair(Duration::from_secs(3600));
        b.send_bytes("alice", "x", vec![7]).await.unwrap();
        // Alice is already waiting on another tag when bob's report arrives.
        let waiting = tokio::spawn(async move {
            let err = a.recv_bytes("bob", "y").await.unwrap_err();
            (a, err)
        });
        tokio::task::yield_now().await;
        b.send_bytes("alice", crate::link::ABORT_TAG, b"party bob: link to peer `carol` timed out".to_vec())
            .await
            .unwrap();
        let (a, err) = waiting.await.unwrap();
        assert!(
            matches!(err, LinkError::PeerFailed { ref peer, ref message } if peer == "bob" && message.contains("carol"))
        );
        assert_eq!(a.recv_bytes("bob", "x").await.unwrap(), vec![7], "what bob sent before still arrives");
        assert!(matches!(a.recv_bytes("bob", "x").await, Err(LinkError::PeerFailed { .. })));
    }
}
