//! Supervised learning jobs on the MPC device (spec sections 2 and 3): inputs, outputs and reports; the
//! algorithms are in [`crate::ml`].

mod model;
pub mod ss_lr;
pub mod ss_xgb;
mod xgb_model;
