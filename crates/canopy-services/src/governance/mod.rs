//! Governance: credits and spending caps ([`credits`]), and the audit log (records are written by `op::Cx::commit` and `op::dispatch`;
//! this module reads them back).

pub mod audit;
pub mod credits;
pub mod quotas;
