//! [`Matcher`]: the matching projection of the log. Fed every event in order, it keeps
//! what matching needs of each request and mandate, and each request's live shortlist
//! (at the default limit) in a compact form, so it can say which shortlists an event
//! really changed.
//!
//! An event about a request recomputes that request's shortlist (one pass over the
//! mandates). An event about a mandate (published, revised, closed, budget spent at a
//! conclusion, or expired as the log's date moves on) makes one pass over the requests
//! judging only that pair, with bit masks and no scoring; only requests whose shortlist
//! named the mandate, or that it now enters, are touched: an entry or near miss that
//! enters is inserted in place, and only a shortlist that loses or demotes the mandate,
//! or whose consortia may change, is recomputed.

use std::collections::{BTreeMap, HashMap, HashSet};

use tafel_contract::data::EventData;
use tafel_contract::shortlist::{Consortium, ConsortiumPart, Fit, NearMiss, Shortlist, ShortlistEntry};
use tafel_contract::vocab::{CalendarDate, Instrument};
use tafel_contract::{AggregateId, StoredEvent};

use serde::{Deserialize, Serialize};

use crate::consortium::{self, Candidate};
use crate::eligibility::{Eligible, Rule};
use crate::facts::{HotMandate, HotMandates, MandateFacts, RequestFacts, Verdict, judge, near_miss_detail};
use crate::history::{History, Versions};
use crate::scoring::{self, ScoringTable, Weights};

/// The shortlist length when a query names none, and the length kept live.
pub const DEFAULT_LIMIT: usize = 10;
/// The longest shortlist a query may ask for.
pub const MAX_LIMIT: usize = 100;
/// Most near misses named per shortlist.
pub const MAX_NEAR_MISSES: usize = 5;
/// The fingerprint of a request whose shortlist was never reported.
const NOTHING_PUBLISHED: u64 = 0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "EntryRow", into = "EntryRow")]
struct Entry {
    mandate: u32,
    revision: u32,
    score_tenths: u32,
    fit: Fit,
    max_contribution_eur: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "NearRow", into = "NearRow")]
struct Near {
    mandate: u32,
    revision: u32,
    rule: Rule,
    score_tenths: u32,
}

/// An [`Entry`] as a snapshot keeps it: a row, not an object.
type EntryRow = (u32, u32, u32, Fit, u64);
/// A [`Near`] as a snapshot keeps it.
type NearRow = (u32, u32, Rule, u32);

impl From<Entry> for EntryRow {
    fn from(e: Entry) -> Self {
        (e.mandate, e.revision, e.score_tenths, e.fit, e.max_contribution_eur)
    }
}

impl From<EntryRow> for Entry {
    fn from((mandate, revision, score_tenths, fit, max_contribution_eur): EntryRow) -> Self {
        Self { mandate, revision, score_tenths, fit, max_contribution_eur }
    }
}

impl From<Near> for NearRow {
    fn from(n: Near) -> Self {
        (n.mandate, n.revision, n.rule, n.score_tenths)
    }
}

impl From<NearRow> for Near {
    fn from((mandate, revision, rule, score_tenths): NearRow) -> Self {
        Self { mandate, revision, rule, score_tenths }
    }
}

/// An entry or near miss, for ranking.
trait Ranked {
    fn score_tenths(&self) -> u32;
    fn mandate(&self) -> u32;
}

impl Ranked for Entry {
    fn score_tenths(&self) -> u32 {
        self.score_tenths
    }
    fn mandate(&self) -> u32 {
        self.mandate
    }
}

impl Ranked for Near {
    fn score_tenths(&self) -> u32 {
        self.score_tenths
    }
    fn mandate(&self) -> u32 {
        self.mandate
    }
}

/// A shortlist by index, cheap to keep and compare.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Compact {
    entries: Vec<Entry>,
    has_full_fit: bool,
    near_misses: Vec<Near>,
    /// Each part: mandate, revision, amount, instrument.
    consortia: Vec<Vec<(u32, u32, u64, Instrument)>>,
}

impl Compact {
    fn names(&self, mandate: u32) -> bool {
        self.entries.iter().any(|e| e.mandate == mandate)
            || self.near_misses.iter().any(|n| n.mandate == mandate)
            || self.consortia.iter().flatten().any(|part| part.0 == mandate)
    }
}

