//! The matcher's full rebuild beside the same eligibility, score and top-10 done as SQL
//! in SQLite, on the same generated world, in the same run.

use std::collections::HashMap;
use std::time::Instant;

use rusqlite::functions::FunctionFlags;
use tafel_contract::data::EventData;
use tafel_contract::vocab::CalendarDate;
use tafel_matcher::facts::{MandateFacts, RequestFacts, instrument_mask};
use tafel_matcher::generate::{Random, mandate, request};
use tafel_matcher::{DEFAULT_LIMIT, Matcher, ScoringTable};

fn argument(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() -> rusqlite::Result<()> {
    let requests = argument("--requests", 10_000);
    let mandates = argument("--mandates", 1_000);
    let seed = argument("--seed", 7) as u64;
    let day = CalendarDate::parse("2024-06-01").ok();

    let mut random = Random::new(seed);
    let mandate_terms: Vec<_> = (0..mandates).map(|i| mandate(&mut random, i)).collect();
    let request_details: Vec<_> = (0..requests).map(|i| request(&mut random, i)).collect();

    // Tafel: load, then time a full rebuild.
    let mut matcher = Matcher::new(ScoringTable::default());
    let mut sequence = 0;
    for terms in &mandate_terms {
        sequence += 1;
        matcher.apply_data(sequence, day, &EventData::MandatePublished(terms.clone()));
    }
    for details in &request_details {
        sequence += 1;
        matcher.apply_data(sequence, day, &EventData::RequestSubmitted(details.clone()));
    }
    let started = Instant::now();
    matcher.rebuild(std::thread::available_parallelism().map_or(2, |n| n.get()));
    let tafel_seconds = started.elapsed().as_secs_f64();

    // SQLite: the same facts in two tables, the same rules and score in one query.
    let db = rusqlite::Connection::open_in_memory()?;
    db.create_scalar_function("popcount", 1, FunctionFlags::SQLITE_DETERMINISTIC, |ctx| {
        Ok(ctx.get::<i64>(0)?.count_ones() as i64)
    })?;
    db.execute_batch(
        "CREATE TABLE requests (id TEXT, amount INTEGER, instruments INTEGER, preferred INTEGER, stage INTEGER,
                                themes INTEGER, region TEXT, certs INTEGER);
         CREATE TABLE mandates (id TEXT, instruments INTEGER, stages INTEGER, themes INTEGER, region TEXT,
                                required INTEGER, tmin INTEGER, tmax INTEGER, cofin INTEGER, cap INTEGER);",
    )?;
    {
        let transaction = db.unchecked_transaction()?;
        let mut insert = transaction.prepare("INSERT INTO mandates VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")?;
        for terms in &mandate_terms {
            let facts = MandateFacts::new(terms);
            assert!(terms.regions.len() <= 1, "the baseline handles one region per mandate");
            insert.execute(rusqlite::params![
                terms.mandate_id.as_str(),
                facts.instruments,
                facts.stages,
                facts.themes,
                terms.regions.first().map(|r| r.as_str().to_owned()),
                facts.required_certifications,
                facts.ticket_min_eur as i64,
                facts.ticket_max_eur as i64,
                facts.co_financing,
                facts.cap_eur() as i64,
            ])?;
        }
        drop(insert);
        let mut insert = transaction.prepare("INSERT INTO requests VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?;
        for details in &request_details {
            let facts = RequestFacts::new(details);
            insert.execute(rusqlite::params![
                details.request_id.as_str(),
                facts.amount_eur as i64,
                facts.instruments,
                instrument_mask(&[facts.preferred_instrument]),
                facts.stage,
                facts.themes,
                details.organisation.region.as_str(),
                facts.certifications,
            ])?;
        }
        drop(insert);
        transaction.commit()?;
    }
    // tenths(w, n, d) = (w*10*n*2 + d) / (d*2), as in the matcher.
    let query = "
        WITH pairs AS (
          SELECT r.id AS rid, m.id AS mid, r.amount AS amount, r.themes AS rthemes, r.preferred AS preferred,
                 r.certs AS certs, m.themes AS mthemes, m.instruments AS minstruments, m.stages AS stages,
                 m.region AS mregion, m.tmin AS tmin, m.tmax AS tmax,
                 CASE WHEN r.amount <= m.cap THEN 1 ELSE 0 END AS full,
                 CASE WHEN r.amount <= m.cap THEN r.amount ELSE m.cap END AS maxc
          FROM requests r JOIN mandates m
          WHERE (r.instruments & m.instruments) != 0
            AND (r.stage & m.stages) != 0
            AND (m.region IS NULL OR substr(r.region, 1, length(m.region)) = m.region)
            AND (m.required & ~r.certs) = 0
            AND (m.themes = 0 OR (m.themes & r.themes) != 0)
            AND m.tmin <= r.amount
            AND (r.amount <= m.cap OR (m.cofin AND m.tmin <= m.cap))
        ), scored AS (
          SELECT rid, mid,
            (CASE WHEN mthemes = 0 THEN (30*10*1*2 + 2) / 4
                  ELSE (30*10*popcount(rthemes & mthemes)*2 + popcount(rthemes)) / (popcount(rthemes)*2) END)
          + (CASE WHEN full = 1 THEN
                (25*10*(1000 - abs(2*(CASE WHEN tmax = tmin THEN 500
                                      ELSE min(1000, (amount - tmin)*1000/(tmax - tmin)) END) - 1000)/2)*2 + 1000) / 2000
              ELSE (25*10*min(maxc, amount)*2 + 2*amount) / (4*amount) END)
          + (CASE WHEN (preferred & minstruments) != 0 THEN 150 ELSE (15*10*6*2 + 10) / 20 END)
          + ((10*10*(10 - 2*min(popcount(stages) - 1, 4))*2 + 10) / 20)
          + (CASE WHEN mregion IS NULL THEN (10*10*4*2 + 10) / 20
                  ELSE (10*10*(40 + 15*min(length(mregion) - 1, 4))*2 + 100) / 200 END)
          + ((10*10*popcount(certs)*2 + 4) / 8) AS score
          FROM pairs
        )
        SELECT rid, mid, score FROM (
          SELECT rid, mid, score, ROW_NUMBER() OVER (PARTITION BY rid ORDER BY score DESC, mid) AS rank FROM scored
        ) WHERE rank <= 10";
    let started = Instant::now();
    let mut statement = db.prepare(query)?;
    let mut sqlite_top: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        sqlite_top.entry(row.get(0)?).or_default().push((row.get(1)?, row.get(2)?));
    }
    let sqlite_seconds = started.elapsed().as_secs_f64();

    // Both must give the same top ten, scores included.
    let mut agree = 0;
    for details in &request_details {
        let ours: Vec<(String, i64)> = matcher
            .shortlist(&details.request_id, DEFAULT_LIMIT)
            .map(|s| s.entries.iter().map(|e| (e.mandate_id.to_string(), (e.score * 10.0).round() as i64)).collect())
            .unwrap_or_default();
        if ours == sqlite_top.get(details.request_id.as_str()).cloned().unwrap_or_default() {
            agree += 1;
        }
    }
    let pairs = (requests * mandates) as f64;
    println!("full rebuild of every shortlist, {requests} requests x {mandates} mandates, seed {seed}");
    println!("  tafel:  {tafel_seconds:.3} s ({:.1} M pairs/s)", pairs / tafel_seconds / 1e6);
    println!("  sqlite: {sqlite_seconds:.3} s ({:.1} M pairs/s)", pairs / sqlite_seconds / 1e6);
    println!("  tafel is {:.1}x faster; same top ten for {agree} of {requests} requests", sqlite_seconds / tafel_seconds);
    Ok(())
}
