//! A generated programme written straight through the store, for `tafel bench scale`
//! and for tests that need a realistic log of any length: mandates published (some
//! revised, closed or published later), requests submitted (some revised, some
//! withdrawn) and coached, round tables scheduled, given agendas, assessed and concluded
//! with commitments that spend budgets. Every event is checked by the domain's own
//! decision before it is appended, so the log replays as a real one does. The same
//! shape and seed give the same log.

use serde_json::{Value, json};
use tafel_contract::data::EventData;
use tafel_contract::envelope::format_recorded_at;
use tafel_contract::vocab::Role;
use tafel_contract::{PrincipalId, RecordedMeta, StoredEvent, SubmitRoute, parse_envelope};
use tafel_domain::{Actor, World};
use tafel_matcher::generate::Random;
use tafel_store::{AppendBatch, AppendCondition, EventLog, ExpectedVersion, NewEvent, SledLog};

/// The budget of the mandates that have one: spent after a few dozen commitments.
const BUDGET_EUR: u64 = 5_000_000;
/// Most events in one generated append (the store's own limit is higher).
const MAX_BATCH_EVENTS: usize = 64;

/// How a generated programme looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Mandates published before anything else.
    pub mandates: usize,
    /// Requests between two round tables; the last `agenda` of them go on its agenda.
    pub requests_per_table: usize,
    pub agenda: usize,
    /// Mandates invited to each round table.
    pub invited: usize,
    /// Varies which requests are revised and withdrawn, the interest stated, and when
    /// mandates are closed or published later.
    pub seed: u64,
}

impl Shape {
    /// The shape `tafel bench scale` measures: 200 mandates, rounds of 20 requests.
    pub fn bench() -> Self {
        Self { mandates: 200, requests_per_table: 20, agenda: 5, invited: 5, seed: 1 }
    }

    /// A small programme for tests: few mandates, short rounds.
    pub fn small(seed: u64) -> Self {
        Self { mandates: 6, requests_per_table: 4, agenda: 2, invited: 3, seed }
    }
}

/// What was written.
#[derive(Clone, Debug, Default)]
pub struct Written {
    /// The log's last sequence.
    pub events: u64,
    /// `(sequence, request id)` of each request's submission, in order.
    pub requests: Vec<(u64, String)>,
}

/// The programme, one event after another, each decided by a local `World` before it is
/// appended (so the log holds only what Tafel would have accepted).
struct Programme {
    world: World,
    now_ms: i64,
    pending: Vec<(AppendBatch, String)>,
    written: Written,
}

/// The largest ticket of mandate `m`: every fifth carries at most 150 000, below the
/// larger requests (so they fit in part, and consortia are searched).
fn ticket_max(m: usize) -> u64 {
    if m.is_multiple_of(5) { 150_000 } else { 1_000_000 }
}

/// Every fourth mandate has a budget, which commitments spend (so conclusions change
/// what the matcher sees).
fn budget(m: usize) -> Option<u64> {
    (m % 4 == 1).then_some(BUDGET_EUR)
}

fn request_data(id: &str, k: usize, title: &str) -> Value {
    json!({"request_id": id, "organisation": {"name": format!("Onderneming {k}"), "kvk": format!("{:08}", k % 100_000_000),
           "region": "NL324"}, "title": title, "summary": "Een aanvraag uit de generator van Tafel.",
           "amount_eur": 50_000 + (k % 10) as u64 * 25_000, "instruments": ["loan"], "stage": "growth",
           "impact_themes": [1 + k % 17], "certifications": []})
}

fn mandate_data(id: &str, m: usize) -> Value {
    json!({"mandate_id": id, "financier": {"name": format!("Financier {}", m % 50), "kind": "impact_fund"},
           "ticket_min_eur": 10_000, "ticket_max_eur": ticket_max(m), "instruments": ["loan", "grant", "equity"],
           "stages": ["early_revenue", "growth", "mature"], "impact_themes": if m.is_multiple_of(3) { json!([]) } else { json!([1 + m % 17]) },
           "regions": [], "required_certifications": [], "co_financing": true, "budget_eur": budget(m)})
}

fn financier(m: usize) -> String {
    format!("f{}", m % 50)
}

