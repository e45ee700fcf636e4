//! `tafel bench scale`: how Tafel's costs grow with the log. It writes a generated
//! programme of N events straight through the store (requests submitted, revised,
//! coached and some withdrawn; mandates published and revised; round tables scheduled,
//! given agendas, assessed and concluded with commitments), every event checked by the
//! domain's own decision first, so the log replays as a real one does. Then it measures,
//! each beside its baseline in the same run: restart to ready, past shortlists at 10 %,
//! 50 % and 90 % of the log, the report (the projection vs a fold over the whole log),
//! memory and bytes on disk per event.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};
use tafel_contract::data::EventData;
use tafel_contract::envelope::format_recorded_at;
use tafel_contract::vocab::Role;
use tafel_contract::{PrincipalId, RecordedMeta, StoredEvent, SubmitRoute, parse_envelope};
use tafel_domain::{Actor, World};
use tafel_service::principals::{PrincipalEntry, Principals, PrincipalsFile};
use tafel_store::{AppendBatch, AppendCondition, EventLog, ExpectedVersion, NewEvent, OpenOptions, SledLog};

/// Mandates in the generated programme, published first.
const MANDATES: usize = 200;
/// The budget of the mandates that have one: spent after a few dozen commitments.
const BUDGET_EUR: u64 = 5_000_000;
/// Requests between two round tables; the last [`AGENDA`] of them go on its agenda.
const REQUESTS_PER_TABLE: usize = 20;
const AGENDA: usize = 5;
/// Mandates invited to each round table.
const INVITED: usize = 5;
/// Most events in one generated append (the store's own limit is higher).
const MAX_BATCH_EVENTS: usize = 64;
/// The principal the queries are asked as.
const ORGANISER: &str = "o";

/// What `tafel bench scale` measured.
#[derive(Debug)]
pub struct ScaleFigures {
    pub events: u64,
    pub requests: usize,
    pub write_seconds: f64,
    /// Restart: the log opened and every view replayed until ready.
    pub restart_seconds: f64,
    /// Every view replayed from the log with the matcher hushed (as restarts do now),
    /// and the baseline: the same replay reporting each event's changes (as before).
    pub replay_hushed_seconds: f64,
    pub replay_reporting_seconds: f64,
    /// `(share of the log, seconds for one shortlist as_of there, seconds for the
    /// baseline replay to there)`.
    pub as_of: Vec<(u8, f64, f64)>,
    /// The shortlist now, from the live views, for comparison.
    pub shortlist_now_seconds: f64,
    pub report_seconds: f64,
    pub report_fold_seconds: f64,
    /// The bench process's resident memory before and after the restart (before: the
    /// generator's, some of it freed but kept by the allocator).
    pub rss_before: Option<u64>,
    pub rss_after: Option<u64>,
    pub disk_bytes: u64,
}

/// Builds the log of about `events` events in `dir`, then measures.
pub fn run_scale_bench(dir: &Path, events: u64) -> std::io::Result<ScaleFigures> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(scale(dir, events))
}

