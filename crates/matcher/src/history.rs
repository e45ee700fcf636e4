//! [`History`]: every version of what matching knew, so that a past shortlist is
//! computed from the facts as they stood then instead of by replaying the log.
//!
//! A shortlist is a function of the request's facts, every mandate's facts and the
//! log's date, at one position (see [`crate::Matcher::compute`]); keeping each version
//! of those, stamped with the position from which it holds, makes the shortlist at any
//! past position one pass over the mandates, whatever the log's length.

use serde::{Deserialize, Serialize};
use tafel_contract::vocab::CalendarDate;

use crate::facts::{MandateFacts, RequestFacts};

/// Versions of one thing, each with the log position from which it holds, in order.
pub type Versions<T> = Vec<(u64, T)>;

/// Every version of every request's and mandate's facts, and of the log's date, by the
/// index the matcher gave them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub(crate) requests: Vec<Versions<RequestFacts>>,
    pub(crate) mandates: Vec<Versions<MandateFacts>>,
    pub(crate) days: Versions<CalendarDate>,
}

impl History {
    /// The version of `versions` that held at `position`, if any did yet.
    pub fn at<T>(versions: &[(u64, T)], position: u64) -> Option<&T> {
        let after = versions.partition_point(|(from, _)| *from <= position);
        after.checked_sub(1).map(|index| &versions[index].1)
    }

    /// Records `value` as holding from `position` on; a second version at the same
    /// position replaces the first (one event may change a thing twice).
    pub(crate) fn record<T>(versions: &mut Versions<T>, position: u64, value: T) {
        match versions.last_mut() {
            Some((from, last)) if *from == position => *last = value,
            _ => versions.push((position, value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_at_a_position_is_the_last_one_recorded_at_or_before_it() {
        let mut versions = Versions::new();
        History::record(&mut versions, 3, 'a');
        History::record(&mut versions, 7, 'b');
        History::record(&mut versions, 7, 'c');
        History::record(&mut versions, 9, 'd');
        let seen: Vec<Option<char>> = (0..=10).map(|p| History::at(&versions, p).copied()).collect();
        let a = Some('a');
        let c = Some('c');
        let d = Some('d');
        assert_eq!(seen, vec![None, None, None, a, a, a, a, c, c, d, d]);
    }
}