/// The matching projection.
#[derive(Clone, Debug)]
pub struct Matcher {
    weights: Weights,
    requests: Vec<RequestFacts>,
    /// Ordered, not hashed: a hash map's growth rehashes every entry at once, a pause
    /// of tens of milliseconds at a quarter of a million requests, under the lock every
    /// submit waits for (a B-tree grows a node at a time).
    request_index: BTreeMap<AggregateId, u32>,
    mandates: Vec<MandateFacts>,
    /// The fields of each mandate read on every pair, in step with `mandates`.
    hot: HotMandates,
    mandate_index: HashMap<AggregateId, u32>,
    live: Vec<Compact>,
    /// A fingerprint of what each live shortlist shows, to report only real changes.
    published: Vec<u64>,
    expiries: BTreeMap<CalendarDate, Vec<u32>>,
    today: Option<CalendarDate>,
    last_sequence: u64,
    /// While hushed, the requests whose shortlists were touched, not yet compared with
    /// what was last reported (see [`Matcher::hush`]).
    hushed: Option<HashSet<u32>>,
    /// Every version of the mandates' facts and of the date, when kept (see
    /// [`Matcher::keeping_history`]).
    history: Option<History>,
}

/// Ranks eligible pairs: score descending, then mandate (or request) id ascending.
fn rank(score: u32, id: &AggregateId) -> (std::cmp::Reverse<u32>, &AggregateId) {
    (std::cmp::Reverse(score), id)
}

impl Matcher {
    pub fn new(table: ScoringTable) -> Self {
        Self {
            weights: Weights::from(table),
            requests: Vec::new(),
            request_index: BTreeMap::new(),
            mandates: Vec::new(),
            hot: HotMandates::default(),
            mandate_index: HashMap::new(),
            live: Vec::new(),
            published: Vec::new(),
            expiries: BTreeMap::new(),
            today: None,
            last_sequence: 0,
            hushed: None,
            history: None,
        }
    }

    /// Keeps every version of the mandates' facts and of the date from now on, so that
    /// past shortlists can be answered without a replay ([`Matcher::shortlists_as_of`],
    /// given the requests' facts then). Call before the first event.
    pub fn keeping_history(mut self) -> Self {
        self.history = Some(History::default());
        self
    }

    /// The versions kept, if history is.
    pub fn history(&self) -> Option<&History> {
        self.history.as_ref()
    }

    /// Stops reporting which shortlists changed, and working it out, until
    /// [`Matcher::speak`]: a replay nobody waits on (a restart, a past shortlist) needs
    /// only where it ends, and comparing every touched shortlist with what was last
    /// reported is most of a replay's cost.
    pub fn hush(&mut self) {
        self.hushed.get_or_insert_with(HashSet::new);
    }

    /// Reports changes again from the next event on; what the shortlists show now counts
    /// as reported (as after an unhushed replay of the same events).
    pub fn speak(&mut self) {
        if let Some(touched) = self.hushed.take() {
            self.republish(touched.into_iter().collect());
        }
    }

    pub fn last_sequence(&self) -> u64 {
        self.last_sequence
    }

    pub fn request_count(&self) -> usize {
        self.requests.len()
    }

    pub fn mandate_count(&self) -> usize {
        self.mandates.len()
    }

    /// Folds one event in; returns the requests whose live shortlist changed.
    pub fn apply(&mut self, event: &StoredEvent) -> Result<Vec<AggregateId>, String> {
        let data = EventData::of_stored(event)?;
        Ok(self.apply_parsed(event, &data))
    }

    /// [`Matcher::apply`] for an event whose data the caller has parsed already.
    pub fn apply_parsed(&mut self, event: &StoredEvent, data: &EventData) -> Vec<AggregateId> {
        let date = event.meta.recordedat.get(..10).and_then(|text| CalendarDate::parse(text).ok());
        self.apply_data(event.meta.sequence, date, data)
    }

