//! [`World`]: every aggregate's current state, folded from the log, and the decisions
//! and visibility rules that need more than one aggregate.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tafel_contract::data::{EventData, MandateTerms};
use tafel_contract::reply::ErrorCode;
use tafel_contract::vocab::{CalendarDate, Interest, Role};
use tafel_contract::{AggregateId, AggregateKind, Envelope, PrincipalId, Refusal, StoredEvent};

use crate::actor::Actor;
use crate::mandate::MandateState;
use crate::request::RequestState;
use crate::roundtable::RoundtableState;

/// The log stream an aggregate's events go to: `<aggregate>/<id>`.
pub fn stream_name(kind: AggregateKind, id: &AggregateId) -> String {
    format!("{}/{}", kind.as_str(), id)
}

pub(crate) fn invalid_state(message: impl Into<String>) -> Refusal {
    Refusal::new(ErrorCode::InvalidState, message)
}

fn invalid_state_at(field: impl Into<String>, message: impl Into<String>) -> Refusal {
    Refusal::at(ErrorCode::InvalidState, field, message)
}

fn not_found(kind: AggregateKind, id: &AggregateId) -> Refusal {
    Refusal::new(ErrorCode::NotFound, format!("no {kind} {id}"))
}

/// What a successful decision tells the appender: the stream, the version the decision
/// was made against, and everything else it read, so that the append holds only if
/// none of it has moved (contract 1.1 section 3: a consistency boundary per decision).
/// The appender expects exactly `version` of `stream` and no event on any of `reads`
/// after `position`; when either fails, the decision is made again on the new state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub stream: String,
    pub version: u64,
    /// The log position the decision was made at ([`World::last_sequence`]).
    pub position: u64,
    /// The streams of the other aggregates the decision read (an agenda's requests, a
    /// conclusion's requests and mandates, a schedule's mandates), sorted, no repeats.
    pub reads: Vec<String>,
    /// The streams of other aggregates the event changes without being appended to
    /// them: the mandates whose budgets a conclusion spends.
    pub touches: Vec<String>,
}

/// The current state of every aggregate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct World {
    requests: BTreeMap<AggregateId, RequestState>,
    mandates: BTreeMap<AggregateId, MandateState>,
    roundtables: BTreeMap<AggregateId, RoundtableState>,
    mandates_by_owner: HashMap<PrincipalId, BTreeSet<AggregateId>>,
    /// Indexes for the list queries, so that a principal who sees only some aggregates
    /// is shown them without walking everyone else's.
    requests_by_owner: HashMap<PrincipalId, BTreeSet<AggregateId>>,
    roundtables_by_mandate: HashMap<AggregateId, BTreeSet<AggregateId>>,
    ready_requests: BTreeSet<AggregateId>,
    last_sequence: u64,
    today: Option<CalendarDate>,
    /// Commitments in the log that overdrew a budget: impossible since contract 1.1
    /// (a conclusion's decision holds for its mandates' budgets), possible in a log
    /// written before it. Applied, and listed here to be reported.
    overdrafts: Vec<String>,
}

impl World {
    /// The sequence of the last event applied.
    pub fn last_sequence(&self) -> u64 {
        self.last_sequence
    }

    /// Commitments in the log that overdrew a budget (see the field); empty for a log
    /// written since contract 1.1.
    pub fn overdrafts(&self) -> &[String] {
        &self.overdrafts
    }

    /// The log's current date: the UTC date of the latest event's `recordedat`.
    pub fn today(&self) -> Option<CalendarDate> {
        self.today
    }

    pub fn request(&self, id: &AggregateId) -> Option<&RequestState> {
        self.requests.get(id)
    }

    pub fn mandate(&self, id: &AggregateId) -> Option<&MandateState> {
        self.mandates.get(id)
    }

    pub fn roundtable(&self, id: &AggregateId) -> Option<&RoundtableState> {
        self.roundtables.get(id)
    }