async fn scale(dir: &Path, events: u64) -> std::io::Result<ScaleFigures> {
    let path = dir.join("log");
    let log = SledLog::open(&path, OpenOptions::default()).map_err(std::io::Error::other)?;
    let started = Instant::now();
    let (written, requests, request_at) = write_programme(&log, events).await?;
    let rss_before = resident_bytes();
    let write_seconds = started.elapsed().as_secs_f64();
    log.shutdown().await;
    drop(log);

    // Restart: open the log and replay every view, as `tafel serve` does.
    let started = Instant::now();
    let log = SledLog::open(&path, OpenOptions::default()).map_err(std::io::Error::other)?;
    let (service, _projection) = tafel_service::start(log.clone(), organiser()?, Default::default(), None)
        .await
        .map_err(std::io::Error::other)?;
    let restart_seconds = started.elapsed().as_secs_f64();
    let rss_after = resident_bytes();
    // The replay's own cost, hushed as restarts replay now and reporting every
    // event's changes as they did before: the same views, the same log, in turns.
    let (mut replay_hushed_seconds, mut replay_reporting_seconds) = (f64::MAX, f64::MAX);
    for _ in 0..2 {
        replay_hushed_seconds = replay_hushed_seconds.min(replay_views(&log, written, true)?);
        replay_reporting_seconds = replay_reporting_seconds.min(replay_views(&log, written, false)?);
    }

    let ask = |name: &'static str, body: Value| {
        let service = service.clone();
        async move {
            let started = Instant::now();
            let body = serde_json::to_vec(&body).map_err(std::io::Error::other)?;
            service
                .query_result(name, ORGANISER, &body, tafel_service::HTTP_MAX_REPLY_BYTES)
                .await
                .map_err(|refusal| std::io::Error::other(refusal.to_string()))?;
            Ok::<_, std::io::Error>(started.elapsed().as_secs_f64())
        }
    };
    let mut as_of = Vec::new();
    for share in [10u8, 50, 90] {
        let position = (written * u64::from(share) / 100).max(1);
        // The newest request that existed there.
        let request = request_at.iter().rev().find(|(at, _)| *at <= position).map(|(_, id)| id.clone());
        let Some(request) = request else { continue };
        let seconds = ask("shortlist", json!({"request_id": request, "as_of": position})).await?;
        let started = Instant::now();
        replay_matcher(&log, position, false)?;
        as_of.push((share, seconds, started.elapsed().as_secs_f64()));
    }
    let newest = request_at.last().map(|(_, id)| id.clone()).ok_or_else(|| std::io::Error::other("no request"))?;
    let shortlist_now_seconds = ask("shortlist", json!({"request_id": newest})).await?;
    let report_seconds = ask("report", json!({})).await?;
    let started = Instant::now();
    let all = tafel_service::stored::read_all_events(&log).map_err(std::io::Error::other)?;
    tafel_domain::report::report(&all, None).map_err(std::io::Error::other)?;
    let report_fold_seconds = started.elapsed().as_secs_f64();
    drop(all);
    log.shutdown().await;
    Ok(ScaleFigures {
        events: written,
        requests,
        write_seconds,
        restart_seconds,
        replay_hushed_seconds,
        replay_reporting_seconds,
        as_of,
        shortlist_now_seconds,
        report_seconds,
        report_fold_seconds,
        rss_before,
        rss_after,
        disk_bytes: disk_bytes(&path),
    })
}

fn organiser() -> std::io::Result<Principals> {
    let file = PrincipalsFile {
        principals: vec![PrincipalEntry {
            id: PrincipalId::parse(ORGANISER).map_err(std::io::Error::other)?,
            role: Role::Organiser,
            token_sha256: None,
        }],
    };
    Principals::from_file(&file).map_err(std::io::Error::other)
}

/// Replays the log up to `position` into a fresh matcher, hushed or reporting each
/// event's changes (as every replay did before [`tafel_matcher::Matcher::hush`]).
fn replay_matcher(log: &SledLog, position: u64, hushed: bool) -> std::io::Result<()> {
    let mut matcher = tafel_matcher::Matcher::new(Default::default());
    if hushed {
        matcher.hush();
    }
    tafel_service::stored::for_each_event(log, position, |event| matcher.apply(&event).map(|_| ()))
        .map_err(std::io::Error::other)
}

