//! [`History`]: every version of the mandates' facts and of the log's date, so that a
//! past shortlist is computed from the facts as they stood then instead of by replaying
//! the log.
//!
//! A shortlist is a function of the request's facts, every mandate's facts and the
//! log's date, at one position (see [`crate::Matcher::compute`]). The mandates' and the
//! date's versions are kept here, each stamped with the position from which it holds;
//! a request's facts at a position are folded from that request's own events
//! ([`request_facts_at`]), which the log keeps by stream. So a past shortlist is one
//! pass over the mandates whatever the log's length, and what the history holds grows
//! with mandate changes and days, not with requests' events: a programme of a steady
//! size keeps a steady memory however long its log grows.

use serde::{Deserialize, Serialize};
use tafel_contract::data::EventData;
use tafel_contract::vocab::CalendarDate;

use crate::facts::{MandateFacts, RequestFacts};

/// Versions of one thing, each with the log position from which it holds, in order.
pub type Versions<T> = Vec<(u64, T)>;

/// Every version of every mandate's facts, by the index the matcher gave them, and of
/// the log's date.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct History {
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

impl RequestFacts {
    /// The request's facts after `data`, given those before it (`None`: not submitted
    /// yet); `None` when `data` does not change a request's facts. The one rule the live
    /// matcher and [`request_facts_at`] both follow: a submit or revision states the
    /// facts anew (a withdrawn request stays closed), a withdrawal closes them.
    pub fn after(before: Option<&RequestFacts>, data: &EventData) -> Option<RequestFacts> {
        match data {
            EventData::RequestSubmitted(details) | EventData::RequestRevised(details) => {
                let open = before.is_none_or(|before| before.open);
                Some(RequestFacts { open, ..RequestFacts::new(details) })
            }
            EventData::RequestWithdrawn(_) => before.map(|before| RequestFacts { open: false, ..before.clone() }),
            _ => None,
        }
    }
}

/// A request's facts as they stood at log `position`, folded from the events of its
/// stream, `(sequence, data)` in log order; `None` if it did not exist then.
pub fn request_facts_at<'a>(
    events: impl IntoIterator<Item = (u64, &'a EventData)>,
    position: u64,
) -> Option<RequestFacts> {
    events
        .into_iter()
        .take_while(|(sequence, _)| *sequence <= position)
        .fold(None, |facts, (_, data)| RequestFacts::after(facts.as_ref(), data).or(facts))
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