    /// Folds in an event's data, committed at `sequence` on `date` (UTC).
    pub fn apply_data(&mut self, sequence: u64, date: Option<CalendarDate>, data: &EventData) -> Vec<AggregateId> {
        self.last_sequence = sequence;
        let mut touched_requests = Vec::new();
        // The mandates this event changes, for the history.
        let mut changed_mandates: Vec<u32> = Vec::new();
        if let Some(date) = date
            && self.today.is_none_or(|today| date > today)
        {
            self.today = Some(date);
            if let Some(history) = &mut self.history {
                History::record(&mut history.days, sequence, date);
            }
            let expired: Vec<u32> =
                self.expiries.range(..date).flat_map(|(_, mandates)| mandates.iter().copied()).collect();
            self.expiries = self.expiries.split_off(&date);
            for mandate in expired {
                self.mandate_changed(mandate, &mut touched_requests);
            }
        }
        match data {
            EventData::RequestSubmitted(_) | EventData::RequestRevised(_) | EventData::RequestWithdrawn(_) => {
                let index = self.request_index.get(data.aggregate_id()).copied();
                let before = index.map(|index| &self.requests[index as usize]);
                if let Some(facts) = RequestFacts::after(before, data) {
                    let index = match index {
                        Some(index) => {
                            self.requests[index as usize] = facts;
                            index
                        }
                        None => {
                            let index = self.requests.len() as u32;
                            self.request_index.insert(facts.request_id.clone(), index);
                            self.requests.push(facts);
                            self.live.push(Compact::default());
                            self.published.push(NOTHING_PUBLISHED);
                            index
                        }
                    };
                    self.request_revised(index, &mut touched_requests);
                }
            }
            EventData::MandatePublished(terms) | EventData::MandateRevised(terms) => {
                let mut facts = MandateFacts::new(terms);
                let index = match self.mandate_index.get(&facts.mandate_id) {
                    Some(&index) => {
                        let old = &self.mandates[index as usize];
                        facts.committed_eur = old.committed_eur;
                        facts.closed = old.closed;
                        facts.revision = old.revision + 1;
                        self.mandates[index as usize] = facts;
                        index
                    }
                    None => {
                        let index = self.mandates.len() as u32;
                        self.mandate_index.insert(facts.mandate_id.clone(), index);
                        self.mandates.push(facts);
                        self.hot.push(self.mandates[index as usize].hot());
                        index
                    }
                };
                self.hot.set(index as usize, self.mandates[index as usize].hot());
                changed_mandates.push(index);
                if let Some(until) = self.mandates[index as usize].valid_until
                    && self.today.is_none_or(|today| until >= today)
                {
                    // Once per date: a revision that keeps the date adds nothing.
                    let due = self.expiries.entry(until).or_default();
                    if !due.contains(&index) {
                        due.push(index);
                    }
                }
                self.mandate_changed(index, &mut touched_requests);
            }
            EventData::MandateClosed(closed) => {
                if let Some(&index) = self.mandate_index.get(&closed.mandate_id) {
                    let mandate = &mut self.mandates[index as usize];
                    mandate.closed = true;
                    mandate.revision += 1;
                    self.hot.set(index as usize, mandate.hot());
                    changed_mandates.push(index);
                    self.mandate_changed(index, &mut touched_requests);
                }
            }
            EventData::RoundtableConcluded(concluded) => {
                let mut touched = Vec::new();
                for commitment in concluded.outcomes.iter().flat_map(|outcome| &outcome.commitments) {
                    if let Some(&index) = self.mandate_index.get(&commitment.mandate_id) {
                        let mandate = &mut self.mandates[index as usize];
                        let cap_before = mandate.cap_eur();
                        mandate.committed_eur += commitment.amount_eur;
                        changed_mandates.push(index);
                        // A commitment changes what matching sees only through the cap
                        // (what is left of a budget, under the ticket maximum): a mandate
                        // without a budget, or with more left than its largest ticket,
                        // shows every shortlist the same, and no pair need be judged again.
                        if mandate.cap_eur() == cap_before {
                            continue;
                        }
                        mandate.revision += 1;
                        self.hot.set(index as usize, mandate.hot());
                        if !touched.contains(&index) {
                            touched.push(index);
                        }
                    }
                }
                for index in touched {
                    self.mandate_changed(index, &mut touched_requests);
                }
            }
            EventData::RequestCoached(_)
            | EventData::RoundtableScheduled(_)
            | EventData::RoundtableAgendaSet(_)
            | EventData::RoundtableAssessed(_)
            | EventData::RoundtableRecused(_) => {}
        }
        if let Some(history) = &mut self.history {
            for index in changed_mandates {
                let index = index as usize;
                if history.mandates.len() <= index {
                    history.mandates.resize_with(index + 1, Versions::new);
                }
                History::record(&mut history.mandates[index], sequence, self.mandates[index].clone());
            }
        }
        match &mut self.hushed {
            Some(hushed) => {
                hushed.extend(touched_requests);
                Vec::new()
            }
            None => self.republish(touched_requests),
        }
    }

    /// Recomputes a shortlist after its mandates changed; what it shows can only have
    /// changed if the compact form did (it carries each mandate's revision).
    fn request_changed(&mut self, request: u32, touched: &mut Vec<u32>) {
        let fresh = self.compute(request, DEFAULT_LIMIT);
        if fresh != self.live[request as usize] {
            self.live[request as usize] = fresh;
            touched.push(request);
        }
    }

