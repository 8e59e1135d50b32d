//! Preprocessing (spec section 4): each party fits and transforms the listed columns it holds and writes its
//! own output table; only the fitted parameters are shared (they are part of the task's result).

pub mod binning;
pub mod encoder;
pub mod fillna;
pub mod scaler;