    /// The ids of `kind` in `range` that `actor` may be shown, in order: every one for a
    /// principal who sees everything, else only its candidates (an entrepreneur's own
    /// requests; a financier's ready requests, own mandates and the round tables that
    /// invite them); whether each may really be seen is still for `view` to say.
    pub(crate) fn candidate_ids(
        &self,
        actor: &Actor,
        kind: AggregateKind,
        range: (std::ops::Bound<AggregateId>, std::ops::Bound<AggregateId>),
    ) -> Box<dyn Iterator<Item = AggregateId> + '_> {
        if actor.sees_everything() {
            return self.ids_from(kind, range);
        }
        let none = || -> Box<dyn Iterator<Item = AggregateId> + '_> { Box::new(std::iter::empty()) };
        match (actor.role, kind) {
            (Role::Entrepreneur, AggregateKind::Request) => match self.requests_by_owner.get(&actor.id) {
                Some(own) => Box::new(own.range(range).cloned()),
                None => none(),
            },
            (Role::Financier, AggregateKind::Request) => Box::new(self.ready_requests.range(range).cloned()),
            (Role::Financier, AggregateKind::Mandate) => match self.mandates_by_owner.get(&actor.id) {
                Some(own) => Box::new(own.range(range).cloned()),
                None => none(),
            },
            (Role::Financier, AggregateKind::Roundtable) => {
                let invited: BTreeSet<AggregateId> = self
                    .mandates_by_owner
                    .get(&actor.id)
                    .into_iter()
                    .flatten()
                    .filter_map(|mandate| self.roundtables_by_mandate.get(mandate))
                    .flatten()
                    .cloned()
                    .collect();
                Box::new(invited.into_iter().filter(move |id| std::ops::RangeBounds::contains(&range, id)))
            }
            _ => none(),
        }
    }

    /// The ids of `kind` in `range`, in order (cloned, so the caller may hold no borrow).
    pub(crate) fn ids_from(
        &self,
        kind: AggregateKind,
        range: (std::ops::Bound<AggregateId>, std::ops::Bound<AggregateId>),
    ) -> Box<dyn Iterator<Item = AggregateId> + '_> {
        match kind {
            AggregateKind::Request => Box::new(self.requests.range(range).map(|(id, _)| id.clone())),
            AggregateKind::Mandate => Box::new(self.mandates.range(range).map(|(id, _)| id.clone())),
            AggregateKind::Roundtable => Box::new(self.roundtables.range(range).map(|(id, _)| id.clone())),
        }
    }

    pub fn requests(&self) -> impl Iterator<Item = &RequestState> {
        self.requests.values()
    }

    pub fn mandates(&self) -> impl Iterator<Item = &MandateState> {
        self.mandates.values()
    }

    /// The aggregate's version; 0 when it does not exist.
    pub fn version(&self, kind: AggregateKind, id: &AggregateId) -> u64 {
        match kind {
            AggregateKind::Request => self.requests.get(id).map_or(0, |s| s.version),
            AggregateKind::Mandate => self.mandates.get(id).map_or(0, |s| s.version),
            AggregateKind::Roundtable => self.roundtables.get(id).map_or(0, |s| s.version),
        }
    }

    /// Folds one stored event in. Events come from the log, so they passed every check
    /// when they were appended; an event that does not fit is a broken invariant (a
    /// gap, a version out of step, data that no longer parses) and is reported, not
    /// guessed around.
    pub fn apply(&mut self, event: &StoredEvent) -> Result<(), String> {
        let data = EventData::of_stored(event)?;
        self.apply_data(event, data)
    }

    /// [`World::apply`] for an event whose data the caller has parsed already.
    pub fn apply_data(&mut self, event: &StoredEvent, data: EventData) -> Result<(), String> {
        let meta = &event.meta;
        let envelope = &event.envelope;
        if meta.sequence != self.last_sequence + 1 {
            return Err(format!("event {} follows {}: the log has a gap", meta.sequence, self.last_sequence));
        }
        let kind = envelope.event_type.aggregate();
        let version = self.version(kind, &envelope.subject);
        if meta.streamversion != version + 1 {
            return Err(format!(
                "event {} has stream version {}, but {kind} {} is at {version}",
                meta.sequence, meta.streamversion, envelope.subject
            ));
        }
        let owner = meta.principal.clone();
        let at = meta.recordedat.as_str();
        let missing = || format!("event {} names {kind} {} that does not exist", meta.sequence, envelope.subject);
        match data {
            EventData::RequestSubmitted(details) => {
                self.requests_by_owner.entry(owner.clone()).or_default().insert(details.request_id.clone());
                self.requests.insert(details.request_id.clone(), RequestState::submitted(owner, details, at));
            }
            EventData::MandatePublished(terms) => {
                self.mandates_by_owner.entry(owner.clone()).or_default().insert(terms.mandate_id.clone());
                self.mandates.insert(terms.mandate_id.clone(), MandateState::published(owner, terms, at));
            }
            EventData::RoundtableScheduled(data) => {
                for mandate_id in &data.mandate_ids {
                    self.roundtables_by_mandate
                        .entry(mandate_id.clone())
                        .or_default()
                        .insert(data.roundtable_id.clone());
                }
                self.roundtables.insert(data.roundtable_id.clone(), RoundtableState::scheduled(owner, &data));
            }
            other => {
                self.apply_existing(other, meta.sequence, owner, at).ok_or_else(missing)?;
            }
        }
        match kind {
            AggregateKind::Request => {
                let state = self.requests.get_mut(&envelope.subject).ok_or_else(missing)?;
                state.version = meta.streamversion;
                state.updated_at = at.to_owned();
                if state.is_ready() {
                    self.ready_requests.insert(envelope.subject.clone());
                } else {
                    self.ready_requests.remove(&envelope.subject);
                }
            }
            AggregateKind::Mandate => {
                let state = self.mandates.get_mut(&envelope.subject).ok_or_else(missing)?;
                state.version = meta.streamversion;
                state.updated_at = at.to_owned();
            }
            AggregateKind::Roundtable => {
                self.roundtables.get_mut(&envelope.subject).ok_or_else(missing)?.version = meta.streamversion;
            }
        }
        self.last_sequence = meta.sequence;
        if let Some(date) = at.get(..10).and_then(|text| CalendarDate::parse(text).ok()) {
            self.today = Some(self.today.map_or(date, |today| today.max(date)));
        }
        Ok(())
    }

    /// Applies an event to an existing aggregate; `None` when it does not exist.
    fn apply_existing(&mut self, data: EventData, sequence: u64, principal: PrincipalId, at: &str) -> Option<()> {
        match data {
            EventData::RoundtableConcluded(concluded) => {
                self.roundtables.get_mut(&concluded.roundtable_id)?.concluded(&concluded.outcomes);
                for commitment in concluded.outcomes.iter().flat_map(|o| &o.commitments) {
                    let mandate = self.mandates.get_mut(&commitment.mandate_id)?;
                    if let Some(overdraft) = mandate.committed(commitment.amount_eur) {
                        self.overdrafts.push(format!("event {sequence}: {overdraft}"));
                    }
                }
            }
            EventData::RequestRevised(details) => self.requests.get_mut(&details.request_id)?.revised(details),
            EventData::RequestCoached(coached) => self.requests.get_mut(&coached.request_id)?.coached(&coached),
            EventData::RequestWithdrawn(withdrawn) => self.requests.get_mut(&withdrawn.request_id)?.withdrawn(),
            EventData::MandateRevised(terms) => self.mandates.get_mut(&terms.mandate_id)?.revised(terms),
            EventData::MandateClosed(closed) => self.mandates.get_mut(&closed.mandate_id)?.closed(),
            EventData::RoundtableAgendaSet(agenda) => {
                self.roundtables.get_mut(&agenda.roundtable_id)?.agenda_set(&agenda, sequence)
            }
            EventData::RoundtableAssessed(assessed) => {
                self.roundtables.get_mut(&assessed.roundtable_id)?.assessed(principal, &assessed, at)
            }
            EventData::RoundtableRecused(recused) => {
                self.roundtables.get_mut(&recused.roundtable_id)?.recused(&recused)
            }
            EventData::RequestSubmitted(_) | EventData::MandatePublished(_) | EventData::RoundtableScheduled(_) => {
                unreachable!("creating events are applied by World::apply")
            }
        }
        Some(())
    }

    /// Steps 5-7 of contract section 3 for an event that passed steps 1-4.
    pub fn decide(&self, actor: &Actor, envelope: &Envelope, data: &EventData) -> Result<Decision, Refusal> {
        let event_type = envelope.event_type;
        let kind = event_type.aggregate();
        let id = &envelope.subject;
        let current = self.version(kind, id);

        if let EventData::RequestCoached(coached) = data
            && coached.coach != actor.id
        {
            return Err(Refusal::at(
                ErrorCode::InvalidData,
                "data.coach",
                format!("{} must be the publishing coach {}", coached.coach, actor.id),
            ));
        }

        if event_type.creates_aggregate() {
            if current > 0 {
                return Err(Refusal::new(ErrorCode::VersionConflict, format!("{kind} {id} exists already")));
            }
        } else {
            if current == 0 || !self.can_see(actor, kind, id) {
                return Err(not_found(kind, id));
            }
            self.check_ownership(actor, data)?;
        }
        if let Some(expected) = envelope.expectedversion
            && expected != current
        {
            return Err(Refusal::new(
                ErrorCode::VersionConflict,
                format!("{kind} {id} is at version {current}, not the expected {expected}"),
            ));
        }
        self.check_state(data)?;
        let (reads, touches) = Self::read_set(data);
        Ok(Decision { stream: stream_name(kind, id), version: current, position: self.last_sequence, reads, touches })
    }

    /// The other aggregates a decision on `data` reads, and those it changes without
    /// being appended to them. Ownership is not among the reads: an aggregate's owner
    /// never changes.
    fn read_set(data: &EventData) -> (Vec<String>, Vec<String>) {
        let request = |id| stream_name(AggregateKind::Request, id);
        let mandate = |id| stream_name(AggregateKind::Mandate, id);
        let (mut reads, mut touches): (Vec<String>, Vec<String>) = match data {
            EventData::RoundtableScheduled(d) => (d.mandate_ids.iter().map(mandate).collect(), Vec::new()),
            EventData::RoundtableAgendaSet(d) => (d.request_ids.iter().map(request).collect(), Vec::new()),
            EventData::RoundtableConcluded(d) => {
                let spent: Vec<String> =
                    d.outcomes.iter().flat_map(|o| &o.commitments).map(|c| mandate(&c.mandate_id)).collect();
                let reads = d.outcomes.iter().map(|o| request(&o.request_id)).chain(spent.iter().cloned()).collect();
                (reads, spent)
            }
            _ => (Vec::new(), Vec::new()),
        };
        for streams in [&mut reads, &mut touches] {
            streams.sort_unstable();
            streams.dedup();
        }
        (reads, touches)
    }

    /// Step 5's ownership half: only owners change their requests and mandates, and a
    /// financier assesses or recuses only with its own mandate.
    fn check_ownership(&self, actor: &Actor, data: &EventData) -> Result<(), Refusal> {
        let forbidden = |what: String| Err(Refusal::new(ErrorCode::Forbidden, what));
        match data {
            EventData::RequestRevised(d) => self.owns_request(actor, &d.request_id),
            EventData::RequestWithdrawn(d) => self.owns_request(actor, &d.request_id),
            EventData::MandateRevised(d) => self.owns_mandate(actor, &d.mandate_id, "mandate_id"),
            EventData::MandateClosed(d) => self.owns_mandate(actor, &d.mandate_id, "mandate_id"),
            EventData::RoundtableAssessed(d) => self.owns_mandate(actor, &d.mandate_id, "data.mandate_id"),
            EventData::RoundtableRecused(d) => self.owns_mandate(actor, &d.mandate_id, "data.mandate_id"),
            EventData::RoundtableAgendaSet(_) | EventData::RoundtableConcluded(_) if actor.role != Role::Organiser => {
                forbidden("only organisers run round tables".into())
            }
            _ => Ok(()),
        }
    }

    fn owns_request(&self, actor: &Actor, id: &AggregateId) -> Result<(), Refusal> {
        match self.requests.get(id) {
            Some(request) if request.owner == actor.id => Ok(()),
            Some(_) => Err(Refusal::new(ErrorCode::Forbidden, format!("request {id} belongs to someone else"))),
            None => Err(not_found(AggregateKind::Request, id)),
        }
    }

    fn owns_mandate(&self, actor: &Actor, id: &AggregateId, field: &str) -> Result<(), Refusal> {
        match self.mandates.get(id) {
            Some(mandate) if mandate.owner == actor.id => Ok(()),
            // Another's mandate answers exactly as a missing one, so that no financier
            // learns which mandates others hold (contract 1.1 section 3, step 5).
            Some(_) | None => Err(Refusal::at(ErrorCode::NotFound, field, format!("no mandate {id}"))),
        }
    }

    /// Step 7: whether the aggregates' states allow the event.
    fn check_state(&self, data: &EventData) -> Result<(), Refusal> {
        match data {
            EventData::RequestSubmitted(_) | EventData::MandatePublished(_) => Ok(()),
            EventData::RequestRevised(d) => self.existing_request(&d.request_id)?.decide_change(),
            EventData::RequestCoached(d) => self.existing_request(&d.request_id)?.decide_change(),
            EventData::RequestWithdrawn(d) => self.existing_request(&d.request_id)?.decide_change(),
            EventData::MandateRevised(d) => self.existing_mandate(&d.mandate_id)?.decide_change(),
            EventData::MandateClosed(d) => self.existing_mandate(&d.mandate_id)?.decide_change(),
            EventData::RoundtableScheduled(d) => {
                for (index, mandate_id) in d.mandate_ids.iter().enumerate() {
                    match self.mandates.get(mandate_id) {
                        Some(mandate) if !mandate.is_closed() => {}
                        Some(_) => {
                            return Err(invalid_state_at(
                                format!("data.mandate_ids[{index}]"),
                                format!("mandate {mandate_id} is closed"),
                            ));
                        }
                        None => {
                            return Err(invalid_state_at(
                                format!("data.mandate_ids[{index}]"),
                                format!("no mandate {mandate_id}"),
                            ));
                        }
                    }
                }
                Ok(())
            }
            EventData::RoundtableAgendaSet(d) => {
                self.open_roundtable(&d.roundtable_id)?;
                for (index, request_id) in d.request_ids.iter().enumerate() {
                    let ready = self.requests.get(request_id).is_some_and(RequestState::is_ready);
                    if !ready {
                        return Err(invalid_state_at(
                            format!("data.request_ids[{index}]"),
                            format!(
                                "request {request_id} is not ready (coached as ready, and not revised or withdrawn since)"
                            ),
                        ));
                    }
                }
                Ok(())
            }
            EventData::RoundtableAssessed(d) => {
                let table = self.open_roundtable(&d.roundtable_id)?;
                Self::check_seat(table, &d.mandate_id, &d.request_id)?;
                if table.has_recused(&d.mandate_id, &d.request_id) {
                    return Err(invalid_state(format!(
                        "mandate {} has recused itself from request {}",
                        d.mandate_id, d.request_id
                    )));
                }
                Ok(())
            }
            EventData::RoundtableRecused(d) => {
                let table = self.open_roundtable(&d.roundtable_id)?;
                Self::check_seat(table, &d.mandate_id, &d.request_id)?;
                if table.has_recused(&d.mandate_id, &d.request_id) {
                    return Err(invalid_state(format!("mandate {} has recused itself already", d.mandate_id)));
                }
                Ok(())
            }
            EventData::RoundtableConcluded(d) => self.check_conclusion(d),
        }
    }

    fn existing_request(&self, id: &AggregateId) -> Result<&RequestState, Refusal> {
        self.requests.get(id).ok_or_else(|| not_found(AggregateKind::Request, id))
    }

    fn existing_mandate(&self, id: &AggregateId) -> Result<&MandateState, Refusal> {
        self.mandates.get(id).ok_or_else(|| not_found(AggregateKind::Mandate, id))
    }

    fn open_roundtable(&self, id: &AggregateId) -> Result<&RoundtableState, Refusal> {
        let table = self.roundtables.get(id).ok_or_else(|| not_found(AggregateKind::Roundtable, id))?;
        if table.is_concluded() {
            return Err(invalid_state(format!("round table {id} is concluded")));
        }
        Ok(table)
    }

    fn check_seat(table: &RoundtableState, mandate_id: &AggregateId, request_id: &AggregateId) -> Result<(), Refusal> {
        if !table.invites(mandate_id) {
            return Err(invalid_state_at("data.mandate_id", format!("mandate {mandate_id} is not invited")));
        }
        if !table.has_on_agenda(request_id) {
            return Err(invalid_state_at("data.request_id", format!("request {request_id} is not on the agenda")));
        }
        Ok(())
    }

    fn check_conclusion(&self, d: &tafel_contract::data::Concluded) -> Result<(), Refusal> {
        let table = self.open_roundtable(&d.roundtable_id)?;
        let mut committed_here: HashMap<&AggregateId, u64> = HashMap::new();
        for (index, outcome) in d.outcomes.iter().enumerate() {
            let path = format!("data.outcomes[{index}]");
            if !table.has_on_agenda(&outcome.request_id) {
                return Err(invalid_state_at(
                    format!("{path}.request_id"),
                    format!("request {} is not on the agenda", outcome.request_id),
                ));
            }
            let request = self.existing_request(&outcome.request_id)?;
            for (position, commitment) in outcome.commitments.iter().enumerate() {
                let field = format!("{path}.commitments[{position}]");
                let mandate_id = &commitment.mandate_id;
                if !table.invites(mandate_id) {
                    return Err(invalid_state_at(
                        format!("{field}.mandate_id"),
                        format!("mandate {mandate_id} is not invited"),
                    ));
                }
                let interested = table
                    .assessment(mandate_id, &outcome.request_id)
                    .is_some_and(|a| matches!(a.assessed.interest, Interest::Yes | Interest::Maybe));
                if !interested {
                    return Err(invalid_state_at(
                        format!("{field}.mandate_id"),
                        format!("mandate {mandate_id} did not assess request {} with yes or maybe", outcome.request_id),
                    ));
                }
                let mandate = self.existing_mandate(mandate_id)?;
                let terms: &MandateTerms = &mandate.terms;
                if commitment.amount_eur < terms.ticket_min_eur || commitment.amount_eur > terms.ticket_max_eur {
                    return Err(invalid_state_at(
                        format!("{field}.amount_eur"),
                        format!(
                            "{} EUR is outside mandate {mandate_id}'s tickets of {}-{} EUR",
                            commitment.amount_eur, terms.ticket_min_eur, terms.ticket_max_eur
                        ),
                    ));
                }
                if !terms.instruments.contains(&commitment.instrument)
                    || !request.details.instruments.contains(&commitment.instrument)
                {
                    return Err(invalid_state_at(
                        format!("{field}.instrument"),
                        format!("{} is not an instrument both sides accept", commitment.instrument),
                    ));
                }
                let total = committed_here.entry(mandate_id).or_insert(0);
                *total += commitment.amount_eur;
                if let Some(remaining) = mandate.remaining_budget_eur
                    && *total > remaining
                {
                    return Err(invalid_state_at(
                        format!("{field}.amount_eur"),
                        format!("mandate {mandate_id} has {remaining} EUR of budget left"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether `actor` may see the aggregate (contract section 2). What it may not see
    /// is answered `not_found`, exactly as what does not exist.
    pub fn can_see(&self, actor: &Actor, kind: AggregateKind, id: &AggregateId) -> bool {
        match kind {
            AggregateKind::Request => self.requests.get(id).is_some_and(|r| self.can_see_request(actor, r)),
            AggregateKind::Mandate => {
                self.mandates.get(id).is_some_and(|m| actor.sees_everything() || m.owner == actor.id)
            }
            AggregateKind::Roundtable => self.roundtables.get(id).is_some_and(|t| {
                actor.sees_everything()
                    || (actor.role == Role::Financier && t.mandate_ids.iter().any(|m| self.owns(actor, m)))
            }),
        }
    }

    /// Whether `actor` may see the request's shortlist (and the shortlists an agenda
    /// froze of it): the request's owner, coaches, organisers and admins.
    pub fn can_see_shortlist(&self, actor: &Actor, request_id: &AggregateId) -> bool {
        actor.sees_shortlists() && self.can_see(actor, AggregateKind::Request, request_id)
    }

    fn owns(&self, actor: &Actor, mandate_id: &AggregateId) -> bool {
        self.mandates.get(mandate_id).is_some_and(|m| m.owner == actor.id)
    }

    /// An entrepreneur sees its own requests; a financier a `ready` request for which
    /// one of its mandates is eligible or invited to a round table that has it on the
    /// agenda.
    fn can_see_request(&self, actor: &Actor, request: &RequestState) -> bool {
        match actor.role {
            Role::Coach | Role::Organiser | Role::Admin => true,
            Role::Entrepreneur => request.owner == actor.id,
            Role::Financier => {
                if !request.is_ready() {
                    return false;
                }
                let no_mandates = BTreeSet::new();
                let own = self.mandates_by_owner.get(&actor.id).unwrap_or(&no_mandates);
                let eligible = own.iter().filter_map(|id| self.mandates.get(id)).any(|mandate| {
                    tafel_matcher::check(
                        &request.details,
                        request.is_open(),
                        &mandate.terms,
                        mandate.standing(),
                        self.today,
                    )
                    .is_ok()
                });
                eligible
                    || self.roundtables.values().any(|table| {
                        table.has_on_agenda(&request.request_id) && table.mandate_ids.iter().any(|m| own.contains(m))
                    })
            }
        }
    }

    /// The aggregate's state as `actor` may see it, or `None` (not found). Before a round
    /// table is concluded a financier sees only its own assessments, recusals and
    /// invited mandates there.
    pub fn view(&self, actor: &Actor, kind: AggregateKind, id: &AggregateId) -> Option<Value> {
        if !self.can_see(actor, kind, id) {
            return None;
        }
        let value = match kind {
            AggregateKind::Request => serde_json::to_value(self.requests.get(id)?),
            AggregateKind::Mandate => serde_json::to_value(self.mandates.get(id)?),
            AggregateKind::Roundtable => {
                let mut table = self.roundtables.get(id)?.clone();
                if actor.role == Role::Financier && !table.is_concluded() {
                    table.assessments.retain(|a| a.financier == actor.id);
                    table.recusals.retain(|r| self.owns(actor, &r.mandate_id));
                }
                let joint = crate::joint::agenda_items(
                    &table,
                    |request| self.requests.get(request).cloned(),
                    |mandate| self.mandates.get(mandate).cloned(),
                );
                // Nor which other mandates are invited: no financier learns which
                // mandates others hold (contract 1.1 section 3, step 5) before the
                // conclusion makes the assessments, and so their mandates, visible.
                if actor.role == Role::Financier && !table.is_concluded() {
                    table.mandate_ids.retain(|m| self.owns(actor, m));
                }
                serde_json::to_value(table).map(|mut value| {
                    value["joint"] = serde_json::to_value(joint).unwrap_or_default();
                    value
                })
            }
        };
        value.ok()
    }
}
