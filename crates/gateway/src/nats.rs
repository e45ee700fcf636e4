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
use tracing::{info, warn};

use crate::service::Service;

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
    #[error("cannot connect to NATS at {url}: {detail}")]
    Connect { url: String, detail: String },
    #[error("cannot subscribe: {0}")]
    Subscribe(String),
}

/// Connects, retrying until the server is there, and reconnects for ever after. A user
/// and password in the URL (`nats://tafel:secret@host:4222`) are used to log in.
pub async fn connect(url: &str) -> Result<async_nats::Client, NatsError> {
    let address: async_nats::ServerAddr = url
        .parse()
        .map_err(|error: std::io::Error| NatsError::Connect { url: url.to_owned(), detail: error.to_string() })?;
    let options = match (address.username(), address.password()) {
        (Some(user), Some(password)) => {
            async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
        }
        _ => async_nats::ConnectOptions::new(),
    };
    options
        .name("tafel")
        // A subscription buffers at most what Tafel may have in flight: messages of up
        // to `max_payload` each, so the default (65 536) would let a flood grow memory
        // without bound.
        .subscription_capacity(MAX_IN_FLIGHT)
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
        .connect(url)
        .await
        .map_err(|error| NatsError::Connect { url: url.to_owned(), detail: error.to_string() })
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
    let target = match (&message.reply, &reply) {
        (Some(reply_subject), _) => reply_subject.to_string(),
        (None, SubmitReply::Refused { .. }) => rejected_subject(&message.subject),
        (None, SubmitReply::Accepted { .. }) => return,
    };
    if let Err(cause) = client.publish(target, body).await {
        warn!(%cause, "cannot send a reply");
    }
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
    let Some(reply_subject) = &message.reply else {
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
    fn rejected_subjects() {
        assert_eq!(rejected_subject("tafel.submit.request.submitted.acme"), "tafel.rejected.request.submitted.acme");
        assert_eq!(rejected_subject("tafel.submit.request.acme"), "tafel.rejected.invalid");
    }
}
