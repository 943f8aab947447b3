//! A backup set's verdict as the console and `status` show it: the data, with no I/O (the
//! listing and its evaluation are in `crate::collect::backups`).

use serde::Serialize;

/// One regular file in a backup directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// The name as the host sent it; invalid UTF-8 replaced (see `collect::backups::Listing::inexact`).
    pub name: String,
    /// Modification time, seconds since the epoch on the host's clock (in
    /// [`BackupStatus::newest`]: on this machine's clock, see there).
    pub mtime: i64,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Fresh,
    /// The newest file is older than the set's `max_age`.
    Stale,
    /// No file matches, or the directory does not exist.
    Missing,
    /// The newest file is empty, or less than half the size of the one before it, or a
    /// file is dated in the host's future (its age is unknown).
    Suspicious,
    /// The directory could not be listed.
    Unknown,
}

impl Verdict {
    /// Worst first, for the fleet's "worst backup" column and sorting.
    pub fn severity(self) -> u8 {
        match self {
            Verdict::Fresh => 0,
            Verdict::Suspicious => 2,
            Verdict::Stale => 3,
            Verdict::Unknown => 1,
            Verdict::Missing => 4,
        }
    }
}

/// A backup set as the console shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupStatus {
    pub host: usize,
    pub stack: String,
    pub name: String,
    pub dir: String,
    /// The newest file with a believable time. Its `mtime` is shifted onto this machine's
    /// clock by the difference between the two clocks measured when the directory was
    /// listed, so [`BackupStatus::newest_age`] against this machine's "now" gives the age
    /// the host's own clock gives, whatever the skew.
    pub newest: Option<FileEntry>,
    pub count: usize,
    pub total_bytes: u64,
    pub max_age_secs: i64,
    pub verdict: Verdict,
    /// Why the verdict is not simply what the files' ages and sizes say: the directory
    /// could not be listed, does not exist, its listing was cut off, or a file is dated in
    /// the future. Made fit for a terminal (it may quote host text).
    pub error: Option<String>,
    /// What `b` would run, in words; `None` for a set opsdeck only watches.
    pub recipe: Option<String>,
}

impl BackupStatus {
    pub fn newest_age(&self, now_secs: i64) -> Option<i64> {
        self.newest
            .as_ref()
            .map(|f| now_secs.saturating_sub(f.mtime).max(0))
    }
}
