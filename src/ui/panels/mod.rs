//! One file per panel.

pub mod backups;
pub mod checks;
pub mod confirm;
pub mod container;
pub mod fleet;
pub mod help;
pub mod host;
pub mod job;
pub mod jobs;
pub mod multi;
pub mod palette;
pub mod problems;
pub mod releases;
pub mod stack;
pub mod tabs;
pub mod timeline;
