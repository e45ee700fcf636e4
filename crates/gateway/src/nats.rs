//! The NATS transport: `tafel.submit.>` and `tafel.query.>` in a queue group, so several
//! instances can share the subjects. It moves bytes between NATS and the [`Service`]
//! and nothing else.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;
use tafel_contract::SubmitRoute;
use tafel_contract::reply::{ErrorCode, Refusal, SubmitReply};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use tafel_service::Service;

/// The queue group every Tafel instance joins.
pub const QUEUE_GROUP: &str = "tafel";
/// Most submits and queries handled at once; more wait in NATS's buffers.
pub const MAX_IN_FLIGHT: usize = 1024;
/// Longest time a stop waits for NATS to drain the subscriptions and take the last
/// replies; a server that is away cannot take them at all.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long Tafel waits between reconnection attempts (it never gives up).
const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// `url` is shown without its credentials (see [`without_credentials`]).
    #[error("cannot connect to NATS at {url}: {detail}")]
    Connect { url: String, detail: String },
    #[error("cannot subscribe: {0}")]
    Subscribe(String),
    #[error(
        "the NATS server at {url} does not require authentication, so anyone who reaches it can pose as any \
         principal; configure users (see deploy/nats-server.conf), or pass --insecure-nats to serve it anyway"
    )]
    Unauthenticated { url: String },
}

/// Connects, retrying until the server is there, and reconnects for ever after. A user
/// and password in the URL (`nats://tafel:secret@host:4222`) are used to log in. The
/// connection is named `name` for the server's monitoring (`tafel`, `tafel-fanout`).
pub async fn connect(url: &str, name: &str) -> Result<async_nats::Client, NatsError> {
    connect_buffering(url, name, MAX_IN_FLIGHT).await
}

/// The connection cluster mode follows the log's stream on: its pull subscription
/// buffers several of the follower's batches, so that a node catching up with a long log
/// is never a slow consumer whose messages the client drops.
pub async fn connect_log(url: &str) -> Result<async_nats::Client, NatsError> {
    connect_buffering(url, "tafel-log", 4 * tafel_store::cluster::FOLLOW_BATCH).await
}

/// [`connect`], buffering at most `capacity` messages per subscription.
async fn connect_buffering(url: &str, name: &str, capacity: usize) -> Result<async_nats::Client, NatsError> {
    // One server, or several separated by commas (a cluster's); the credentials of the
    // first that has them.
    let mut addresses = Vec::new();
    for one in url.split(',').map(str::trim).filter(|one| !one.is_empty()) {
        let address: async_nats::ServerAddr = one.parse().map_err(|error: std::io::Error| NatsError::Connect {
            url: without_credentials(url),
            detail: error.to_string(),
        })?;
        addresses.push(address);
    }
    let credentials = addresses.iter().find_map(|address| Some((address.username()?, address.password()?)));
    // Tafel's user reads answers (JetStream's, in cluster mode) only on its own inbox,
    // as principals do on theirs (deploy/nats-server.conf).
    let options = match credentials {
        Some((user, password)) => async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
            .custom_inbox_prefix(format!("_INBOX.{user}")),
        None => async_nats::ConnectOptions::new(),
    };
    options
        .name(name)
        // A subscription buffers at most what Tafel may have in flight: messages of up
        // to `max_payload` each, so the default (65 536) would let a flood grow memory
        // without bound.
        .subscription_capacity(capacity)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            RECONNECT_DELAY_MAX.min(Duration::from_millis(50 * (attempts as u64).min(40)))
        })
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => info!("NATS connected"),
                async_nats::Event::Disconnected => warn!("NATS disconnected; reconnecting"),
                other => info!(%other, "NATS event"),
            }
        })
        .connect(addresses)
        .await
        .map_err(|error| NatsError::Connect { url: without_credentials(url), detail: error.to_string() })
}

/// The URL with any `user:password@` (or token) replaced, for logs and errors.
pub fn without_credentials(url: &str) -> String {
    let one = |url: &str| {
        let host_start = url.find("://").map_or(0, |scheme_end| scheme_end + 3);
        match url[host_start..].rfind('@') {
            Some(at) => format!("{}***{}", &url[..host_start], &url[host_start + at..]),
            None => url.to_owned(),
        }
    };
    url.split(',').map(one).collect::<Vec<_>>().join(",")
}

