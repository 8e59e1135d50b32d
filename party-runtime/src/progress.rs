//! Progress on a terminal: one indicatif bar per party on stderr, shown only when stderr is a terminal.

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::context::ProgressSink;

/// Bars per party.
pub struct TerminalProgress {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl TerminalProgress {
    /// Bars drawn on stderr.
    pub fn new() -> Self {
        TerminalProgress {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::default(),
        }
    }

    /// Remove the bars from the screen.
    pub fn finish(&self) {
        let bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        for b in bars.values() {
            b.finish_and_clear();
        }
    }
}

impl Default for TerminalProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl ProgressSink for TerminalProgress {
    fn report(&self, party: &str, fraction: f64, phase: &str) {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        let bar = bars.entry(party.to_string()).or_insert_with(|| {
            let b = self.multi.add(ProgressBar::new(1000));
            let style = ProgressStyle::with_template("{prefix:>10} [{bar:30}] {percent:>3}% {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            b.set_style(style);
            b.set_prefix(party.to_string());
            b
        });
        bar.set_position((fraction * 1000.0) as u64);
        bar.set_message(phase.to_string());
    }
}
