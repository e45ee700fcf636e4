//! Whether the NATS servers of a cluster fsync before they acknowledge.
//!
//! JetStream acknowledges a message once a majority of servers hold it in memory and
//! fsyncs later (every two minutes by default), unless the servers run with
//! `jetstream { sync_interval: always }` (NATS 2.10 and later). Without it, a power
//! failure of a majority can lose acknowledged events. Tafel cannot ask this over NATS
//! (an ordinary user sees no server configuration), so it reads each server's monitoring
//! endpoint, `/varz`, where `jetstream.config.sync_always` says it, when given their
//! addresses (`tafel serve --nats-monitor`), and warns at start when it cannot confirm.

use std::time::Duration;

use tracing::{info, warn};

/// Longest wait for one server's `/varz`.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Reads every monitoring address's `/varz` and warns for each server that does not say
/// `sync_always`, or cannot be asked; returns whether every one of them (at least one)
/// confirmed it.
pub async fn confirm_sync_always(monitors: &[String]) -> bool {
    if monitors.is_empty() {
        warn!(
            "cannot confirm that the NATS servers fsync before acknowledging (jetstream sync_interval: always): \
             without it a power failure can lose acknowledged events; give their monitoring addresses with \
             --nats-monitor to have Tafel check"
        );
        return false;
    }
    let mut confirmed = true;
    for monitor in monitors {
        match tokio::time::timeout(TIMEOUT, sync_always(monitor)).await {
            Ok(Ok(true)) => info!(%monitor, "the NATS server fsyncs before acknowledging (sync_always)"),
            Ok(Ok(false)) => {
                confirmed = false;
                warn!(
                    %monitor,
                    "this NATS server does not fsync before acknowledging: set jetstream {{ sync_interval: always }} \
                     (NATS 2.10 or later), or a power failure can lose acknowledged events"
                );
            }
            Ok(Err(cause)) => {
                confirmed = false;
                warn!(%monitor, %cause, "cannot confirm that this NATS server fsyncs before acknowledging");
            }
            Err(_) => {
                confirmed = false;
                warn!(%monitor, "cannot confirm that this NATS server fsyncs before acknowledging: no answer in time");
            }
        }
    }
    confirmed
}

/// Whether the server at `monitor` (`host:port` or `http://host:port`) says
/// `jetstream.config.sync_always`.
async fn sync_always(monitor: &str) -> Result<bool, String> {
    let (status, body) = crate::client::get(monitor, "/varz", None).await?;
    if status != 200 {
        return Err(format!("/varz answered {status}"));
    }
    let varz: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("/varz is not JSON: {e}"))?;
    Ok(said_sync_always(&varz))
}

/// `jetstream.config.sync_always` of a `/varz` answer; false when missing (NATS before
/// 2.10 has no such setting).
fn said_sync_always(varz: &serde_json::Value) -> bool {
    varz.pointer("/jetstream/config/sync_always").and_then(serde_json::Value::as_bool).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_explicit_sync_always_confirms() {
        let yes = serde_json::json!({"jetstream": {"config": {"sync_always": true, "sync_interval": 0}}});
        let lazy = serde_json::json!({"jetstream": {"config": {"sync_interval": 120000000000u64}}});
        let old = serde_json::json!({"version": "2.9.10", "jetstream": {"config": {}}});
        assert!(said_sync_always(&yes));
        assert!(!said_sync_always(&lazy));
        assert!(!said_sync_always(&old));
        assert!(!said_sync_always(&serde_json::json!({})));
    }
}
