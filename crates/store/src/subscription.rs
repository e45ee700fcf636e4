//! [`SledSubscription`]: a catch-up read that becomes a live tail.
//!
//! It keeps one number, the next sequence it owes its reader, and reads pages of the
//! log up to the durable watermark; when it has caught up it waits for the watermark to
//! move. Because it reads the log itself rather than a feed of new events, the switch
//! from catching up to tailing has no gap and no duplicate, however appends race it.

use std::collections::VecDeque;

use tokio::sync::watch;

use crate::error::ReadError;
use crate::sled_log::{Slot, current, read_range};
use crate::writer::{SharedFailure, failure_of};
use crate::{RecordedEvent, Subscription};

/// How long a subscription waits before reading again when the log cannot be read.
pub const UNAVAILABLE_RETRY: std::time::Duration = std::time::Duration::from_millis(20);
/// Events read from disk at a time.
pub const SUBSCRIPTION_PAGE_EVENTS: usize = 512;

pub struct SledSubscription {
    /// The log's current handles, taken for each page (never held across a wait, so the
    /// writer can reopen the log under a subscription).
    slot: Slot,
    /// Why the writer refuses appends, while it does: reads failing then are waited
    /// out (the writer is about to reopen the log), as are reads that failed while a
    /// reopen finished; at any other time a failed read ends the subscription, so
    /// whoever follows the log reports it.
    failure: SharedFailure,
    durable: watch::Receiver<u64>,
    next_sequence: u64,
    buffer: VecDeque<RecordedEvent>,
}

impl SledSubscription {
    pub(crate) fn new(slot: Slot, failure: SharedFailure, durable: watch::Receiver<u64>, from_sequence: u64) -> Self {
        Self { slot, failure, durable, next_sequence: from_sequence.max(1), buffer: VecDeque::new() }
    }

    /// The sequence of the next event this subscription will yield.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence - self.buffer.len() as u64
    }

    /// How many events it has read and not yet yielded: the next [`Subscription::next`]
    /// answers at once while this is not 0.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }
}

impl SledSubscription {
    /// How many times the writer has reopened the log.
    fn reopens(&self) -> u64 {
        failure_of(&self.failure).reopens
    }

    /// Whether a read that failed may have failed because of the writer: it refuses
    /// appends (and so will reopen the log), is reopening it right now, or reopened it
    /// since `reopens_before` was taken, before the read. Checked in that order: the
    /// model in `tests/watermark_model.rs` found that without the last check a read
    /// failing just before a reopen finished ended the subscription.
    fn failed_because_of_the_writer(&self, reopens_before: u64) -> bool {
        let (failing, reopens) = {
            let failure = failure_of(&self.failure);
            (failure.why.is_some(), failure.reopens)
        };
        failing || self.slot.read().map(|slot| slot.is_none()).unwrap_or(true) || reopens_before != reopens
    }
}

impl Subscription for SledSubscription {
    async fn next(&mut self) -> Result<RecordedEvent, ReadError> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Ok(event);
            }
            let durable = *self.durable.borrow_and_update();
            if self.next_sequence <= durable {
                let reopens_before = self.reopens();
                // A page is a disk read: off the async runtime. Dropping this future
                // while it waits loses nothing: the position moves only below.
                let (slot, from) = (self.slot.clone(), self.next_sequence);
                let page = tokio::task::spawn_blocking(move || {
                    current(&slot)
                        .and_then(|handles| read_range(&handles.tree, from, durable, SUBSCRIPTION_PAGE_EVENTS))
                })
                .await
                .unwrap_or_else(|stopped| Err(ReadError::Damaged(format!("a page read stopped: {stopped}"))));
                let page = match page {
                    Ok(page) => page,
                    // The log cannot be read just now (the writer is reopening it after
                    // a failed write): what is durable stays durable, so wait and read
                    // again rather than end the subscription.
                    Err(ReadError::Unavailable(_)) if self.failed_because_of_the_writer(reopens_before) => {
                        if self.durable.has_changed().is_err() {
                            return Err(ReadError::Closed);
                        }
                        tokio::time::sleep(UNAVAILABLE_RETRY).await;
                        continue;
                    }
                    Err(other) => return Err(other),
                };
                if page.is_empty() {
                    return Err(ReadError::Damaged(format!("sequence {} is missing", self.next_sequence)));
                }
                self.next_sequence += page.len() as u64;
                self.buffer.extend(page);
                continue;
            }
            if self.durable.changed().await.is_err() {
                return Err(ReadError::Closed);
            }
        }
    }
}
