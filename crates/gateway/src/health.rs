//! What keeps Tafel from serving, for `/readyz`: a part that stopped (the views, the
//! fan-out) says so here with its reason, and readiness turns to 503 with it, so a
//! queue group or a load balancer stops sending work to this instance.
//!
//! [`RepeatedWarning`] keeps a failure that repeats (a cursor that cannot be saved on a
//! full disk, every 200 ms) from flooding the log: the first is logged, then a summary
//! at most once a minute.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::warn;

/// The parts that stopped, with why.
#[derive(Debug, Default)]
pub struct Health {
    stopped: Mutex<BTreeMap<&'static str, String>>,
}

impl Health {
    /// `part` has stopped and cannot serve until Tafel restarts.
    pub fn stopped(&self, part: &'static str, why: impl Into<String>) {
        if let Ok(mut stopped) = self.stopped.lock() {
            stopped.insert(part, why.into());
        }
    }

    /// Every stopped part and why, as lines for people.
    pub fn problems(&self) -> Vec<String> {
        self.stopped
            .lock()
            .map(|stopped| stopped.iter().map(|(part, why)| format!("{part} stopped: {why}")).collect())
            .unwrap_or_else(|_| vec!["the health table is poisoned".into()])
    }
}

/// Least time between two summaries of a repeating warning.
pub const REPEAT_SUMMARY_INTERVAL: Duration = Duration::from_secs(60);

/// One warning that may repeat: logged the first time, then summarised (how many
/// times since) at most every [`REPEAT_SUMMARY_INTERVAL`], and once more when it ends.
#[derive(Debug)]
pub struct RepeatedWarning {
    what: &'static str,
    repeats: u64,
    last_logged: Option<Instant>,
}

impl RepeatedWarning {
    pub fn new(what: &'static str) -> Self {
        Self { what, repeats: 0, last_logged: None }
    }

    /// It happened (again), because of `cause`.
    pub fn happened(&mut self, cause: &dyn std::fmt::Display) {
        match self.last_logged {
            None => {
                warn!(%cause, "{}", self.what);
                self.last_logged = Some(Instant::now());
            }
            Some(at) if at.elapsed() >= REPEAT_SUMMARY_INTERVAL => {
                warn!(%cause, repeats = self.repeats + 1, "{} (still; repeated since the last report)", self.what);
                self.repeats = 0;
                self.last_logged = Some(Instant::now());
            }
            Some(_) => self.repeats += 1,
        }
    }

    /// It went well: the next failure is logged at once again.
    pub fn ended(&mut self) {
        if self.last_logged.take().is_some() && self.repeats > 0 {
            warn!(repeats = self.repeats, "{}: resolved after repeating", self.what);
        }
        self.repeats = 0;
    }
}
