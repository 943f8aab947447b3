//! A stack's release history as its host keeps it (hostile: any bytes): parsing never
//! panics, every field it keeps is one bounded line without control characters or bidi
//! overrides, what it renders parses back the same, `--to` lookups and the per-service
//! differences take any text, and the releases picker draws it at 80×24 without a control
//! character on screen.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
#[path = "../../support/oracles.rs"]
mod oracles;
use libfuzzer_sys::fuzz_target;
use opsdeck::model::picker::ReleasesPicker;
use opsdeck::model::releases::{self, ReleasesView};
use opsdeck::model::{HostState, Model, Overlay};
use oracles::bidi;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

thread_local! {
    static TERMINAL: RefCell<Terminal<TestBackend>> =
        RefCell::new(Terminal::new(TestBackend::new(80, 24)).expect("a test backend"));
}

#[derive(Arbitrary, Debug)]
struct Input {
    file: Vec<u8>,
    to: String,
    running: Vec<(String, String)>,
    cursor: u8,
}

fn clean(s: &str) -> bool {
    s.chars().count() <= 512 && !s.chars().any(|c| c.is_control() || bidi(c))
}

fuzz_target!(|input: Input| {
    let h = releases::parse(&input.file);
    for r in &h.releases {
        for f in [&r.id, &r.at, &r.who, &r.recipe, &r.outcome] {
            assert!(clean(f), "{f:?}");
        }
        for f in [&r.commit, &r.migration_head, &r.dump, &r.dump_set]
            .into_iter()
            .flatten()
        {
            assert!(clean(f), "{f:?}");
        }
        assert!(r.services.len() <= 64);
        for s in &r.services {
            assert!(clean(&s.service) && clean(&s.image) && clean(&s.id));
        }
        let _ = releases::changes(r, &input.running);
    }
    assert!(
        h.releases.windows(2).all(|w| w[0].n < w[1].n),
        "ordered, no number twice"
    );
    let again = releases::parse(releases::render(&h.releases).as_bytes());
    assert_eq!(again.releases, h.releases);
    assert_eq!(again.unreadable, 0);
    let _ = releases::find(&h.releases, &input.to);
    let _ = releases::default_target(&h.releases, &input.running);

    let now = jiff::Timestamp::from_second(1_764_000_000).expect("a time");
    let mut model = Model::new(vec![HostState::new("lila", "lila@host", 2)], now);
    model.size = (80, 24);
    let view = ReleasesView {
        stack: "lila".into(),
        history: h,
        running: input.running,
        downgrade: input.cursor % 2 == 0,
    };
    let rows = view.history.releases.len();
    model.overlay = Overlay::Releases(ReleasesPicker {
        host: 0,
        stack: "lila".into(),
        view: Some(Ok(view)),
        cursor: usize::from(input.cursor) % rows.max(1),
        checkout: false,
    });
    let theme = opsdeck::ui::Theme::load("default").expect("the default theme");
    TERMINAL.with(|t| {
        let mut t = t.borrow_mut();
        t.draw(|f| opsdeck::ui::view(&model, &theme, f))
            .expect("a frame");
        for cell in t.backend().buffer().content() {
            assert!(
                !cell.symbol().chars().any(|c| c.is_control() || bidi(c)),
                "{:?} on screen",
                cell.symbol()
            );
        }
    });
});