    /// Recomputes a shortlist after its request changed: the texts shown may change
    /// with the request even when the compact form does not.
    fn request_revised(&mut self, request: u32, touched: &mut Vec<u32>) {
        self.live[request as usize] = self.compute(request, DEFAULT_LIMIT);
        touched.push(request);
    }

    /// Of the requests whose live shortlist the event touched, returns those whose
    /// shortlist now shows something other than what was last reported (a mandate's new
    /// revision may change nothing a client sees). Compared once the whole event is in,
    /// not at each step: one event may touch a shortlist more than once (the expiries a
    /// new date brings, then the event itself), and a step between can undo itself (a
    /// mandate expires, then is revised back into the same place), so reporting at each
    /// step would report a change no client can see.
    fn republish(&mut self, mut touched: Vec<u32>) -> Vec<AggregateId> {
        touched.sort_unstable();
        touched.dedup();
        let mut changed = Vec::new();
        for request in touched {
            let fingerprint = self.fingerprint(request, &self.live[request as usize]);
            if fingerprint != self.published[request as usize] {
                self.published[request as usize] = fingerprint;
                changed.push(self.requests[request as usize].request_id.clone());
            }
        }
        changed.sort();
        changed
    }

    /// A hash of everything the shortlist shows but its `as_of`. Every field is named
    /// (a field added to the shortlist's types fails to compile here until it is
    /// hashed), and the hash's values never change between builds: fingerprints are
    /// kept in snapshots.
    fn fingerprint(&self, request: u32, compact: &Compact) -> u64 {
        let Shortlist { request_id, as_of: _, entries, consortia, near_misses } = self.expand(request, compact);
        let mut hash = ShownHash::default();
        hash.text(request_id.as_str());
        hash.number(entries.len() as u64);
        for ShortlistEntry { mandate_id, financier, score, fit, max_contribution_eur, reasons } in &entries {
            hash.text(mandate_id.as_str());
            hash.text(financier);
            hash.number(score.to_bits());
            hash.number(u64::from(*fit == Fit::Full));
            hash.number(*max_contribution_eur);
            hash.number(reasons.len() as u64);
            for tafel_contract::shortlist::Reason { criterion, points, detail } in reasons {
                hash.text(criterion);
                hash.number(points.to_bits());
                hash.text(detail);
            }
        }
        hash.number(consortia.len() as u64);
        for Consortium { total_eur, parts } in &consortia {
            hash.number(*total_eur);
            hash.number(parts.len() as u64);
            for ConsortiumPart { mandate_id, amount_eur, instrument } in parts {
                hash.text(mandate_id.as_str());
                hash.number(*amount_eur);
                hash.text(instrument.as_str());
            }
        }
        hash.number(near_misses.len() as u64);
        for NearMiss { mandate_id, financier, failed, detail } in &near_misses {
            hash.text(mandate_id.as_str());
            hash.text(financier);
            hash.text(failed);
            hash.text(detail);
        }
        hash.finish().max(1)
    }

    /// One pass over the requests, judging only the pair with `mandate`.
    fn mandate_changed(&mut self, mandate: u32, touched: &mut Vec<u32>) {
        enum Action {
            Recompute,
            Enter(Entry),
            Near(Near),
        }
        let facts = &self.mandates[mandate as usize];
        let mut actions = Vec::new();
        for (request, live) in self.live.iter().enumerate() {
            let request_facts = &self.requests[request];
            if live.names(mandate) {
                actions.push((request, Action::Recompute));
                continue;
            }
            match judge(request_facts, facts, self.today) {
                // Without a full fit, consortia (or their end) may follow.
                Verdict::Eligible(_) if !live.has_full_fit => actions.push((request, Action::Recompute)),
                Verdict::Eligible(eligible) => {
                    let points = scoring::score(&self.weights, request_facts, facts, Some(eligible));
                    actions.push((
                        request,
                        Action::Enter(Entry {
                            mandate,
                            revision: facts.revision,
                            score_tenths: points.total_tenths(),
                            fit: eligible.fit,
                            max_contribution_eur: eligible.max_contribution_eur,
                        }),
                    ));
                }
                Verdict::NearMiss(rule) => {
                    let score_tenths = scoring::score(&self.weights, request_facts, facts, None).total_tenths();
                    actions
                        .push((request, Action::Near(Near { mandate, revision: facts.revision, rule, score_tenths })));
                }
                Verdict::Neither => {}
            }
        }
        for (request, action) in actions {
            match action {
                Action::Recompute => self.request_changed(request as u32, touched),
                Action::Enter(entry) => {
                    if self.insert_ranked(
                        request,
                        entry.score_tenths,
                        mandate,
                        |live| &mut live.entries,
                        entry,
                        DEFAULT_LIMIT,
                    ) {
                        touched.push(request as u32);
                    }
                }
                Action::Near(near) => {
                    if self.insert_ranked(
                        request,
                        near.score_tenths,
                        mandate,
                        |live| &mut live.near_misses,
                        near,
                        MAX_NEAR_MISSES,
                    ) {
                        touched.push(request as u32);
                    }
                }
            }
        }
    }

