//! Supervised learning on the SEMI2K device (spec sections 2 and 3).

mod model;
pub mod ss_lr;
