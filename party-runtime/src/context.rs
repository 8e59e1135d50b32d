//! What a job gets: who it is, the other parties, a counted link, the data policy and a progress sink.
//! A job never opens sockets or talks to Kubernetes; everything crosses the link through this context.

use std::sync::Arc;
use std::time::Duration;

use secretflow_crds::ErrorInfo;
use secretflow_crds::request::SpuRuntime;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::data::DataPolicy;
use crate::error::{Error, Result};
use crate::link::{Channel, LinkError};

/// How long [`PartyContext::close`] waits for each peer's goodbye.
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Receives progress reports (fraction done and a phase name) from running jobs.
pub trait ProgressSink: Send + Sync {
    /// `party` is `fraction` (0..=1) done, now in `phase`.
    fn report(&self, party: &str, fraction: f64, phase: &str);
}

/// A sink that drops reports.
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn report(&self, _: &str, _: f64, _: &str) {}
}

/// Run CPU-heavy `f` without stalling the async runtime: on a multi-threaded runtime the worker thread is
/// handed over for the duration (`block_in_place`); elsewhere `f` simply runs.
pub fn compute<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// One party's view of a running task.
pub struct PartyContext {
    /// This party.
    pub party: String,
    /// Every party, in request order.
    pub parties: Vec<String>,
    /// The counted link to the others.
    pub channel: Channel,
    /// Where this party may read and write.
    pub data: DataPolicy,
    /// The MPC device, when the request configures one.
    pub spu: Option<SpuRuntime>,
    progress: Arc<dyn ProgressSink>,
    /// Nanoseconds this party spent building MPC devices (`performance_metrics.device_init_time`).
    device_init_ns: std::sync::atomic::AtomicU64,
}

impl PartyContext {
    /// A context for `party`.
    pub fn new(
        party: &str,
        parties: Vec<String>,
        channel: Channel,
        data: DataPolicy,
        progress: Arc<dyn ProgressSink>,
    ) -> Self {
        PartyContext {
            party: party.to_string(),
            parties,
            channel,
            data,
            spu: None,
            progress,
            device_init_ns: Default::default(),
        }
    }

