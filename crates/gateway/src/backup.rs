//! `tafel backup`: a consistent copy of a running Tafel's log, made through its API.
//!
//! The log is append-only, so every prefix of it is consistent: the copy is the log
//! from sequence 1 to where it stood when the backup read its last page, read with the
//! `events` query (an organiser's or admin's token) and written into a new data
//! directory at the same sequences, with the same ids, principals, commit times and
//! identity digests, through the store's replicate path (the one a cluster node's
//! follower uses). Nothing is asked of the running Tafel but queries, so it goes on
//! serving; and it works the same against a node of a cluster. The copy is a
//! standalone data directory: `tafel check` verifies it, and `tafel serve` on it
//! rebuilds the views by replaying it. The principals file and Tafel's NATS password
//! are files of their own, copied beside it (deploy/RUNBOOK.md).

use std::path::Path;

use tafel_contract::StoredEvent;
use tafel_store::{EventLog, OpenOptions, SledLog};
use tracing::info;

/// Events asked for per page (the contract's default; a page may hold fewer).
const PAGE_EVENTS: usize = 1000;

#[derive(serde::Deserialize)]
struct Page {
    events: Vec<StoredEvent>,
}

/// Copies the log of the Tafel at `from` (its HTTP address) into a new data directory
/// `to`, as `token`'s principal; answers the number of events copied.
pub async fn run(from: &str, token: &str, to: &Path) -> Result<u64, String> {
    if to.exists() && std::fs::read_dir(to).map_err(|e| e.to_string())?.next().is_some() {
        return Err(format!("{} is not empty: a backup goes into a new directory", to.display()));
    }
    // A node that does not follow its cluster's log, or is still starting, would give a
    // copy that stops short of what was acknowledged. Views behind the log (as they are
    // for a moment after each append under load) do not matter: the copy is the log's.
    let (status, body) = crate::client::get(from, "/readyz", None).await?;
    let body = String::from_utf8_lossy(&body);
    let problems: Vec<&str> =
        body.lines().map(str::trim).filter(|line| !line.is_empty() && *line != crate::http::VIEWS_BEHIND).collect();
    if status != 200 && !problems.is_empty() {
        return Err(format!("{from} is not ready, so its log may stop short: {}", problems.join("; ")));
    }
    let log = SledLog::open(to, OpenOptions::default()).map_err(|e| e.to_string())?;
    let copied = copy(from, token, &log).await;
    log.shutdown().await;
    let copied = copied?;
    info!(events = copied, to = %to.display(), "backup written");
    Ok(copied)
}

async fn copy(from: &str, token: &str, log: &SledLog) -> Result<u64, String> {
    loop {
        let next = log.last_sequence() + 1;
        let path = format!("/v1/events?from={next}&limit={PAGE_EVENTS}");
        let (status, body) = crate::client::get(from, &path, Some(token)).await?;
        if status != 200 {
            return Err(format!("{from} answered {status} to {path}: {}", String::from_utf8_lossy(&body)));
        }
        let page: Page = serde_json::from_slice(&body).map_err(|e| format!("an unreadable page at {next}: {e}"))?;
        if page.events.is_empty() {
            return Ok(log.last_sequence());
        }
        let events = page.events.iter().map(tafel_service::stored::replicated).collect::<Result<Vec<_>, String>>()?;
        log.replicate(events).await.map_err(|e| format!("writing the copy at {next}: {e}"))?;
    }
}