impl Programme {
    fn event(
        &mut self,
        principal: &str,
        role: Role,
        event_type: &str,
        subject: &str,
        data: Value,
    ) -> std::io::Result<()> {
        let sequence = self.world.last_sequence() + 1;
        let actor = Actor::new(PrincipalId::parse(principal).map_err(std::io::Error::other)?, role);
        let raw = json!({"specversion": "1.0", "id": format!("g{sequence}"), "source": "/generated",
                         "type": event_type, "subject": subject, "data": data});
        let raw = serde_json::to_vec(&raw).map_err(std::io::Error::other)?;
        let envelope = parse_envelope(&raw, &SubmitRoute::http(&actor.id)).map_err(std::io::Error::other)?;
        let data = EventData::parse(envelope.event_type, &envelope.subject, &envelope.data)
            .map_err(|refusal| std::io::Error::other(refusal.to_string()))?;
        let decision = self
            .world
            .decide(&actor, &envelope, &data)
            .map_err(|refusal| std::io::Error::other(format!("{event_type} {subject}: {refusal}")))?;
        let stored = StoredEvent {
            meta: RecordedMeta {
                sequence,
                streamversion: decision.version + 1,
                principal: actor.id.clone(),
                recordedat: format_recorded_at(self.now_ms),
            },
            envelope: envelope.clone(),
        };
        self.world.apply_data(&stored, data).map_err(std::io::Error::other)?;
        let payload = serde_json::to_vec(&envelope).map_err(std::io::Error::other)?;
        let batch = AppendBatch {
            stream: decision.stream,
            expected: ExpectedVersion::Exactly(decision.version),
            events: vec![NewEvent {
                id: envelope.id.to_string(),
                principal: actor.id.to_string(),
                identity: envelope.identity(&actor.id),
                payload,
            }],
            condition: AppendCondition::default(),
            touches: Vec::new(),
        };
        self.pending.push((batch, envelope.id.to_string()));
        if event_type == "tafel.request.submitted" {
            self.written.requests.push((sequence, subject.to_owned()));
        }
        Ok(())
    }

    fn mandate(&mut self, m: usize, event_type: &str) -> std::io::Result<()> {
        let id = format!("m{m}");
        self.event(&financier(m), Role::Financier, event_type, &id, mandate_data(&id, m))
    }
}

