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

/// What [`RepeatedWarning::happened`] writes to the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Said {
    /// The first occurrence, in full.
    First,
    /// A summary: how many times it happened since the last line.
    Summary { repeats: u64 },
    /// Nothing: it was said recently.
    Nothing,
}

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

    /// It happened (again), because of `cause`: logged, summarised or kept quiet.
    pub fn happened(&mut self, cause: &dyn std::fmt::Display) {
        match self.decide(Instant::now()) {
            Said::First => warn!(%cause, "{}", self.what),
            Said::Summary { repeats } => {
                warn!(%cause, repeats, "{} (still; repeated since the last report)", self.what)
            }
            Said::Nothing => {}
        }
    }

    fn decide(&mut self, now: Instant) -> Said {
        match self.last_logged {
            None => {
                self.last_logged = Some(now);
                Said::First
            }
            Some(at) if now.duration_since(at) >= REPEAT_SUMMARY_INTERVAL => {
                let repeats = self.repeats + 1;
                self.repeats = 0;
                self.last_logged = Some(now);
                Said::Summary { repeats }
            }
            Some(_) => {
                self.repeats += 1;
                Said::Nothing
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeating_warning_is_said_once_then_summarised_once_a_minute() {
        let mut warning = RepeatedWarning::new("cannot save the cursor");
        let start = Instant::now();
        assert_eq!(warning.decide(start), Said::First);
        // Every 200 ms for four minutes: 1 200 failures, five lines.
        let mut lines = 1;
        for step in 1..1200u32 {
            let said = warning.decide(start + Duration::from_millis(200) * step);
            if said != Said::Nothing {
                lines += 1;
            }
        }
        assert_eq!(lines, 4, "once, then once a minute");
        assert_eq!(warning.decide(start + Duration::from_secs(241)), Said::Summary { repeats: 300 });
        warning.ended();
        assert_eq!(warning.decide(start + Duration::from_secs(242)), Said::First, "a new failure is said at once");
    }
}
