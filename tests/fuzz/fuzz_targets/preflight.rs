//! A deploy's pre-flight: what its host script printed, parsed and judged. Total over any
//! bytes, bounded, and every text of the report fit for a terminal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opsdeck::jobs::preflight::{Names, judge, parse};

fuzz_target!(|data: &[u8]| {
    let g = parse(data);
    assert!(g.images.len() <= 100);
    for (pulls, warn) in [(true, 90.0), (false, 100.0)] {
        let names = Names {
            dir: "~/app".into(),
            env_file: Some(".env".into()),
            root: Some(Ok("/var/lib/docker".into())),
            backups: vec![("~/backups".into(), vec!["db".into()])],
            pulls_code: pulls,
            uses_compose: true,
            images_size: Some(1 << 30),
            disk_warn: warn,
            probe_lock: true,
        };
        let r = judge(&g, &names);
        assert!(r.items.len() <= opsdeck::model::preflight::MAX_ITEMS);
        for i in &r.items {
            assert!(
                !i.text.chars().any(opsdeck::sanitize::is_unsafe),
                "{:?}",
                i.text
            );
        }
    }
});
