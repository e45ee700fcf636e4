//! Model checking of the handshake between the writer, the durable watermark and the
//! subscriptions (issue 12): every interleaving of their steps, not the ones a test
//! happens to hit, explored exhaustively with stateright.
//!
//! The model takes the steps of the code, one shared-memory access per step, in the
//! code's order:
//!
//! - the writer (`writer.rs`): apply a group's batch to the tree, flush, send the new
//!   durable sequence on the watch channel, answer; or, when the flush fails, record the
//!   failure and later reopen the log: take the handles from the slot, open the log
//!   again (the failed group may or may not have reached the disk), put the handles
//!   back, clear the failure (counting the reopen), send the durable sequence;
//! - a subscription (`subscription.rs`): `borrow_and_update` the watermark; if it owes
//!   events up to it, note the reopen count, read a page up to the watermark (failing
//!   while the slot is empty), yield it; on a failed read decide whether to wait it out
//!   (the failure lock, then the slot); when it owes nothing, wait for `changed()`,
//!   which returns once a version newer than the one it saw is sent (tokio's watch).
//!
//! Properties: a subscription yields 1, 2, 3, ... without gap or repeat; what it yielded
//! is what the log holds at that sequence, for ever (it never saw an event that a failed
//! flush then lost); it never gives up on a healthy log; nothing acknowledged is lost;
//! and in every state where nothing can move, every subscription has yielded the whole
//! durable log (no lost wake-up).
//!
//! Mutations of the code's order (each a `Variant`) must each be caught, so a property
//! that cannot fail would show. One of them is the code as it was before this test: a
//! read failing just before a reopen finished ended the subscription.

use stateright::{Checker, HasDiscoveries, Model, Property};

/// Appends in each explored run.
const APPENDS: u8 = 4;
/// Failed flushes in each explored run.
const FAILURES: u8 = 2;
/// Subscriptions following the log.
const SUBSCRIBERS: usize = 2;

