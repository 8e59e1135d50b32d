//! Machine-learning algorithms over the MPC device, free of file I/O: each takes plaintext arrays and a device
//! and returns shares and opened metrics; its job in `jobs/` loads, checks, saves and reports.

pub mod phases;
pub mod ss_lr;
pub mod ss_xgb;