/// What to do about a NATS server that does not require authentication (contract
/// section 2): on such a server anyone may publish under any principal's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unauthenticated {
    /// Refuse to serve it.
    Refuse,
    /// Serve it, warning: the URL is on loopback, so only this machine reaches it.
    AllowLoopback,
    /// Serve it, warning: the operator said `--insecure-nats`.
    AllowInsecure,
}

impl Unauthenticated {
    /// The decision for `url` (one server address, as [`connect`] takes).
    pub fn decide(url: &str, insecure_nats: bool) -> Unauthenticated {
        // Every server of a list must be on loopback.
        let on_loopback = url
            .split(',')
            .map(str::trim)
            .all(|one| one.parse::<async_nats::ServerAddr>().is_ok_and(|address| is_loopback(address.host())));
        if on_loopback {
            Unauthenticated::AllowLoopback
        } else if insecure_nats {
            Unauthenticated::AllowInsecure
        } else {
            Unauthenticated::Refuse
        }
    }
}

/// `localhost`, `127.0.0.0/8` or `::1` (also written as an IPv4-mapped address).
fn is_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Waits until the client is connected, then holds the server to contract section 2:
/// it must require authentication, unless [`Unauthenticated::decide`] allows it (then
/// with a warning). Call before [`subscribe`], so that nothing is served on a server
/// that is refused.
pub async fn require_authentication(
    client: &async_nats::Client,
    url: &str,
    insecure_nats: bool,
) -> Result<(), NatsError> {
    // The server's INFO arrives before the answer to the flush's PING.
    client.flush().await.map_err(|e| NatsError::Subscribe(e.to_string()))?;
    if client.server_info().auth_required {
        return Ok(());
    }
    let decision = Unauthenticated::decide(url, insecure_nats);
    let url = without_credentials(url);
    match decision {
        Unauthenticated::Refuse => Err(NatsError::Unauthenticated { url }),
        Unauthenticated::AllowLoopback => {
            warn!(nats = %url, "the NATS server does not require authentication; served because it is on loopback, where every local user can pose as any principal");
            Ok(())
        }
        Unauthenticated::AllowInsecure => {
            warn!(nats = %url, "the NATS server does not require authentication; served because of --insecure-nats: anyone who reaches it can pose as any principal");
            Ok(())
        }
    }
}

/// Tafel's NATS subscriptions, made before it says it is up.
pub struct Subscriptions {
    submits: async_nats::Subscriber,
    queries: async_nats::Subscriber,
}

/// Subscribes to `tafel.submit.>` and `tafel.query.>` in the queue group.
pub async fn subscribe(client: &async_nats::Client) -> Result<Subscriptions, NatsError> {
    let subscribe_error = |e: async_nats::SubscribeError| NatsError::Subscribe(e.to_string());
    let submits = client.queue_subscribe("tafel.submit.>", QUEUE_GROUP.into()).await.map_err(subscribe_error)?;
    let queries = client.queue_subscribe("tafel.query.>", QUEUE_GROUP.into()).await.map_err(subscribe_error)?;
    // The subscriptions are only in force once the server has them.
    client.flush().await.map_err(|e| NatsError::Subscribe(e.to_string()))?;
    info!("serving tafel.submit.> and tafel.query.> on NATS");
    Ok(Subscriptions { submits, queries })
}

