//! Supervised learning on the SEMI2K device (spec sections 2 and 3).

mod model;
mod phases;
pub mod ss_lr;