/// Replays the log up to `position` into fresh views (the world, the reports, the
/// matcher) as the projection does at start-up; returns the seconds it took.
fn replay_views(log: &SledLog, position: u64, hushed: bool) -> std::io::Result<f64> {
    let started = Instant::now();
    let mut views = tafel_service::projection::Views::new(tafel_matcher::Matcher::new(Default::default()));
    if hushed {
        views.matcher.hush();
    }
    tafel_service::stored::for_each_event(log, position, |event| {
        let envelope = &event.envelope;
        let data =
            EventData::parse(envelope.event_type, &envelope.subject, &envelope.data).map_err(|e| e.to_string())?;
        views.world.apply_data(&event, data.clone())?;
        views.reports.apply_data(&event, &data)?;
        views.matcher.apply_parsed(&event, &data);
        Ok(())
    })
    .map_err(std::io::Error::other)?;
    views.matcher.speak();
    Ok(started.elapsed().as_secs_f64())
}

/// The generated programme, one event after another, each decided by a local `World`
/// before it is appended (so the log holds only what Tafel would have accepted).
struct Programme {
    world: World,
    now_ms: i64,
    pending: Vec<(AppendBatch, String)>,
    requests: usize,
    /// `(sequence, request id)` of each request's submission.
    request_at: Vec<(u64, String)>,
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
        let raw = json!({"specversion": "1.0", "id": format!("g{sequence}"), "source": "/bench/scale",
                         "type": event_type, "subject": subject, "data": data});
        let raw = serde_json::to_vec(&raw).map_err(std::io::Error::other)?;
        let envelope = parse_envelope(&raw, &SubmitRoute::http(&actor.id)).map_err(std::io::Error::other)?;
        let data = EventData::parse(envelope.event_type, &envelope.subject, &envelope.data)
            .map_err(|refusal| std::io::Error::other(refusal.to_string()))?;
        let decision = self
            .world
            .decide(&actor, &envelope, &data)
            .map_err(|refusal| std::io::Error::other(refusal.to_string()))?;
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
            self.requests += 1;
            self.request_at.push((sequence, subject.to_owned()));
        }
        Ok(())
    }
}

fn request_data(id: &str, k: usize, title: &str) -> Value {
    json!({"request_id": id, "organisation": {"name": format!("Onderneming {k}"), "kvk": format!("{:08}", k % 100_000_000),
           "region": "NL324"}, "title": title, "summary": "Een aanvraag uit de generator van tafel bench scale.",
           "amount_eur": 50_000 + (k % 10) as u64 * 25_000, "instruments": ["loan"], "stage": "growth",
           "impact_themes": [1 + k % 17], "certifications": []})
}

/// A mandate's largest ticket: every fifth carries at most 150 000, below the larger
/// requests (so they fit in part, and consortia are searched).
fn ticket_max(m: usize) -> u64 {
    if m.is_multiple_of(5) { 150_000 } else { 1_000_000 }
}

/// Every fourth mandate has a budget, which commitments spend (so conclusions change
/// what the matcher sees).
fn budget(m: usize) -> Option<u64> {
    (m % 4 == 1).then_some(BUDGET_EUR)
}

fn mandate_data(id: &str, m: usize) -> Value {
    json!({"mandate_id": id, "financier": {"name": format!("Financier {}", m % 50), "kind": "impact_fund"},
           "ticket_min_eur": 10_000, "ticket_max_eur": ticket_max(m), "instruments": ["loan", "grant", "equity"],
           "stages": ["early_revenue", "growth", "mature"], "impact_themes": if m.is_multiple_of(3) { json!([]) } else { json!([1 + m % 17]) },
           "regions": [], "required_certifications": [], "co_financing": true, "budget_eur": budget(m)})
}