    /// Count `elapsed` as time spent building the MPC device.
    pub fn add_device_init(&self, elapsed: std::time::Duration) {
        self.device_init_ns.fetch_add(elapsed.as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Seconds spent building MPC devices so far.
    pub fn device_init_secs(&self) -> f64 {
        self.device_init_ns.load(std::sync::atomic::Ordering::Relaxed) as f64 * 1e-9
    }

    /// The same context with the MPC device configured.
    pub fn with_spu(mut self, spu: Option<SpuRuntime>) -> Self {
        self.spu = spu;
        self
    }

    /// Report progress.
    pub fn progress(&self, fraction: f64, phase: &str) {
        tracing::info!(party = %self.party, fraction, phase, "progress");
        self.progress.report(&self.party, fraction.clamp(0.0, 1.0), phase);
    }

    /// A message from `peer` under `tag` that does not have the expected shape (checked length, encoding).
    pub fn bad_message(&self, peer: &str, tag: &str, message: impl Into<String>) -> Error {
        self.link_error(LinkError::Decode { peer: peer.into(), tag: tag.into(), message: message.into() })
    }

    /// End of the session: tell every peer this party is done, wait (at most the link timeout) until each
    /// holds everything sent to it (sends do not wait for delivery, so a result or an error sent last would
    /// otherwise be lost if this process exits first), then wait (at most [`CLOSE_WAIT`]) for their goodbyes.
    /// Errors are ignored: the job's outcome is already decided.
    pub async fn close(&self) {
        let peers: Vec<&String> = self.parties.iter().filter(|p| **p != self.party).collect();
        for peer in &peers {
            let _ = self.channel.send_bytes(peer, "link/bye", Vec::new()).await;
        }
        for peer in &peers {
            let _ = self.channel.flush(peer).await;
        }
        for peer in &peers {
            let _ = tokio::time::timeout(CLOSE_WAIT, self.channel.recv_bytes(peer, "link/bye")).await;
        }
    }

    /// This party's job failed: tell every peer why (as peers may see it, no cell values), so a peer waiting
    /// on this party fails with the root cause ([`LinkError::PeerFailed`]). Errors are ignored.
    pub async fn abort(&self, error: &Error) {
        let message = error.to_peer_info().message;
        for peer in self.parties.iter().filter(|p| **p != self.party) {
            let _ = self.channel.send_bytes(peer, crate::link::ABORT_TAG, message.clone().into_bytes()).await;
        }
    }

    /// A link error seen by this party.
    pub fn link_error(&self, source: LinkError) -> Error {
        Error::Link { party: self.party.clone(), source }
    }

    /// All-gather: send `mine` to every peer and collect every party's value, in party order.
    ///
    /// A party whose own step failed still sends (its error), so its peers fail with [`Error::Peer`] naming
    /// it instead of waiting for a message that will never come; it then returns its own error.
    pub async fn exchange<T: Serialize + DeserializeOwned>(
        &self,
        tag: &str,
        mine: Result<T>,
    ) -> Result<Vec<(String, T)>> {
        // What the peers learn of this party's failure: no cell values (see `Error::to_peer_info`).
        let wire: std::result::Result<&T, ErrorInfo> = mine.as_ref().map_err(Error::to_peer_info);
        for peer in self.parties.iter().filter(|p| **p != self.party) {
            if let Err(e) = self.channel.send_json(peer, tag, &wire).await {
                return Err(mine.err().unwrap_or_else(|| self.link_error(e)));
            }
        }
        let mine = mine?;
        let mut theirs = Vec::with_capacity(self.parties.len());
        for peer in self.parties.iter().filter(|p| **p != self.party) {
            let got: std::result::Result<T, ErrorInfo> =
                self.channel.recv_json(peer, tag).await.map_err(|e| self.link_error(e))?;
            match got {
                Ok(v) => theirs.push((peer.clone(), v)),
                Err(error) => {
                    return Err(Error::Peer { party: self.party.clone(), peer: peer.clone(), error });
                }
            }
        }
        let at = self.parties.iter().position(|p| *p == self.party).unwrap_or(0);
        theirs.insert(at, (self.party.clone(), mine));
        Ok(theirs)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::link::memory::MemoryHub;

    fn contexts(timeout: Duration) -> (PartyContext, PartyContext) {
        let parties: Vec<String> = vec!["alice".into(), "bob".into()];
        let hub = MemoryHub::new(&parties, timeout);
        let make = |p: &str| {
            PartyContext::new(
                p,
                parties.clone(),
                Channel::new(Arc::new(hub.link(p))),
                DataPolicy::default(),
                Arc::new(NoProgress),
            )
        };
        (make("alice"), make("bob"))
    }

    #[tokio::test]
    async fn exchange_gathers_in_party_order() {
        let (a, b) = contexts(Duration::from_secs(5));
        let (ra, rb) = tokio::join!(a.exchange("t", Ok(1u32)), b.exchange("t", Ok(2u32)));
        let expected = vec![("alice".to_string(), 1), ("bob".to_string(), 2)];
        assert_eq!(ra.unwrap(), expected);
        assert_eq!(rb.unwrap(), expected);
    }

    #[tokio::test]
    async fn a_failing_party_fails_its_peers_naming_it() {
        let (a, b) = contexts(Duration::from_secs(3600));
        let bob_err = Error::bad_data("bob", "task_config.columns", "boom");
        let (ra, rb) = tokio::join!(a.exchange("t", Ok(1u32)), b.exchange::<u32>("t", Err(bob_err)));
        assert!(matches!(rb, Err(Error::BadData { .. })));
        match ra {
            Err(Error::Peer { peer, error, .. }) => {
                assert_eq!(peer, "bob");
                assert!(error.message.contains("boom"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_csv_parsers_message_stays_with_its_party() {
        let (a, b) = contexts(Duration::from_secs(3600));
        let detail = "could not parse `secret-cell-42` as dtype i64 at column 'age'";
        let bob_err = Error::Csv { party: "bob".into(), path: "b.csv".into(), detail: detail.into() };
        let (ra, rb) = tokio::join!(a.exchange("t", Ok(1u32)), b.exchange::<u32>("t", Err(bob_err)));
        assert!(rb.expect_err("bob fails").to_string().contains("secret-cell-42"), "bob's own result keeps it");
        let seen = ra.expect_err("alice fails").to_info();
        assert!(seen.message.contains("bob") && seen.message.contains("b.csv"), "{}", seen.message);
        assert!(!seen.message.contains("secret") && !seen.traceback.contains("secret"), "{seen:?}");
    }

    #[tokio::test]
    async fn a_vanished_party_fails_the_exchange_at_once() {
        let (a, b) = contexts(Duration::from_secs(3600));
        drop(b);
        let err = tokio::time::timeout(Duration::from_secs(5), a.exchange("t", Ok(1u32))).await.expect("no hang");
        let err = err.unwrap_err();
        assert!(err.is_peer_report(), "{err}");
        assert!(err.to_string().contains("bob"), "{err}");
    }
}