/// Serves submits and queries until `stop` turns true; then stops taking new work,
/// answers everything already taken, and returns.
pub async fn serve(
    client: async_nats::Client,
    subscriptions: Subscriptions,
    service: Arc<Service>,
    mut stop: watch::Receiver<bool>,
) {
    let Subscriptions { mut submits, mut queries } = subscriptions;
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = JoinSet::new();

    let handle = |tasks: &mut JoinSet<()>, permit, message: async_nats::Message, is_submit: bool| {
        let (client, service) = (client.clone(), service.clone());
        tasks.spawn(async move {
            let _permit: tokio::sync::OwnedSemaphorePermit = permit;
            if is_submit {
                handle_submit(&client, &service, message).await;
            } else {
                handle_query(&client, &service, message).await;
            }
        });
    };

    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(message) = submits.next() => {
                let Ok(permit) = limit.clone().acquire_owned().await else { break };
                handle(&mut tasks, permit, message, true);
            }
            Some(message) = queries.next() => {
                let Ok(permit) = limit.clone().acquire_owned().await else { break };
                handle(&mut tasks, permit, message, false);
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }

    // Stop taking new work, but answer what NATS already delivered to us, within a
    // bounded time: with the server away, draining never completes (contract section 7).
    let answer_delivered = async {
        let _ = submits.drain().await;
        let _ = queries.drain().await;
        let _ = client.flush().await;
        while let Some(message) = submits.next().await {
            if let Ok(permit) = limit.clone().acquire_owned().await {
                handle(&mut tasks, permit, message, true);
            }
        }
        while let Some(message) = queries.next().await {
            if let Ok(permit) = limit.clone().acquire_owned().await {
                handle(&mut tasks, permit, message, false);
            }
        }
        while tasks.join_next().await.is_some() {}
        let _ = client.flush().await;
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, answer_delivered).await.is_err() {
        warn!(
            grace_s = SHUTDOWN_GRACE.as_secs(),
            "NATS did not let every delivered message be answered in time; stopping anyway (what was appended stays \
             appended, and a resend is answered as a duplicate)"
        );
    }
    info!("NATS transport stopped");
}

async fn handle_submit(client: &async_nats::Client, service: &Service, message: async_nats::Message) {
    let reply = match SubmitRoute::from_nats_subject(&message.subject) {
        Some(route) => service.submit(&message.payload, &route).await,
        None => SubmitReply::refused(
            None,
            Refusal::new(
                ErrorCode::SubjectMismatch,
                format!("{} is not tafel.submit.<aggregate>.<event>.<principal>", message.subject),
            ),
        ),
    };
    let body = match serde_json::to_vec(&reply) {
        Ok(body) => Bytes::from(body),
        Err(cause) => {
            warn!(%cause, "cannot encode a reply");
            return;
        }
    };
    // A reply subject outside the principal's own inbox is treated as none.
    let inbox = message.reply.as_ref().filter(|reply| reply_allowed(&message.subject, reply));
    let target = match (inbox, &reply) {
        (Some(reply_subject), _) => reply_subject.to_string(),
        (None, SubmitReply::Refused { .. }) => rejected_subject(&message.subject),
        (None, SubmitReply::Accepted { .. }) => return,
    };
    if let Err(cause) = client.publish(target, body).await {
        warn!(%cause, "cannot send a reply");
    }
}

/// Whether Tafel may answer a message on `subject` at `reply`: only in the asking
/// principal's own inbox, `_INBOX.<principal>.…`, the principal being the subject's last
/// token (contract 1.1 section 2). Tafel's NATS user may publish on `tafel.events.>` and
/// into every inbox; answering at any other reply subject would let a principal make
/// Tafel publish there in its name.
pub fn reply_allowed(subject: &str, reply: &str) -> bool {
    let principal = subject.rsplit('.').next().unwrap_or_default();
    tafel_contract::PrincipalId::parse(principal).is_ok()
        && reply
            .strip_prefix("_INBOX.")
            .and_then(|rest| rest.strip_prefix(principal))
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|rest| rest.split('.').all(|token| !token.is_empty() && token != "*" && token != ">"))
}

/// `tafel.rejected.<aggregate>.<event>.<principal>` for a refused submit without a
/// reply subject; subjects that do not have those tokens go to `tafel.rejected.invalid`.
pub fn rejected_subject(subject: &str) -> String {
    match subject.strip_prefix("tafel.submit.") {
        Some(rest) if rest.split('.').count() == 3 && rest.split('.').all(|t| !t.is_empty()) => {
            format!("tafel.rejected.{rest}")
        }
        _ => "tafel.rejected.invalid".into(),
    }
}

