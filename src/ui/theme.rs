//! Themes name roles (ok, warn, selected, ...) rather than colours, so panels never pick
//! raw colours and a 16-colour or NO_COLOR terminal still reads clearly.

use std::collections::HashMap;
use std::path::Path;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

const DEFAULT: &str = include_str!("../../themes/default.toml");
const SIXTEEN: &str = include_str!("../../themes/16color.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: String,
    #[serde(default)]
    roles: HashMap<String, RoleSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleSpec {
    fg: Option<Color>,
    bg: Option<Color>,
    #[serde(default)]
    bold: bool,
    #[serde(default)]
    dim: bool,
    #[serde(default)]
    italic: bool,
    #[serde(default)]
    underline: bool,
    #[serde(default)]
    reverse: bool,
}

impl RoleSpec {
    fn style(&self) -> Style {
        let mut s = Style::default();
        if let Some(c) = self.fg {
            s = s.fg(c);
        }
        if let Some(c) = self.bg {
            s = s.bg(c);
        }
        for (on, m) in [
            (self.bold, Modifier::BOLD),
            (self.dim, Modifier::DIM),
            (self.italic, Modifier::ITALIC),
            (self.underline, Modifier::UNDERLINED),
            (self.reverse, Modifier::REVERSED),
        ] {
            if on {
                s = s.add_modifier(m);
            }
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub text: Style,
    pub dim: Style,
    pub title: Style,
    pub border: Style,
    pub header: Style,
    pub selected: Style,
    pub group: Style,
    pub ok: Style,
    pub warn: Style,
    pub crit: Style,
    pub info: Style,
    pub cpu: Style,
    pub mem: Style,
    pub net_rx: Style,
    pub net_tx: Style,
    pub load: Style,
    pub matched: Style,
    pub current_match: Style,
    pub stderr: Style,
    pub key: Style,
    pub banner: Style,
    /// False under NO_COLOR: log lines then drop their own ANSI colours too.
    pub colour: bool,
}

const ROLES: &[&str] = &[
    "text",
    "dim",
    "title",
    "border",
    "header",
    "selected",
    "group",
    "ok",
    "warn",
    "crit",
    "info",
    "cpu",
    "mem",
    "net_rx",
    "net_tx",
    "load",
    "match",
    "current_match",
    "stderr",
    "key",
    "banner",
];

#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error("theme {name:?}: {message}")]
    Invalid { name: String, message: String },
    #[error("theme file {path}: {error}")]
    Read { path: String, error: std::io::Error },
}

impl Theme {
    /// `name` is a built-in theme or a path to a theme file.
    pub fn load(name: &str) -> Result<Theme, ThemeError> {
        let text = match name {
            "default" => DEFAULT.to_string(),
            "16color" => SIXTEEN.to_string(),
            path => std::fs::read_to_string(Path::new(path)).map_err(|error| ThemeError::Read {
                path: path.to_string(),
                error,
            })?,
        };
        Theme::parse(name, &text)
    }

    pub fn parse(name: &str, text: &str) -> Result<Theme, ThemeError> {
        let file: ThemeFile = toml::from_str(text).map_err(|e| ThemeError::Invalid {
            name: name.to_string(),
            message: e.to_string(),
        })?;
        if let Some(unknown) = file.roles.keys().find(|k| !ROLES.contains(&k.as_str())) {
            return Err(ThemeError::Invalid {
                name: name.to_string(),
                message: format!("unknown role {unknown:?}; roles are: {}", ROLES.join(", ")),
            });
        }
        let role = |r: &str| file.roles.get(r).map(RoleSpec::style).unwrap_or_default();
        Ok(Theme {
            name: file.name.clone(),
            text: role("text"),
            dim: role("dim"),
            title: role("title"),
            border: role("border"),
            header: role("header"),
            selected: role("selected"),
            group: role("group"),
            ok: role("ok"),
            warn: role("warn"),
            crit: role("crit"),
            info: role("info"),
            cpu: role("cpu"),
            mem: role("mem"),
            net_rx: role("net_rx"),
            net_tx: role("net_tx"),
            load: role("load"),
            matched: role("match"),
            current_match: role("current_match"),
            stderr: role("stderr"),
            key: role("key"),
            banner: role("banner"),
            colour: true,
        })
    }

    /// The colour of a stack's service `i` in its logs, from a small palette of the
    /// theme's roles (plain under NO_COLOR, whose roles have no colours).
    pub fn service(&self, i: usize) -> Style {
        let palette = [
            self.cpu,
            self.ok,
            self.warn,
            self.mem,
            self.info,
            self.stderr,
        ];
        palette[i % palette.len()]
    }

    /// The NO_COLOR theme (https://no-color.org): emphasis by weight and reverse video only.
    pub fn monochrome() -> Theme {
        let plain = Style::default();
        let bold = plain.add_modifier(Modifier::BOLD);
        let rev = plain.add_modifier(Modifier::REVERSED);
        Theme {
            name: "no-color".into(),
            text: plain,
            dim: plain.add_modifier(Modifier::DIM),
            title: bold,
            border: plain,
            header: bold.add_modifier(Modifier::UNDERLINED),
            selected: rev,
            group: bold,
            ok: plain,
            warn: bold,
            crit: bold.add_modifier(Modifier::UNDERLINED),
            info: plain,
            cpu: plain,
            mem: plain,
            net_rx: plain,
            net_tx: plain,
            load: plain,
            matched: plain.add_modifier(Modifier::UNDERLINED),
            current_match: rev,
            stderr: bold,
            key: bold,
            banner: rev,
            colour: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_themes_parse_and_set_every_key_role() {
        for name in crate::config::BUILTIN_THEMES {
            let t = Theme::load(name).unwrap();
            assert_eq!(&t.name, name);
            assert_ne!(
                t.selected,
                Style::default(),
                "{name}: selection must be visible"
            );
            assert_ne!(t.crit, Style::default());
        }
    }

    #[test]
    fn sixteen_colour_theme_uses_only_ansi_colours() {
        let t = Theme::load("16color").unwrap();
        for s in [
            t.ok, t.warn, t.crit, t.cpu, t.mem, t.matched, t.banner, t.selected,
        ] {
            for c in [s.fg, s.bg].into_iter().flatten() {
                assert!(
                    !matches!(c, Color::Rgb(..) | Color::Indexed(_)),
                    "{c:?} is not ANSI"
                );
            }
        }
    }

    #[test]
    fn unknown_role_is_an_error() {
        let e = Theme::parse("x", "name = \"x\"\n[roles]\nokk = { fg = \"red\" }\n").unwrap_err();
        assert!(e.to_string().contains("unknown role \"okk\""));
    }
}
