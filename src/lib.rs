//! opsdeck: a terminal ops console for small fleets of Docker Compose hosts.
//!
//! `model` and `ui` are pure (no tokio, no I/O); `runtime` runs the loop; `remote`,
//! `docker` and `collect` do the talking to hosts. See `../shared/DESIGN.md`.

pub mod checks;
pub mod cli;
pub mod collect;
pub mod config;
pub mod docker;
pub mod jobs;
pub mod metrics;
pub mod model;
pub mod onboard;
pub mod remote;
pub mod runtime;
pub mod sanitize;
pub mod ui;