    /// Inserts `item` into a ranked list of the request's live shortlist if it ranks
    /// within `keep`; returns whether it did.
    fn insert_ranked<T: Ranked>(
        &mut self,
        request: usize,
        score_tenths: u32,
        mandate: u32,
        list: impl Fn(&mut Compact) -> &mut Vec<T>,
        item: T,
        keep: usize,
    ) -> bool {
        let mandates = &self.mandates;
        let id = &mandates[mandate as usize].mandate_id;
        let items = list(&mut self.live[request]);
        let position = items
            .iter()
            .position(|other| {
                rank(score_tenths, id) < rank(other.score_tenths(), &mandates[other.mandate() as usize].mandate_id)
            })
            .unwrap_or(items.len());
        if position >= keep {
            return false;
        }
        items.insert(position, item);
        items.truncate(keep);
        true
    }

    /// A request's shortlist from scratch: one pass over the mandates.
    fn compute(&self, request: u32, limit: usize) -> Compact {
        let facts = &self.requests[request as usize];
        let mut eligible: Vec<Entry> = Vec::new();
        // The best near misses so far, in rank order: most pairs that miss by one rule
        // rank below the last of them and are let go at once.
        let mut near_misses: Vec<Near> = Vec::with_capacity(MAX_NEAR_MISSES + 1);
        let id = |mandate: u32| &self.mandates[mandate as usize].mandate_id;
        let mut candidates = Vec::with_capacity(self.hot.len().div_ceil(64));
        self.hot.candidates(facts, &mut candidates);
        let rows = self.hot.rows();
        let indexes = candidates.iter().enumerate().flat_map(|(word_index, &word)| {
            let mut word = word;
            std::iter::from_fn(move || {
                (word != 0).then(|| {
                    let bit = word.trailing_zeros() as usize;
                    word &= word - 1;
                    word_index * 64 + bit
                })
            })
        });
        for index in indexes {
            let (hot, full) = (&rows[index], &self.mandates[index]);
            let mandate = &HotMandate { hot, full };
            match judge(facts, mandate, self.today) {
                Verdict::Eligible(fit) => {
                    let points = scoring::score(&self.weights, facts, mandate, Some(fit));
                    eligible.push(Entry {
                        mandate: index as u32,
                        revision: hot.revision(),
                        score_tenths: points.total_tenths(),
                        fit: fit.fit,
                        max_contribution_eur: fit.max_contribution_eur,
                    });
                }
                Verdict::NearMiss(rule) => {
                    let score_tenths = scoring::score(&self.weights, facts, mandate, None).total_tenths();
                    let ranks_before = |other: &Near| {
                        rank(score_tenths, &full.mandate_id) < rank(other.score_tenths, id(other.mandate))
                    };
                    if near_misses.len() == MAX_NEAR_MISSES
                        && near_misses.last().is_some_and(|last| !ranks_before(last))
                    {
                        continue;
                    }
                    let position = near_misses.iter().position(ranks_before).unwrap_or(near_misses.len());
                    near_misses
                        .insert(position, Near { mandate: index as u32, revision: hot.revision(), rule, score_tenths });
                    near_misses.truncate(MAX_NEAR_MISSES);
                }
                Verdict::Neither => {}
            }
        }
        let by_rank = |a: u32, a_id: u32, b: u32, b_id: u32| rank(a, id(a_id)).cmp(&rank(b, id(b_id)));
        let has_full_fit = eligible.iter().any(|e| e.fit == Fit::Full);
        // Consortia need every eligible mandate in rank order; otherwise the top will do.
        let keep = if has_full_fit { limit } else { eligible.len() };
        top(&mut eligible, keep, |a, b| by_rank(a.score_tenths, a.mandate, b.score_tenths, b.mandate));
        near_misses.shrink_to_fit();
        let consortia = if has_full_fit || eligible.len() < consortium::MIN_PARTS {
            Vec::new()
        } else {
            let candidates: Vec<Candidate> = eligible
                .iter()
                .map(|e| Candidate {
                    min_eur: self.mandates[e.mandate as usize].ticket_min_eur,
                    max_eur: e.max_contribution_eur,
                    score_tenths: e.score_tenths,
                })
                .collect();
            consortium::search(facts.amount_eur, &candidates)
                .into_iter()
                .map(|parts| {
                    parts
                        .into_iter()
                        .map(|(candidate, amount)| {
                            let entry = eligible[candidate];
                            let mandate = &self.mandates[entry.mandate as usize];
                            (entry.mandate, entry.revision, amount, shared_instrument(facts, mandate))
                        })
                        .collect()
                })
                .collect()
        };
        let entries = eligible[..eligible.len().min(limit)].to_vec();
        Compact { entries, has_full_fit, near_misses, consortia }
    }

