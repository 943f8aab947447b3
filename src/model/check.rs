//! What a health check found, as the console and `status` show it: the data, with no I/O
//! (the checks themselves run in `crate::checks`).

use serde::Serialize;

/// The peer certificate of an https check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsStatus {
    pub days_left: i64,
    /// Unix seconds.
    pub not_after: i64,
    pub issuer: String,
}

/// When a check last failed and why; kept while it passes again, so the operator sees
/// that a flapping check flapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub at: i64,
    pub error: String,
}

/// One check's latest result, as the console and `status` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckStatus {
    pub stack: Option<String>,
    pub name: String,
    pub url: String,
    pub via_ssh: bool,
    pub ok: bool,
    pub status: Option<u16>,
    pub expect_status: u16,
    pub latency_ms: Option<u64>,
    pub error: Option<String>,
    pub tls: Option<TlsStatus>,
    pub tls_warn_days: u32,
    /// Unix seconds of this result.
    pub at: i64,
    pub last_failure: Option<Failure>,
}

/// How much a check needs attention, least first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckVerdict {
    Ok,
    /// Passes, but its certificate expires within `tls_warn_days`.
    TlsSoon,
    Failed,
}

impl CheckStatus {
    pub fn verdict(&self) -> CheckVerdict {
        if !self.ok {
            CheckVerdict::Failed
        } else if self
            .tls
            .as_ref()
            .is_some_and(|t| t.days_left < i64::from(self.tls_warn_days))
        {
            CheckVerdict::TlsSoon
        } else {
            CheckVerdict::Ok
        }
    }

    /// At most six characters for the fleet's CHECK column: "ok", "503", "TLS 3d", "TLS!"
    /// (expired), "TLS?" (otherwise rejected), "t/o", "body", "down".
    pub fn short(&self) -> String {
        match self.verdict() {
            CheckVerdict::Ok => "ok".into(),
            CheckVerdict::TlsSoon => {
                format!("TLS {}d", self.tls.as_ref().map_or(0, |t| t.days_left))
            }
            CheckVerdict::Failed => match (self.status, self.error.as_deref()) {
                (Some(s), _) if s != self.expect_status => s.to_string(),
                (_, Some(e)) if e.starts_with("certificate expired") => "TLS!".into(),
                (_, Some(e)) if e.starts_with("certificate") => "TLS?".into(),
                (_, Some(e)) if e.starts_with("timed out") => "t/o".into(),
                (Some(_), _) => "body".into(),
                _ => "down".into(),
            },
        }
    }
}
