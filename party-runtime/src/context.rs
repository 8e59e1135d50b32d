//! What a job gets: who it is, the other parties, a counted link, the data policy and a progress sink.
//! A job never opens sockets or talks to Kubernetes; everything crosses the link through this context.

use std::sync::Arc;

use secretflow_crds::ErrorInfo;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::data::DataPolicy;
use crate::error::{Error, Result};
use crate::link::{Channel, LinkError};

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
    progress: Arc<dyn ProgressSink>,
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
            progress,
        }
    }

    /// Report progress.
    pub fn progress(&self, fraction: f64, phase: &str) {
        self.progress
            .report(&self.party, fraction.clamp(0.0, 1.0), phase);
    }

    /// A link error seen by this party.
    pub fn link_error(&self, source: LinkError) -> Error {
        Error::Link {
            party: self.party.clone(),
            source,
        }
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
        let wire: std::result::Result<&T, ErrorInfo> = mine.as_ref().map_err(Error::to_info);
        for peer in self.parties.iter().filter(|p| **p != self.party) {
            if let Err(e) = self.channel.send_json(peer, tag, &wire).await {
                return Err(mine.err().unwrap_or_else(|| self.link_error(e)));
            }
        }
        let mine = mine?;
        let mut theirs = Vec::with_capacity(self.parties.len());
        for peer in self.parties.iter().filter(|p| **p != self.party) {
            let got: std::result::Result<T, ErrorInfo> = self
                .channel
                .recv_json(peer, tag)
                .await
                .map_err(|e| self.link_error(e))?;
            match got {
                Ok(v) => theirs.push((peer.clone(), v)),
                Err(error) => {
                    return Err(Error::Peer {
                        party: self.party.clone(),
                        peer: peer.clone(),
                        error,
                    });
                }
            }
        }
        let at = self
            .parties
            .iter()
            .position(|p| *p == self.party)
            .unwrap_or(0);
        theirs.insert(at, (self.party.clone(), mine));
        Ok(theirs)
    }
}