/// Writes about `target` events; returns how many, how many requests, and where each
/// request was submitted.
async fn write_programme(log: &SledLog, target: u64) -> std::io::Result<(u64, usize, Vec<(u64, String)>)> {
    let mut programme = Programme {
        world: World::default(),
        now_ms: 1_609_459_200_000, // 2021-01-01
        pending: Vec::new(),
        requests: 0,
        request_at: Vec::new(),
    };
    let financier = |m: usize| format!("f{}", m % 50);
    for m in 0..MANDATES {
        programme.event(
            &financier(m),
            Role::Financier,
            "tafel.mandate.published",
            &format!("m{m}"),
            mandate_data(&format!("m{m}"), m),
        )?;
    }
    let mut k = 0usize;
    let mut table = 0usize;
    let mut committed = vec![0u64; MANDATES];
    // At least one round, however small the target.
    while table == 0 || programme.world.last_sequence() < target {
        // A round of requests: submitted (some revised first), coached ready; one of the
        // round's early ones withdrawn now and then.
        let first = k;
        for _ in 0..REQUESTS_PER_TABLE {
            let (id, owner) = (format!("r{k}"), format!("e{}", k % 100));
            programme.event(
                &owner,
                Role::Entrepreneur,
                "tafel.request.submitted",
                &id,
                request_data(&id, k, "Een aanvraag"),
            )?;
            if k % 10 == 3 {
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
        if table % 3 == 1 {
            let id = format!("r{first}");
            programme.event(
                &format!("e{}", first % 100),
                Role::Entrepreneur,
                "tafel.request.withdrawn",
                &id,
                json!({"request_id": id, "reason": "Elders gefinancierd."}),
            )?;
        }
        if table % 5 == 2 {
            let m = table % MANDATES;
            programme.event(
                &financier(m),
                Role::Financier,
                "tafel.mandate.revised",
                &format!("m{m}"),
                mandate_data(&format!("m{m}"), m),
            )?;
        }
        // A round table over the round's last requests, with mandates taking turns.
        let id = format!("t{table}");
        let invited: Vec<usize> = (0..INVITED).map(|i| (table * INVITED + i) % MANDATES).collect();
        let agenda: Vec<String> = (k - AGENDA..k).map(|r| format!("r{r}")).collect();
        let date = format_recorded_at(programme.now_ms + 30 * 86_400_000)[..10].to_owned();
        programme.event(
            "o",
            Role::Organiser,
            "tafel.roundtable.scheduled",
            &id,
            json!({"roundtable_id": id, "title": "Ronde tafel",
            "date": date, "mandate_ids": invited.iter().map(|m| format!("m{m}")).collect::<Vec<_>>()}),
        )?;
        programme.event(
            "o",
            Role::Organiser,
            "tafel.roundtable.agenda_set",
            &id,
            json!({"roundtable_id": id, "request_ids": agenda}),
        )?;
        for request in &agenda {
            for m in &invited {
                let interest = if (m + request.len()) % 3 == 0 { "no" } else { "yes" };
                programme.event(
                    &financier(*m),
                    Role::Financier,
                    "tafel.roundtable.assessed",
                    &id,
                    json!({"roundtable_id": id,
                    "request_id": request, "mandate_id": format!("m{m}"), "interest": interest,
                    "scores": {"impact": 4, "team": 3, "financials": 3}}),
                )?;
            }
        }
        // One commitment per request, from the first mandate that said yes and can still
        // carry it (within its ticket and what is left of its budget).
        let mut outcomes = Vec::new();
        for request in &agenda {
            let r: usize = request[1..].parse().unwrap_or(0);
            let asked = 50_000 + (r % 10) as u64 * 25_000;
            let carrier = invited.iter().filter(|m| (*m + request.len()) % 3 != 0).find_map(|m| {
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
        programme.event(
            "o",
            Role::Organiser,
            "tafel.roundtable.concluded",
            &id,
            json!({"roundtable_id": id, "outcomes": outcomes}),
        )?;
        table += 1;
        programme.now_ms += 86_400_000;
        flush(log, &mut programme.pending).await?;
    }
    Ok((programme.world.last_sequence(), programme.requests, programme.request_at))
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

/// The process's resident memory, from `/proc/self/status`.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}

fn disk_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Where a run keeps its log when no directory is given.
pub fn scratch_dir() -> PathBuf {
    std::env::temp_dir().join(format!("tafel-bench-scale-{}", std::process::id()))
}