/// Writes about `target` events of a programme of `shape` to `log` (which must be
/// empty), at least one round; returns what it wrote.
pub async fn write(log: &SledLog, target: u64, shape: Shape) -> std::io::Result<Written> {
    if log.last_sequence() != 0 {
        return Err(std::io::Error::other("a programme is written to an empty log"));
    }
    let mut random = Random::new(shape.seed);
    let mut programme = Programme {
        world: World::default(),
        now_ms: 1_609_459_200_000,
        pending: Vec::new(),
        written: Written::default(),
    }; // 2021-01-01
    let mut mandates = shape.mandates.max(shape.invited);
    for m in 0..mandates {
        programme.mandate(m, "tafel.mandate.published")?;
    }
    let mut closed = vec![false; mandates];
    let mut committed = vec![0u64; mandates];
    let (mut k, mut table) = (0usize, 0usize);
    while table == 0 || programme.world.last_sequence() < target {
        // A round of requests: submitted (some revised first), coached ready; one of the
        // round's early ones withdrawn now and then.
        let first = k;
        for _ in 0..shape.requests_per_table.max(shape.agenda) {
            let (id, owner) = (format!("r{k}"), format!("e{}", k % 100));
            programme.event(
                &owner,
                Role::Entrepreneur,
                "tafel.request.submitted",
                &id,
                request_data(&id, k, "Een aanvraag"),
            )?;
            if random.below(10) == 3 {
                programme.event(
                    &owner,
                    Role::Entrepreneur,
                    "tafel.request.revised",
                    &id,
                    request_data(&id, k, "Een betere aanvraag"),
                )?;
            }
            let coached = json!({"request_id": id, "coach": "c", "readiness": "ready", "notes": "Klaar voor tafel."});
            programme.event("c", Role::Coach, "tafel.request.coached", &id, coached)?;
            programme.now_ms += 3_600_000;
            k += 1;
        }
        let agenda: Vec<String> = (k - shape.agenda..k).map(|r| format!("r{r}")).collect();
        if random.below(3) == 1 && first + shape.agenda < k {
            let id = format!("r{first}");
            let reason = json!({"request_id": id, "reason": "Elders gefinancierd."});
            programme.event(
                &format!("e{}", first % 100),
                Role::Entrepreneur,
                "tafel.request.withdrawn",
                &id,
                reason,
            )?;
        }
        match random.below(20) {
            // A mandate revised, one closed, or a new one published.
            0..=3 => {
                let m = random.below(mandates as u64) as usize;
                if !closed[m] {
                    programme.mandate(m, "tafel.mandate.revised")?;
                }
            }
            4 => {
                let m = random.below(mandates as u64) as usize;
                let open = closed.iter().filter(|c| !**c).count();
                if !closed[m] && open > shape.invited {
                    let data = json!({"mandate_id": format!("m{m}"), "reason": "Het fonds is vol."});
                    programme.event(&financier(m), Role::Financier, "tafel.mandate.closed", &format!("m{m}"), data)?;
                    closed[m] = true;
                }
            }
            5 => {
                programme.mandate(mandates, "tafel.mandate.published")?;
                mandates += 1;
                closed.push(false);
                committed.push(0);
            }
            _ => {}
        }
        // A round table over the round's last requests, with open mandates taking turns.
        let id = format!("t{table}");
        let open: Vec<usize> = (0..mandates).filter(|m| !closed[*m]).collect();
        let invited: Vec<usize> = (0..shape.invited).map(|i| open[(table * shape.invited + i) % open.len()]).collect();
        let date = format_recorded_at(programme.now_ms + 30 * 86_400_000)[..10].to_owned();
        let scheduled = json!({"roundtable_id": id, "title": "Ronde tafel", "date": date,
                               "mandate_ids": invited.iter().map(|m| format!("m{m}")).collect::<Vec<_>>()});
        programme.event("o", Role::Organiser, "tafel.roundtable.scheduled", &id, scheduled)?;
        let agenda_set = json!({"roundtable_id": id, "request_ids": agenda});
        programme.event("o", Role::Organiser, "tafel.roundtable.agenda_set", &id, agenda_set)?;
        let mut yes: Vec<(String, usize)> = Vec::new();
        for request in &agenda {
            for m in &invited {
                let interest = if random.below(3) == 0 { "no" } else { "yes" };
                if interest == "yes" {
                    yes.push((request.clone(), *m));
                }
                programme.event(
                    &financier(*m),
                    Role::Financier,
                    "tafel.roundtable.assessed",
                    &id,
                    json!({"roundtable_id": id, "request_id": request, "mandate_id": format!("m{m}"),
                           "interest": interest, "scores": {"impact": 4, "team": 3, "financials": 3}}),
                )?;
            }
        }
        // One commitment per request, from the first mandate that said yes and can still
        // carry it (within its ticket and what is left of its budget).
        let mut outcomes = Vec::new();
        for request in &agenda {
            let r: usize = request[1..].parse().unwrap_or(0);
            let asked = programme
                .world
                .request(&tafel_contract::AggregateId::parse(request).map_err(std::io::Error::other)?)
                .map_or(50_000 + (r % 10) as u64 * 25_000, |state| state.details.amount_eur);
            let carrier = yes.iter().filter(|(on, _)| on == request).find_map(|(_, m)| {
                let amount = asked.min(ticket_max(*m));
                let fits = budget(*m).is_none_or(|budget| committed[*m] + amount <= budget);
                fits.then_some((*m, amount))
            });
            let commitments = match carrier {
                Some((m, amount)) => {
                    committed[m] += amount;
                    vec![json!({"mandate_id": format!("m{m}"), "amount_eur": amount, "instrument": "loan"})]
                }
                None => Vec::new(),
            };
            outcomes.push(json!({"request_id": request, "commitments": commitments}));
        }
        let concluded = json!({"roundtable_id": id, "outcomes": outcomes});
        programme.event("o", Role::Organiser, "tafel.roundtable.concluded", &id, concluded)?;
        table += 1;
        programme.now_ms += 86_400_000;
        flush(log, &mut programme.pending).await?;
    }
    programme.written.events = programme.world.last_sequence();
    Ok(programme.written)
}

/// Appends what is pending, in order: consecutive events of one stream (a request's
/// submission and coaching, a round table's assessments) as one batch, one batch after
/// another (concurrent appends may be committed in another order); checks that each
/// event landed where the generator put it.
async fn flush(log: &SledLog, pending: &mut Vec<(AppendBatch, String)>) -> std::io::Result<()> {
    let mut merged: Vec<AppendBatch> = Vec::new();
    for (batch, _) in std::mem::take(pending) {
        match merged.last_mut() {
            Some(last) if last.stream == batch.stream && last.events.len() < MAX_BATCH_EVENTS => {
                last.events.extend(batch.events)
            }
            _ => merged.push(batch),
        }
    }
    for batch in merged {
        let expected = log.last_sequence() + 1;
        let first_id = batch.events.first().map(|event| event.id.clone()).unwrap_or_default();
        let appended = log.append(batch).await.map_err(|e| std::io::Error::other(format!("{first_id}: {e}")))?;
        let landed = appended.positions.first().map(|position| position.sequence);
        if landed != Some(expected) {
            return Err(std::io::Error::other(format!("{first_id} landed at {landed:?}, not {expected}")));
        }
    }
    Ok(())
}