    /// The request's shortlist now, at most `limit` entries (capped at [`MAX_LIMIT`]).
    pub fn shortlist(&self, request_id: &AggregateId, limit: usize) -> Option<Shortlist> {
        let request = *self.request_index.get(request_id)?;
        let limit = limit.min(MAX_LIMIT);
        let compact =
            if limit == DEFAULT_LIMIT { self.live[request as usize].clone() } else { self.compute(request, limit) };
        Some(self.expand(request, &compact))
    }

    /// The shortlists of the requests whose facts at log `position` are `requests`
    /// (no later than [`Matcher::last_sequence`]; each from
    /// [`crate::history::request_facts_at`], `None` for a request that did not exist
    /// then), at most `limit` entries each (capped at [`MAX_LIMIT`]). The same as
    /// [`Matcher::shortlist`] on a matcher that followed the log up to `position` (the
    /// tests hold it to that), but computed from the facts as they stood then: one pass
    /// over the mandates per request, whatever the log's length.
    pub fn shortlists_as_of(
        &self,
        requests: &[Option<RequestFacts>],
        limit: usize,
        position: u64,
    ) -> Result<Vec<Option<Shortlist>>, NoHistory> {
        let history = self.history.as_ref().ok_or(NoHistory)?;
        let mut past = Matcher { weights: self.weights.clone(), ..Matcher::new(ScoringTable::default()) };
        for versions in &history.mandates {
            if let Some(facts) = History::at(versions, position) {
                past.hot.push(facts.hot());
                past.mandates.push(facts.clone());
            }
        }
        past.today = History::at(&history.days, position).copied();
        past.last_sequence = position;
        let limit = limit.min(MAX_LIMIT);
        Ok(requests
            .iter()
            .map(|facts| {
                past.requests.clear();
                past.requests.push(facts.clone()?);
                let compact = past.compute(0, limit);
                Some(past.expand(0, &compact))
            })
            .collect())
    }

    fn expand(&self, request: u32, compact: &Compact) -> Shortlist {
        let facts = &self.requests[request as usize];
        let entries = compact
            .entries
            .iter()
            .map(|entry| {
                let mandate = &self.mandates[entry.mandate as usize];
                let eligible = Eligible { fit: entry.fit, max_contribution_eur: entry.max_contribution_eur };
                let points = scoring::score(&self.weights, facts, mandate, Some(eligible));
                debug_assert_eq!(points.total_tenths(), entry.score_tenths);
                ShortlistEntry {
                    mandate_id: mandate.mandate_id.clone(),
                    financier: mandate.financier.clone(),
                    score: f64::from(entry.score_tenths) / 10.0,
                    fit: entry.fit,
                    max_contribution_eur: entry.max_contribution_eur,
                    reasons: scoring::reasons(points, facts, mandate, Some(eligible)),
                }
            })
            .collect();
        let near_misses = compact
            .near_misses
            .iter()
            .map(|near| {
                let mandate = &self.mandates[near.mandate as usize];
                NearMiss {
                    mandate_id: mandate.mandate_id.clone(),
                    financier: mandate.financier.clone(),
                    failed: near.rule.as_str().into(),
                    detail: near_miss_detail(near.rule, facts, mandate),
                }
            })
            .collect();
        let consortia = compact
            .consortia
            .iter()
            .map(|parts| Consortium {
                total_eur: parts.iter().map(|part| part.2).sum(),
                parts: parts
                    .iter()
                    .map(|&(mandate, _, amount_eur, instrument)| ConsortiumPart {
                        mandate_id: self.mandates[mandate as usize].mandate_id.clone(),
                        amount_eur,
                        instrument,
                    })
                    .collect(),
            })
            .collect();
        Shortlist { request_id: facts.request_id.clone(), as_of: self.last_sequence, entries, consortia, near_misses }
    }

