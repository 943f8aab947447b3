//! Jobs: work that changes a host, run as shell scripts over the host's connection.
//!
//! A job is a small POSIX `sh` script sent with every config value as a quoted positional
//! argument (never pasted into the script), so an inventory value cannot become shell
//! syntax. The scripts clean up after themselves on the host: when opsdeck dies or the
//! connection drops mid-job, the script notices that its stdin closed and removes what it
//! half-made, because nothing on opsdeck's side will be left to do it.

pub mod audit;
pub mod backup;
pub mod compose;
pub mod retention;
pub mod runner;
mod script;

pub use runner::{Local, RunError, Runner};

#[cfg(test)]
mod tests;
