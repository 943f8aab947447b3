//! Collectors: turn what a host exposes (sysinfo locally, cgroup counters) into model data.

pub mod backups;
pub mod cgroup;
pub mod local;
pub mod procfs;