    /// The requests `mandate_id` is eligible for, best first, as `(request, score,
    /// eligibility, points)`; `visible` filters them (visibility is the caller's rule).
    pub fn matches(
        &self,
        mandate_id: &AggregateId,
        limit: usize,
        visible: impl Fn(&AggregateId) -> bool,
    ) -> Option<Vec<MatchEntry>> {
        let mandate = &self.mandates[*self.mandate_index.get(mandate_id)? as usize];
        let mut found: Vec<(u32, usize, Eligible)> = Vec::new();
        for (index, request) in self.requests.iter().enumerate() {
            if let Verdict::Eligible(eligible) = judge(request, mandate, self.today)
                && visible(&request.request_id)
            {
                found.push((
                    scoring::score(&self.weights, request, mandate, Some(eligible)).total_tenths(),
                    index,
                    eligible,
                ));
            }
        }
        found.sort_by(|a, b| rank(a.0, &self.requests[a.1].request_id).cmp(&rank(b.0, &self.requests[b.1].request_id)));
        found.truncate(limit.min(MAX_LIMIT));
        Some(
            found
                .into_iter()
                .map(|(score_tenths, index, eligible)| {
                    let request = &self.requests[index];
                    let points = scoring::score(&self.weights, request, mandate, Some(eligible));
                    MatchEntry {
                        request_id: request.request_id.clone(),
                        organisation: request.organisation.clone(),
                        score: f64::from(score_tenths) / 10.0,
                        fit: eligible.fit,
                        max_contribution_eur: eligible.max_contribution_eur,
                        reasons: scoring::reasons(points, request, mandate, Some(eligible)),
                    }
                })
                .collect(),
        )
    }

    /// Recomputes every live shortlist from scratch, on `threads` threads; returns how
    /// many requests have at least one eligible mandate. (Rebuilding gives the same live
    /// shortlists as following the log; the tests hold it to that.)
    pub fn rebuild(&mut self, threads: usize) -> usize {
        let count = self.requests.len();
        let chunk = count.div_ceil(threads.max(1)).max(1);
        let this = &*self;
        let fresh: Vec<Compact> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..count)
                .step_by(chunk)
                .map(|start| {
                    scope.spawn(move || {
                        (start..(start + chunk).min(count))
                            .map(|r| this.compute(r as u32, DEFAULT_LIMIT))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers.into_iter().flat_map(|worker| worker.join().unwrap_or_default()).collect()
        });
        self.live = fresh;
        // What was reported before the rebuild is unknown now: the next change reports.
        self.published = vec![NOTHING_PUBLISHED; count];
        self.live.iter().filter(|compact| !compact.entries.is_empty()).count()
    }

    /// Whether the live shortlists equal ones computed from scratch.
    pub fn live_equals_rebuilt(&self) -> bool {
        (0..self.requests.len()).all(|request| self.live[request] == self.compute(request as u32, DEFAULT_LIMIT))
    }
}

/// A 64-bit hash of what a shortlist shows (see [`Matcher::fingerprint`]): eight bytes
/// at a time, rotate, xor and multiply (FxHash's step), then a final mix. Its values
/// never change between builds; it tells versions of one shortlist apart, nothing
/// adversarial.
struct ShownHash(u64);

impl Default for ShownHash {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl ShownHash {
    fn word(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn number(&mut self, value: u64) {
        self.word(value);
    }

    /// Length first, so that two texts side by side hash apart from their joins.
    fn text(&mut self, text: &str) {
        self.word(text.len() as u64);
        let mut chunks = text.as_bytes().chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.word(u64::from_le_bytes(word));
        }
        let mut last = [0u8; 8];
        last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.word(u64::from_le_bytes(last));
    }

