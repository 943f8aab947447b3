//! A backup directory's listing (the host's NUL-separated records) over any bytes, then
//! the set's verdict and the retention plan made from it: no panic, no slow input, and
//! retention only ever names files that are listed exactly, counted by the glob, not the
//! one just made and not the newest.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use opsdeck::collect::backups::{self, evaluate, parse_listing};
use opsdeck::config::BackupSet;
use opsdeck::jobs::retention::{Rules, plan};

#[derive(Arbitrary, Debug)]
struct Input {
    glob: String,
    keep_last: Option<u32>,
    keep_within: Option<u32>,
    just_made: String,
    local_now: i64,
    /// Records (NUL added after each), the first usually being the clock.
    records: Vec<Vec<u8>>,
    clock: Option<i64>,
    end: Option<u8>,
}

static SET: OnceLock<BackupSet> = OnceLock::new();

fn base_set() -> BackupSet {
    toml::from_str(
        "name = \"db\"\ndir = \"~/backups\"\nglob = \"db-*.dump\"\nmax_age = \"26h\"\nkeep_last = 3\n",
    )
    .expect("a valid backup set")
}

fuzz_target!(|input: Input| {
    let mut out: Vec<u8> = Vec::new();
    if let Some(now) = input.clock {
        out.extend_from_slice(format!("now {now}\0").as_bytes());
    }
    for r in &input.records {
        out.extend_from_slice(r);
        out.push(0);
    }
    if let Some(status) = input.end {
        out.extend_from_slice(format!("end {}\0", status % 3).as_bytes());
    }
    let listing = parse_listing("~/backups", &out);

    let mut set = SET.get_or_init(base_set).clone();
    set.glob = toml::Spanned::new(0..0, input.glob.clone());
    set.keep_last = input.keep_last;
    set.keep_within = input
        .keep_within
        .map(|s| opsdeck::config::HumanDuration(Duration::from_secs(u64::from(s))));
    let status = evaluate(0, "stack", &set, listing.as_ref(), input.local_now);
    assert!(status.count <= listing.as_ref().map_or(0, |l| l.files.len()));
    if let Some(e) = &status.error {
        assert!(!e.chars().any(char::is_control), "{e:?}");
    }

    let Ok(listing) = listing else { return };
    for f in &listing.files {
        assert!(!f.name.is_empty() && !f.name.contains('/') && !f.name.contains('\0'));
    }
    let doomed = plan(&listing, &input.glob, Rules::of(&set), &input.just_made);
    let counted: Vec<_> = listing
        .files
        .iter()
        .filter(|f| backups::counts(&input.glob, &f.name))
        .collect();
    for name in &doomed {
        assert!(
            counted.iter().any(|f| &f.name == name),
            "{name:?} is not a backup"
        );
        assert!(
            !listing.inexact.contains(name),
            "{name:?} is not its own name"
        );
        assert_ne!(name, &input.just_made);
    }
    if !doomed.is_empty() {
        assert!(doomed.len() < counted.len(), "every backup would go");
    }
});
