//! Statistics (spec section 5). `table_statistics` is computed by each column's owner; Pearson and VIF
//! combine parties' values and run on the MPC engine.

mod correlation;
pub mod pearson;
pub mod table_statistics;
pub mod vif;