async fn handle_query(client: &async_nats::Client, service: &Service, message: async_nats::Message) {
    let Some(reply_subject) = message.reply.as_ref().filter(|reply| reply_allowed(&message.subject, reply)) else {
        debug!(subject = %message.subject, "a query without a reply subject in its principal's inbox is not answered");
        return;
    };
    let tokens: Vec<&str> = message.subject.split('.').collect();
    // A reply over the server's `max_payload` would never arrive: the service ends a
    // page early, or refuses, rather than exceed it.
    let max_reply_bytes = client.server_info().max_payload;
    let body = match tokens.as_slice() {
        ["tafel", "query", name, principal] => service.query(name, principal, &message.payload, max_reply_bytes).await,
        _ => {
            let refusal = Refusal::new(
                ErrorCode::InvalidQuery,
                format!("{} is not tafel.query.<name>.<principal>", message.subject),
            );
            serde_json::to_vec(&json!({"error": refusal})).unwrap_or_default()
        }
    };
    if let Err(cause) = client.publish(reply_subject.to_string(), Bytes::from(body)).await {
        warn!(%cause, "cannot send a query reply");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_stay_out_of_logs() {
        assert_eq!(without_credentials("nats://tafel:secret@127.0.0.1:4222"), "nats://***@127.0.0.1:4222");
        assert_eq!(without_credentials("nats://a-token@127.0.0.1:4222"), "nats://***@127.0.0.1:4222");
        assert_eq!(without_credentials("tafel:secret@127.0.0.1:4222"), "***@127.0.0.1:4222");
        assert_eq!(without_credentials("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(without_credentials("nats://a:b@h1:1,nats://a:b@h2:2"), "nats://***@h1:1,nats://***@h2:2");
    }

    /// A URL that does not parse is refused before any connection, and its password
    /// is not in the error (it used to be).
    #[tokio::test]
    async fn connect_errors_do_not_show_the_password() {
        let error =
            connect("nats://tafel:hunter2@127.0.0.1:notaport", "tafel").await.expect_err("the URL does not parse");
        let text = error.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("nats://***@127.0.0.1:notaport"), "{text}");
    }

    #[test]
    fn only_loopback_or_insecure_nats_may_go_without_authentication() {
        use Unauthenticated::*;
        for url in [
            "nats://127.0.0.1:4222",
            "nats://tafel:secret@127.0.0.1:4222",
            "nats://127.8.9.10:4222",
            "nats://localhost:4222",
            "nats://LOCALHOST.:4222",
            "nats://[::1]:4222",
            "nats://[::ffff:127.0.0.1]:4222",
            "127.0.0.1:4222",
            "localhost",
        ] {
            assert_eq!(Unauthenticated::decide(url, false), AllowLoopback, "{url}");
            assert_eq!(Unauthenticated::decide(url, true), AllowLoopback, "{url}");
        }
        for url in [
            "nats://192.0.2.2:4222",
            "nats://0.0.0.0:4222",
            "nats://[::]:4222",
            "nats://[fd00::2]:4222",
            "nats://nats.example.org:4222",
            "nats://localhost.example.org:4222",
            "nats://127.0.0.1.example.org:4222",
            "nats://user:pass@10.0.0.1:4222",
        ] {
            assert_eq!(Unauthenticated::decide(url, false), Refuse, "{url}");
            assert_eq!(Unauthenticated::decide(url, true), AllowInsecure, "{url}");
        }
    }

    #[test]
    fn replies_go_only_to_the_principals_own_inbox() {
        let subject = "tafel.submit.request.submitted.acme";
        assert!(reply_allowed(subject, "_INBOX.acme.abc.1"));
        assert!(reply_allowed("tafel.query.request.acme", "_INBOX.acme.x"));
        for forged in [
            "tafel.events.request.forged",
            "tafel.shortlist.r1",
            "tafel.rejected.request.submitted.bank",
            "_INBOX.bank.abc",
            "_INBOX.acme-bikes.abc",
            "_INBOX.acme",
            "_INBOX.acme.",
            "_INBOX.abc.acme.x",
            "_INBOX.AbC",
            "_INBOX.acme.>",
            "_INBOX.acme.*",
            "_INBOX.acme..x",
        ] {
            assert!(!reply_allowed(subject, forged), "{forged}");
        }
        for odd_subject in ["tafel.submit.request.submitted.*", "tafel.submit.request.submitted.", "x.Acme"] {
            assert!(!reply_allowed(odd_subject, "_INBOX.*.x"), "{odd_subject}");
        }
    }

    #[test]
    fn rejected_subjects() {
        assert_eq!(rejected_subject("tafel.submit.request.submitted.acme"), "tafel.rejected.request.submitted.acme");
        assert_eq!(rejected_subject("tafel.submit.request.acme"), "tafel.rejected.invalid");
    }
}