#[derive(Clone, Copy, Debug, Default)]
struct Variant {
    /// Send the watermark before the batch is in the tree.
    publish_before_apply: bool,
    /// Wait for sends after the wait began (a notification without a permit) instead
    /// of for any version newer than the one read.
    wait_for_later_sends_only: bool,
    /// Decide whether to wait out a failed read without the reopen count (the code
    /// before this test).
    without_reopen_count: bool,
    /// Read to the end of the tree rather than to the watermark.
    read_past_watermark: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Writer {
    Idle,
    /// `publish_before_apply` only: the watermark is sent, the batch not yet applied.
    Announced,
    /// The batch is in the tree (readable in memory), not yet flushed.
    Applied,
    /// A flush failed: appends are refused until the log is reopened.
    Failed,
    /// The handles are out of the slot.
    SlotTaken,
    /// The reopened log's handles are back in the slot.
    SlotPut,
    /// The failure is cleared and the reopen counted; the watermark is sent next.
    Cleared,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Step {
    /// At the top of `next()`: `borrow_and_update` the watermark.
    Top,
    /// About to note the reopen count before reading up to `through`.
    Noting { through: u8 },
    /// About to read a page from `next` up to `through`.
    Reading { through: u8, reopens: u8 },
    /// A read failed; about to look at the failure lock.
    Failed { reopens: u8 },
    /// The failure lock said healthy (`count_changed`: the reopen count moved since
    /// the read); about to look at the slot.
    CheckingSlot { count_changed: bool },
    /// Waiting `UNAVAILABLE_RETRY` before reading again.
    Sleeping,
    /// Owing nothing: about to call `changed()`.
    ToWait,
    /// In `changed()`: returns once the watch's version exceeds `after`.
    Waiting { after: u8 },
    /// The subscription returned an error.
    Ended(&'static str),
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Subscriber {
    next: u8,
    /// The watch version `borrow_and_update` last marked as seen.
    seen: u8,
    step: Step,
    /// The events yielded, by their identity.
    yielded: Vec<u8>,
    /// The first broken promise, if any.
    broken: Option<&'static str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct State {
    /// The events in the open tree, by identity (the index is the sequence - 1).
    tree: Vec<u8>,
    /// How many of them are certainly on disk.
    on_disk: u8,
    /// What each acknowledged sequence holds (a resend finds it there).
    acknowledged: Vec<u8>,
    slot_open: bool,
    failing: bool,
    reopens: u8,
    /// The watch channel: value and version.
    durable: u8,
    version: u8,
    writer: Writer,
    appends: u8,
    failures: u8,
    subscribers: Vec<Subscriber>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Action {
    Announce,
    Apply,
    FlushSucceeds,
    FlushFails,
    TakeSlot,
    Reopen { failed_group_on_disk: bool },
    ClearFailure,
    SendDurable,
    Subscriber(usize),
}

struct Handshake {
    variant: Variant,
}

impl Handshake {
    fn subscriber_step(&self, state: &mut State, index: usize) {
        let variant = self.variant;
        let (durable, version, reopens, slot_open, failing) =
            (state.durable, state.version, state.reopens, state.slot_open, state.failing);
        let tree = state.tree.clone();
        let subscriber = &mut state.subscribers[index];
        subscriber.step = match subscriber.step.clone() {
            Step::Top => {
                subscriber.seen = version;
                if subscriber.next <= durable { Step::Noting { through: durable } } else { Step::ToWait }
            }
            Step::Noting { through } => Step::Reading { through, reopens },
            Step::Reading { through, reopens } => {
                if !slot_open {
                    Step::Failed { reopens }
                } else {
                    let through = if variant.read_past_watermark { tree.len() as u8 } else { through };
                    let available = through.min(tree.len() as u8);
                    if available < subscriber.next {
                        Step::Ended("a sequence below the watermark is missing from the log")
                    } else {
                        for sequence in subscriber.next..=available {
                            let expected = subscriber.yielded.len() as u8 + 1;
                            if sequence != expected {
                                subscriber.broken.get_or_insert("yielded out of order");
                            }
                            subscriber.yielded.push(tree[sequence as usize - 1]);
                        }
                        subscriber.next = available + 1;
                        Step::Top
                    }
                }
            }
            Step::Failed { reopens: before } => {
                if failing {
                    Step::Sleeping
                } else {
                    Step::CheckingSlot { count_changed: !variant.without_reopen_count && before != reopens }
                }
            }
            Step::CheckingSlot { count_changed } => {
                if !slot_open || count_changed {
                    Step::Sleeping
                } else {
                    Step::Ended("a read failed on a healthy log")
                }
            }
            Step::Sleeping => Step::Top,
            Step::ToWait => {
                let after = if variant.wait_for_later_sends_only { version } else { subscriber.seen };
                Step::Waiting { after }
            }
            Step::Waiting { after } if version > after => Step::Top,
            step @ (Step::Waiting { .. } | Step::Ended(_)) => step,
        };
        if let Step::Ended(why) = subscriber.step {
            subscriber.broken.get_or_insert(why);
        }
    }

    fn can_move(&self, state: &State) -> bool {
        let mut actions = Vec::new();
        self.actions(state, &mut actions);
        !actions.is_empty()
    }
}

impl Model for Handshake {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let subscriber = Subscriber { next: 1, seen: 0, step: Step::Top, yielded: Vec::new(), broken: None };
        vec![State {
            tree: Vec::new(),
            on_disk: 0,
            acknowledged: Vec::new(),
            slot_open: true,
            failing: false,
            reopens: 0,
            durable: 0,
            version: 0,
            writer: Writer::Idle,
            appends: 0,
            failures: 0,
            subscribers: vec![subscriber; SUBSCRIBERS],
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        match state.writer {
            Writer::Idle if state.appends < APPENDS => {
                actions.push(if self.variant.publish_before_apply { Action::Announce } else { Action::Apply })
            }
            Writer::Idle => {}
            Writer::Announced => actions.push(Action::Apply),
            Writer::Applied => {
                actions.push(Action::FlushSucceeds);
                if state.failures < FAILURES {
                    actions.push(Action::FlushFails);
                }
            }
            Writer::Failed => actions.push(Action::TakeSlot),
            Writer::SlotTaken => {
                actions.push(Action::Reopen { failed_group_on_disk: true });
                actions.push(Action::Reopen { failed_group_on_disk: false });
            }
            Writer::SlotPut => actions.push(Action::ClearFailure),
            Writer::Cleared => actions.push(Action::SendDurable),
        }
        for (index, subscriber) in state.subscribers.iter().enumerate() {
            let moves = match subscriber.step {
                Step::Waiting { after } => state.version > after,
                Step::Ended(_) => false,
                _ => true,
            };
            if moves {
                actions.push(Action::Subscriber(index));
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut state = last.clone();
        match action {
            Action::Announce => {
                state.durable = state.tree.len() as u8 + 1;
                state.version += 1;
                state.writer = Writer::Announced;
            }
            Action::Apply => {
                // Each event's identity is new: after a lost group, the same sequence
                // holds another event.
                state.appends += 1;
                state.tree.push(state.appends);
                state.writer = Writer::Applied;
            }
            Action::FlushSucceeds => {
                state.on_disk = state.tree.len() as u8;
                if !self.variant.publish_before_apply {
                    state.durable = state.on_disk;
                    state.version += 1;
                }
                state.acknowledged = state.tree.clone();
                state.writer = Writer::Idle;
            }
            Action::FlushFails => {
                state.failures += 1;
                state.failing = true;
                state.writer = Writer::Failed;
            }
            Action::TakeSlot => {
                state.slot_open = false;
                state.writer = Writer::SlotTaken;
            }
            Action::Reopen { failed_group_on_disk } => {
                // The reopened log ends where the disk does: the failed group is there
                // or not (its appenders were told `unavailable`, either is right).
                if !failed_group_on_disk {
                    state.tree.truncate(state.on_disk as usize);
                }
                state.on_disk = state.tree.len() as u8;
                state.slot_open = true;
                state.writer = Writer::SlotPut;
            }
            Action::ClearFailure => {
                state.failing = false;
                state.reopens += 1;
                state.writer = Writer::Cleared;
            }
            Action::SendDurable => {
                state.durable = state.on_disk;
                state.version += 1;
                state.writer = Writer::Idle;
            }
            Action::Subscriber(index) => self.subscriber_step(&mut state, index),
        }
        Some(state)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(IN_ORDER, |_, state: &State| {
                state.subscribers.iter().all(|subscriber| subscriber.broken.is_none())
            }),
            Property::always("what a subscription yielded is what the log holds there", |_, state: &State| {
                state.subscribers.iter().all(|subscriber| state.tree.starts_with(&subscriber.yielded))
            }),
            Property::always("an acknowledged event stays in the log", |_, state: &State| {
                state.tree.starts_with(&state.acknowledged) && state.durable as usize >= state.acknowledged.len()
            }),
            Property::always(NO_LOST_WAKE_UP, |model: &Handshake, state: &State| {
                model.can_move(state)
                    || state.subscribers.iter().all(|subscriber| subscriber.yielded.len() == state.tree.len())
            }),
            Property::sometimes("a subscription follows the log through a reopen", |_, state: &State| {
                state.reopens > 0 && state.subscribers.iter().any(|subscriber| subscriber.yielded.len() == 3)
            }),
        ]
    }
}

const IN_ORDER: &str = "a subscription yields the log in order, and gives up only on damage";
const NO_LOST_WAKE_UP: &str = "when nothing can move, every subscription has yielded the whole log";

/// Explores every state, or (with `until`) stops at the first discovery of that property.
fn check(variant: Variant, until: Option<&'static str>) -> impl Checker<Handshake> {
    let builder = Handshake { variant }.checker().threads(1);
    let builder = match until {
        Some(name) => builder.finish_when(HasDiscoveries::AnyOf([name].into())),
        None => builder,
    };
    builder.spawn_bfs().join()
}

#[test]
fn the_writer_watermark_and_subscriptions_keep_their_promises_in_every_interleaving() {
    let checker = check(Variant::default(), None);
    checker.assert_properties();
    // The whole space was explored, not a sample of it.
    assert!(checker.is_done());
    assert!(checker.unique_state_count() > 10_000, "{} states", checker.unique_state_count());
    eprintln!(
        "{} states, {} unique, depth {}",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth()
    );
}

#[test]
fn sending_the_watermark_before_the_batch_is_applied_is_caught() {
    let checker = check(Variant { publish_before_apply: true, ..Variant::default() }, Some(IN_ORDER));
    checker.assert_any_discovery(IN_ORDER);
}

#[test]
fn reading_past_the_watermark_is_caught() {
    const AS_IN_LOG: &str = "what a subscription yielded is what the log holds there";
    let checker = check(Variant { read_past_watermark: true, ..Variant::default() }, Some(AS_IN_LOG));
    checker.assert_any_discovery(AS_IN_LOG);
}

#[test]
fn waiting_only_for_later_sends_loses_a_wake_up_and_is_caught() {
    let checker = check(Variant { wait_for_later_sends_only: true, ..Variant::default() }, Some(NO_LOST_WAKE_UP));
    checker.assert_any_discovery(NO_LOST_WAKE_UP);
}

#[test]
fn without_the_reopen_count_a_read_failing_as_a_reopen_ends_stops_the_subscription() {
    let checker = check(Variant { without_reopen_count: true, ..Variant::default() }, Some(IN_ORDER));
    let path = checker.assert_any_discovery(IN_ORDER);
    let ended = path.last_state().subscribers.iter().any(|s| s.broken == Some("a read failed on a healthy log"));
    assert!(ended, "{:?}", path.last_state());
    eprintln!("counterexample: {:?}", path.into_actions());
}
