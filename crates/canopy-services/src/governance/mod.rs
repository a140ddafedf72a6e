//! Governance: the audit log (records are written by `op::Cx::commit` and `op::dispatch`;
//! this module reads them back).

pub mod audit;
