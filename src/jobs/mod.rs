//! Jobs: work that changes a host (deploy, migrate, rollback, restart, custom actions,
//! backups), run over the host's connection.
//!
//! [`plan`] turns a request into steps from the inventory alone; [`exec`] runs them under
//! the stack's lock on the host, streaming every line, and writes the audit record.
//! Commands on the host are small POSIX `sh` scripts sent with every config value as a
//! quoted positional argument (never pasted into the script), so an inventory value cannot
//! become shell syntax. The scripts clean up after themselves on the host: when opsdeck
//! dies, the operator cancels, or the connection drops mid-job, the script notices that its
//! stdin closed, stops what runs and removes what it half-made, because nothing on
//! opsdeck's side will be left to do it.

pub mod audit;
pub mod backup;
pub mod compose;
pub mod exec;
pub mod lock;
pub mod plan;
pub mod preflight;
mod release_steps;
pub mod retention;
pub mod runner;
pub(crate) mod script;
mod steps;

pub use release_steps::view as releases_view;
pub use runner::{Local, RunError, Runner};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod exec_tests;
