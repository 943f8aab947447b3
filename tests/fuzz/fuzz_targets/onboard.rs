//! `opsdeck init`'s parsers on hostile input: the probe's answer (any bytes from the host),
//! compose labels and environment values, and an Ansible inventory. Parsing never panics;
//! the inventory written from any of it loads (nothing a host sends can add a key or a
//! host to it), and holds no control character or bidi override but the newlines between
//! its lines.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use opsdeck::onboard::discover::{self, ContainerSeen};
use opsdeck::onboard::{Candidate, HostReport, Outcome, probe, render, sources};

#[derive(Arbitrary, Debug)]
struct Input {
    answer: Vec<u8>,
    containers: Vec<(String, String, String, String, String, String)>,
    env: Vec<(u8, String)>,
    ansible: String,
    reason: String,
}

fuzz_target!(|input: Input| {
    let p = probe::parse(&input.answer);
    let containers: Vec<ContainerSeen> = input
        .containers
        .iter()
        .take(50)
        .map(|(name, image, project, service, wd, files)| {
            let mut c = ContainerSeen {
                name: name.clone(),
                image: image.clone(),
                project: Some(project.clone()),
                service: Some(service.clone()),
                working_dir: Some(wd.clone()),
                config_files: Some(files.clone()),
                environment_file: Some(files.clone()),
                ..ContainerSeen::default()
            };
            for (k, v) in &input.env {
                let key = discover::PG_ENV[usize::from(*k) % discover::PG_ENV.len()];
                c.pg_env.insert(key.to_string(), v.clone());
            }
            c
        })
        .collect();
    let found = discover::host(&p, &containers, &p.files);
    let mut reports = vec![HostReport {
        candidate: Candidate {
            name: "h".into(),
            address: "h".into(),
            origin: input.reason.clone(),
            ..Candidate::default()
        },
        outcome: Outcome::Found(found),
    }];
    if let Ok(cands) = sources::from_ansible(&input.ansible, "inv") {
        for c in cands.into_iter().take(20) {
            if sources::valid_name(&c.name).is_ok()
                && !reports.iter().any(|r| r.candidate.name == c.name)
            {
                reports.push(HostReport {
                    candidate: c,
                    outcome: Outcome::Unreachable(input.reason.clone()),
                });
            }
        }
    }
    let text = render::file(&reports, "now", &input.reason);
    let inv = opsdeck::config::parse_str(&text, std::path::Path::new("fuzz.toml"));
    let inv = match inv {
        Ok(i) => i,
        Err(e) => panic!("the written inventory does not load: {e}\n{text}"),
    };
    assert_eq!(inv.hosts.len(), 1, "{text}");
    assert!(
        !text.chars().any(|c| (c.is_control() && c != '\n')
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)),
        "{text:?}"
    );
    for t in p.cron.iter().chain(&p.timers) {
        let _ = probe::dump_target(t);
    }
});