    fn finish(self) -> u64 {
        // murmur3's finaliser, so that every input bit reaches every output bit.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// A past shortlist was asked of a matcher that keeps no history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("this matcher keeps no history")]
pub struct NoHistory;

/// What a snapshot keeps of a [`Matcher`]: everything but what follows from it (the
/// indexes by id, the hot copies, the weights, which come from the scoring table).
#[derive(Serialize)]
struct ImageRef<'a> {
    requests: &'a [RequestFacts],
    mandates: &'a [MandateFacts],
    live: &'a [Compact],
    published: &'a [u64],
    expiries: Vec<(&'a CalendarDate, &'a Vec<u32>)>,
    today: Option<CalendarDate>,
    last_sequence: u64,
    history: &'a Option<History>,
}

/// A [`Matcher`] as a snapshot holds it; [`Matcher::from_image`] makes it one again.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatcherImage {
    requests: Vec<RequestFacts>,
    mandates: Vec<MandateFacts>,
    live: Vec<Compact>,
    published: Vec<u64>,
    expiries: Vec<(CalendarDate, Vec<u32>)>,
    today: Option<CalendarDate>,
    last_sequence: u64,
    history: Option<History>,
}

impl Matcher {
    /// What a snapshot keeps of this matcher; `None` while hushed (what it last
    /// reported is not known then, so a snapshot waits until it speaks).
    pub fn image(&self) -> Option<impl Serialize + '_> {
        if self.hushed.is_some() {
            return None;
        }
        Some(ImageRef {
            requests: &self.requests,
            mandates: &self.mandates,
            live: &self.live,
            published: &self.published,
            expiries: self.expiries.iter().collect(),
            today: self.today,
            last_sequence: self.last_sequence,
            history: &self.history,
        })
    }

    /// The matcher an [`Matcher::image`] was taken of, scoring with `table` (which must
    /// be the table it scored with). An image that does not hang together is refused.
    pub fn from_image(table: ScoringTable, image: MatcherImage) -> Result<Self, String> {
        let MatcherImage { requests, mandates, live, published, expiries, today, last_sequence, history } = image;
        let requests_agree = live.len() == requests.len()
            && published.len() == requests.len()
            && mandates.iter().all(MandateFacts::regions_agree);
        let indexes_agree = live.iter().all(|compact| {
            let mandate_ok = |m: u32| (m as usize) < mandates.len();
            compact.entries.iter().all(|e| mandate_ok(e.mandate))
                && compact.near_misses.iter().all(|n| mandate_ok(n.mandate))
                && compact.consortia.iter().flatten().all(|part| mandate_ok(part.0))
        }) && expiries.iter().flat_map(|(_, m)| m).all(|&m| (m as usize) < mandates.len());
        let history_agrees = history.as_ref().is_none_or(|h| {
            h.mandates.len() == mandates.len()
                && h.mandates.iter().zip(&mandates).all(|(v, now)| v.last().is_some_and(|(_, last)| last == now))
        });
        if !(requests_agree && indexes_agree && history_agrees) {
            return Err("the matcher's image does not hang together".into());
        }
        let request_index = requests.iter().enumerate().map(|(i, r)| (r.request_id.clone(), i as u32)).collect();
        let mandate_index = mandates.iter().enumerate().map(|(i, m)| (m.mandate_id.clone(), i as u32)).collect();
        let hot = mandates.iter().map(MandateFacts::hot).collect();
        Ok(Self {
            weights: Weights::from(table),
            requests,
            request_index,
            mandates,
            hot,
            mandate_index,
            live,
            published,
            expiries: expiries.into_iter().collect(),
            today,
            last_sequence,
            hushed: None,
            history,
        })
    }
}

/// Keeps the best `keep` of `items`, in order (a partial selection, then a sort of
/// just those), with no spare capacity.
fn top<T>(items: &mut Vec<T>, keep: usize, order: impl Fn(&T, &T) -> std::cmp::Ordering) {
    if items.len() > keep {
        if keep == 0 {
            items.clear();
        } else {
            items.select_nth_unstable_by(keep - 1, &order);
            items.truncate(keep);
        }
    }
    items.sort_by(&order);
    items.shrink_to_fit();
}

/// One request a mandate is eligible for (contract section 6, `matches`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MatchEntry {
    pub request_id: AggregateId,
    pub organisation: String,
    pub score: f64,
    pub fit: Fit,
    pub max_contribution_eur: u64,
    pub reasons: Vec<tafel_contract::shortlist::Reason>,
}

/// The request's most preferred instrument that the mandate takes.
fn shared_instrument(request: &RequestFacts, mandate: &MandateFacts) -> Instrument {
    request
        .instrument_order
        .iter()
        .copied()
        .find(|instrument| mandate.instruments & crate::facts::instrument_mask(&[*instrument]) != 0)
        .unwrap_or(request.preferred_instrument)
}
