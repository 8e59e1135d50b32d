//! Where a training run spends its time and traffic: seconds, bytes sent and rounds per phase, per party,
//! reported in `training_metrics.phases` (the cost of each MPC step is part of the product, not a guess).

use std::collections::BTreeMap;
use std::time::Instant;

use secretflow_crds::result::CommStats;
use serde::{Deserialize, Serialize};

use crate::context::PartyContext;

/// One phase's accumulated cost at one party.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct PhaseCost {
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Payload bytes this party sent.
    pub bytes_sent: u64,
    /// Communication rounds.
    pub rounds: u64,
}

/// Accumulates [`PhaseCost`]s between laps.
pub struct Meter<'a> {
    ctx: Option<&'a PartyContext>,
    phases: BTreeMap<String, PhaseCost>,
    mark: (Instant, CommStats),
}

impl<'a> Meter<'a> {
    /// Start measuring now.
    pub fn new(ctx: &'a PartyContext) -> Self {
        Meter { ctx: Some(ctx), phases: BTreeMap::new(), mark: (Instant::now(), ctx.channel.stats()) }
    }

    /// Measure seconds only (no link to count bytes on: an algorithm run outside a job).
    pub fn seconds_only() -> Meter<'static> {
        Meter { ctx: None, phases: BTreeMap::new(), mark: (Instant::now(), CommStats::default()) }
    }

    fn stats(&self) -> CommStats {
        self.ctx.map(|c| c.channel.stats()).unwrap_or_default()
    }

    /// Charge everything since the last lap to `phase`.
    pub fn lap(&mut self, phase: &str) {
        let (now, stats) = (Instant::now(), self.stats());
        let cost = self.phases.entry(phase.to_string()).or_default();
        cost.seconds += (now - self.mark.0).as_secs_f64();
        cost.bytes_sent += stats.bytes_sent - self.mark.1.bytes_sent;
        cost.rounds += stats.rounds - self.mark.1.rounds;
        self.mark = (now, stats);
    }

    /// The phases so far.
    pub fn finish(self) -> BTreeMap<String, PhaseCost> {
        self.phases
    }
}
