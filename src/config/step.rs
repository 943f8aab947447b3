//! Recipe steps. A step is written as a command line and split like a shell would split
//! it, but it is kept as an argument vector and quoted again when sent to a host, so a
//! config value can never smuggle a `;` or `$(...)` into a remote shell.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, MapAccess};

use super::duration::{HumanDuration, parse_duration};

/// A command split into words; `compose` as the first word means the stack's compose
/// command with its `--env-file`, `-f` and `-p`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub argv: Vec<String>,
}

impl CommandLine {
    pub fn parse(text: &str) -> Result<Self, String> {
        let argv = shlex::split(text)
            .ok_or_else(|| format!("cannot split {text:?} into words: a quote is not closed"))?;
        if argv.is_empty() {
            return Err("empty command: a step needs at least one word".into());
        }
        Ok(CommandLine { argv })
    }

    pub fn is_compose(&self) -> bool {
        self.argv.first().is_some_and(|w| w == "compose")
    }
}

impl fmt::Display for CommandLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted: Vec<String> = self
            .argv
            .iter()
            .map(|w| {
                shlex::try_quote(w)
                    .map(|c| c.into_owned())
                    .unwrap_or_else(|_| format!("{w:?}"))
            })
            .collect();
        f.write_str(&quoted.join(" "))
    }
}

impl schemars::JsonSchema for CommandLine {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CommandLine".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A command line, split into words like a shell would split it \
                            (quotes work) but never run through a shell. A first word \
                            `compose` runs the stack's compose command with its --env-file, \
                            -f and -p, in the stack's directory.",
            "type": "string",
            // At least one word (white space alone is an empty command).
            "pattern": "\\S",
            "examples": ["compose up -d", "git pull --ff-only", "sh -c 'echo a; echo b'"],
        })
    }
}

impl<'de> Deserialize<'de> for CommandLine {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        CommandLine::parse(&text).map_err(de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Run(CommandLine),
    /// Poll container health and the stack's health checks until healthy or timeout.
    WaitHealthy(Duration),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Run(cmd) => write!(f, "{cmd}"),
            Step::WaitHealthy(d) => {
                write!(f, "wait healthy (up to {})", HumanDuration(*d))
            }
        }
    }
}

impl schemars::JsonSchema for Step {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Step".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let command = generator.subschema_for::<CommandLine>();
        let duration = generator.subschema_for::<HumanDuration>();
        schemars::json_schema!({
            "description": "A recipe step: a command line, or { wait_healthy = \"2m\" } to \
                            wait until the stack's containers and checks are healthy.",
            "oneOf": [
                command,
                {
                    "type": "object",
                    "properties": {
                        "wait_healthy": {
                            "description": "Poll container health and the stack's health \
                                            checks until healthy, for at most this long.",
                            "allOf": [duration],
                        },
                    },
                    "required": ["wait_healthy"],
                    "additionalProperties": false,
                },
            ],
        })
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Step;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a command string like \"compose up -d\" or { wait_healthy = \"2m\" }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Step, E> {
                CommandLine::parse(v).map(Step::Run).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Step, A::Error> {
                let mut step = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "wait_healthy" if step.is_none() => {
                            let text: String = map.next_value()?;
                            let d = parse_duration(&text).map_err(de::Error::custom)?;
                            step = Some(Step::WaitHealthy(d));
                        }
                        "wait_healthy" => return Err(de::Error::duplicate_field("wait_healthy")),
                        other => return Err(de::Error::unknown_field(other, &["wait_healthy"])),
                    }
                }
                step.ok_or_else(|| de::Error::missing_field("wait_healthy"))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell_and_quotes_back() {
        let c = CommandLine::parse("sh -c 'echo a; echo b'").unwrap();
        assert_eq!(c.argv, vec!["sh", "-c", "echo a; echo b"]);
        assert_eq!(c.to_string(), "sh -c 'echo a; echo b'");
        assert!(!c.is_compose());
        assert!(CommandLine::parse("compose up -d").unwrap().is_compose());
    }

    #[test]
    fn rejects_unclosed_quotes_and_empty() {
        assert!(
            CommandLine::parse("echo 'oops")
                .unwrap_err()
                .contains("not closed")
        );
        assert!(
            CommandLine::parse("   ")
                .unwrap_err()
                .contains("empty command")
        );
    }
}
