//! Property tests of the log: against a small reference model when one writer appends,
//! and against the log's invariants when many writers race a live subscriber.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use tafel_store::{
    AppendBatch, AppendCondition, AppendError, Appended, EventLog, ExpectedVersion, NewEvent, OpenOptions, Position,
    RecordedEvent, SledLog, Subscription,
};

const STREAMS: u8 = 4;

#[derive(Clone, Debug)]
enum Kind {
    New,
    /// Send op `n` of the same writer again, unchanged.
    Resend(usize),
    /// Reuse op `n`'s ids with other content.
    Reuse(usize),
}

#[derive(Clone, Debug)]
struct Op {
    stream: u8,
    expected: Option<u64>,
    size: usize,
    kind: Kind,
    /// A consistency boundary: the streams the decision read, and how many events
    /// before the log's end (at the time of the append) it was made at.
    condition: Option<(Vec<u8>, u64)>,
    /// Streams the batch changes beside its own.
    touches: Vec<u8>,
}

fn op() -> impl Strategy<Value = Op> {
    (
        0..STREAMS,
        prop_oneof![Just(None), (0u64..6).prop_map(Some)],
        1usize..4,
        prop_oneof![
            6 => Just(Kind::New),
            1 => (0usize..20).prop_map(Kind::Resend),
            1 => (0usize..20).prop_map(Kind::Reuse),
        ],
        prop_oneof![
            2 => Just(None),
            1 => (prop::collection::vec(0..STREAMS, 1..3), 0u64..4).prop_map(Some),
        ],
        prop::collection::vec(0..STREAMS, 0..2),
    )
        .prop_map(|(stream, expected, size, kind, condition, touches)| Op {
            stream,
            expected,
            size,
            kind,
            condition,
            touches,
        })
}

/// Turns a writer's script into batches; a resend or reuse of an op not yet made is new.
fn batches(writer: usize, script: &[Op]) -> Vec<AppendBatch> {
    let mut made: Vec<AppendBatch> = Vec::new();
    for (index, op) in script.iter().enumerate() {
        let expected = op.expected.map_or(ExpectedVersion::Any, ExpectedVersion::Exactly);
        let batch = match op.kind {
            Kind::Resend(n) if n < index => made[n].clone(),
            Kind::Reuse(n) if n < index => {
                let mut reused = made[n].clone();
                for event in &mut reused.events {
                    event.identity.extend_from_slice(b" changed");
                }
                reused
            }
            _ => AppendBatch {
                stream: format!("stream-{}", op.stream),
                expected,
                events: (0..op.size)
                    .map(|k| NewEvent {
                        id: format!("w{writer}-o{index}-{k}"),
                        principal: format!("p{writer}"),
                        identity: format!("content of w{writer} o{index} {k}").into_bytes(),
                        payload: format!("payload {writer} {index} {k}").into_bytes(),
                    })
                    .collect(),
                condition: AppendCondition {
                    // `after` is set when the batch is sent (see `at`), from the lag.
                    after: op.condition.as_ref().map_or(0, |(_, lag)| *lag),
                    streams: op.condition.iter().flat_map(|(read, _)| read).map(|s| format!("stream-{s}")).collect(),
                },
                touches: op.touches.iter().map(|s| format!("stream-{s}")).collect(),
            },
        };
        made.push(batch);
    }
    made
}

/// The batch as sent when the log is `log_end` long: its condition's `after` holds the
/// lag until then.
fn at(mut batch: AppendBatch, log_end: u64) -> AppendBatch {
    batch.condition.after = log_end.saturating_sub(batch.condition.after);
    batch
}

/// The contract's rules for one append, written plainly.
#[derive(Default)]
struct Model {
    log: Vec<(String, String)>,
    heads: HashMap<String, u64>,
    ids: HashMap<String, (Vec<u8>, Position)>,
    /// The last sequence appended to or touching each stream.
    last_on: HashMap<String, u64>,
}

impl Model {
    fn append(&mut self, batch: &AppendBatch) -> Result<Appended, AppendError> {
        let mut reused = Vec::new();
        for event in &batch.events {
            if let Some((identity, position)) = self.ids.get(&event.id) {
                if *identity != event.identity {
                    return Err(AppendError::IdConflict { id: event.id.clone() });
                }
                reused.push((event.id.clone(), *position));
            }
        }
        if !reused.is_empty() {
            if reused.len() < batch.events.len() {
                return Err(AppendError::IdConflict { id: reused[0].0.clone() });
            }
            return Ok(Appended { positions: reused.into_iter().map(|(_, p)| p).collect(), duplicate: true });
        }
        for stream in &batch.condition.streams {
            if self.last_on.get(stream).copied().unwrap_or(0) > batch.condition.after {
                return Err(AppendError::ConditionFailed { stream: stream.clone(), after: batch.condition.after });
            }
        }
        let current = self.heads.get(&batch.stream).copied().unwrap_or(0);
        if let ExpectedVersion::Exactly(expected) = batch.expected
            && expected != current
        {
            return Err(AppendError::VersionConflict { stream: batch.stream.clone(), expected, actual: current });
        }
        let mut positions = Vec::new();
        for (offset, event) in batch.events.iter().enumerate() {
            self.log.push((event.id.clone(), batch.stream.clone()));
            let position = Position { sequence: self.log.len() as u64, stream_version: current + offset as u64 + 1 };
            self.ids.insert(event.id.clone(), (event.identity.clone(), position));
            positions.push(position);
        }
        self.heads.insert(batch.stream.clone(), current + batch.events.len() as u64);
        for stream in batch.touches.iter().chain([&batch.stream]) {
            self.last_on.insert(stream.clone(), self.log.len() as u64);
        }
        Ok(Appended { positions, duplicate: false })
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Every stream read from every version (and its head) is the log's events of that
/// stream from that version on.
fn check_streams(log: &SledLog, stored: &[RecordedEvent]) -> Result<(), TestCaseError> {
    for stream in 0..STREAMS {
        let stream = format!("stream-{stream}");
        let of_stream: Vec<&RecordedEvent> = stored.iter().filter(|event| event.stream == stream).collect();
        prop_assert_eq!(log.stream_version(&stream).unwrap(), of_stream.len() as u64);
        for from in 0..=of_stream.len() as u64 + 1 {
            let read = log.read_stream(&stream, from).unwrap();
            let expected: Vec<RecordedEvent> =
                of_stream.iter().filter(|event| event.stream_version >= from).map(|event| (*event).clone()).collect();
            prop_assert_eq!(read, expected, "stream {} from version {}", stream, from);
        }
    }
    Ok(())
}

/// Gap-free, consecutive per-stream versions, each id once.
fn check_log_invariants(events: &[RecordedEvent]) -> Result<(), TestCaseError> {
    let mut versions: HashMap<&str, u64> = HashMap::new();
    let mut ids = HashSet::new();
    let mut last_time = i64::MIN;
    for (index, event) in events.iter().enumerate() {
        prop_assert_eq!(event.sequence, index as u64 + 1, "sequence gap");
        let version = versions.entry(&event.stream).or_insert(0);
        *version += 1;
        prop_assert_eq!(event.stream_version, *version, "stream versions not consecutive");
        prop_assert!(ids.insert(event.id.clone()), "id {} stored twice", event.id);
        prop_assert!(event.recorded_at_ms >= last_time, "commit time went back");
        last_time = event.recorded_at_ms;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// One writer: every answer equals the model's, and the log is the model's log.
    #[test]
    fn one_writer_matches_the_model(script in prop::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let log = SledLog::open(dir.path(), OpenOptions::default()).unwrap();
            let mut model = Model::default();
            for batch in batches(0, &script) {
                let batch = at(batch, model.log.len() as u64);
                let expected = model.append(&batch);
                let actual = log.append(batch).await;
                prop_assert_eq!(actual, expected);
            }
            let stored = log.read_from(1, 10_000).unwrap();
            check_log_invariants(&stored)?;
            check_streams(&log, &stored)?;
            // Opened again, the heads come from the stream index on disk.
            log.shutdown().await;
            drop(log);
            let log = SledLog::open(dir.path(), OpenOptions::default()).unwrap();
            check_streams(&log, &stored)?;
            for stream in 0..STREAMS {
                let stream = format!("stream-{stream}");
                let head = stored.iter().filter(|event| event.stream == stream).count() as u64;
                let batch = AppendBatch {
                    stream: stream.clone(),
                    expected: ExpectedVersion::Exactly(head),
                    events: vec![NewEvent {
                        id: format!("after-{stream}"),
                        principal: "p".into(),
                        identity: b"after".to_vec(),
                        payload: b"{}".to_vec(),
                    }],
                    condition: Default::default(),
                    touches: Vec::new(),
                };
                let appended = log.append(batch).await.unwrap();
                prop_assert_eq!(appended.positions[0].stream_version, head + 1);
            }
            let stored: Vec<(String, String)> = stored.into_iter().map(|e| (e.id, e.stream)).collect();
            prop_assert_eq!(stored, model.log);
            Ok(())
        })?;
    }

    /// Many writers at once, and a subscriber from the start: the log keeps its
    /// invariants, every answer points at its own events, and the subscriber saw
    /// exactly the log, which a reopen reads back the same.
    #[test]
    fn many_writers_keep_the_log_whole(
        scripts in prop::collection::vec(prop::collection::vec(op(), 1..12), 2..16)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (answers, seen, stored) = runtime().block_on(async {
            let log = SledLog::open(dir.path(), OpenOptions::default()).unwrap();
            let mut subscription = log.subscribe(1);
            let mut writers = Vec::new();
            for (writer, script) in scripts.iter().enumerate() {
                let log = log.clone();
                let batches = batches(writer, script);
                writers.push(tokio::spawn(async move {
                    let mut answers = Vec::new();
                    for batch in batches {
                        let batch = at(batch, log.last_sequence());
                        let answer = log.append(batch.clone()).await;
                        answers.push((batch, answer));
                    }
                    answers
                }));
            }
            let mut answers = Vec::new();
            for writer in writers {
                answers.extend(writer.await.unwrap());
            }
            let last = log.last_sequence();
            let mut seen = Vec::new();
            while (seen.len() as u64) < last {
                let event = tokio::time::timeout(std::time::Duration::from_secs(10), subscription.next())
                    .await
                    .expect("the subscriber stalled")
                    .unwrap();
                seen.push(event);
            }
            let stored = log.read_from(1, 100_000).unwrap();
            log.shutdown().await;
            (answers, seen, stored)
        });

        check_log_invariants(&stored)?;
        prop_assert_eq!(&seen, &stored);
        let by_id: HashMap<&str, &RecordedEvent> = stored.iter().map(|e| (e.id.as_str(), e)).collect();
        let mut appended = 0;
        for (batch, answer) in &answers {
            match answer {
                Ok(appended_batch) => {
                    prop_assert_eq!(appended_batch.positions.len(), batch.events.len());
                    for (event, position) in batch.events.iter().zip(&appended_batch.positions) {
                        let stored = by_id.get(event.id.as_str()).copied();
                        prop_assert!(stored.is_some(), "accepted {} is missing", event.id);
                        prop_assert_eq!(stored.unwrap().position(), *position);
                        prop_assert_eq!(&stored.unwrap().stream, &batch.stream);
                    }
                    if !appended_batch.duplicate {
                        appended += batch.events.len();
                        // The boundary held: nothing happened on what the decision read
                        // between its position and the append.
                        let first = appended_batch.positions[0].sequence;
                        let after = batch.condition.after;
                        for stream in &batch.condition.streams {
                            let moved = stored
                                .iter()
                                .any(|e| e.sequence > after && e.sequence < first && &e.stream == stream)
                                || answers.iter().any(|(other, answer)| {
                                    other.touches.contains(stream)
                                        && matches!(answer, Ok(a) if !a.duplicate
                                            && a.positions.iter().any(|p| p.sequence > after && p.sequence < first))
                                });
                            prop_assert!(!moved, "{} moved after {} yet a batch that read it was appended", stream, after);
                        }
                    }
                }
                Err(AppendError::VersionConflict { expected, actual, .. }) => prop_assert_ne!(expected, actual),
                Err(AppendError::ConditionFailed { stream, after }) => {
                    // Something did happen on the stream after the decision's position
                    // (an append to it, or one touching it, which only the writer saw).
                    let on_it = stored.iter().any(|e| e.sequence > *after && &e.stream == stream);
                    let touched = answers.iter().any(|(other, answer)| {
                        other.touches.contains(stream)
                            && matches!(answer, Ok(a) if !a.duplicate && a.positions.iter().any(|p| p.sequence > *after))
                    });
                    prop_assert!(on_it || touched, "condition on {} after {} failed for nothing", stream, after);
                }
                Err(AppendError::IdConflict { id }) => {
                    prop_assert!(by_id.contains_key(id.as_str()), "conflict on unknown id {}", id)
                }
                Err(other) => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        prop_assert_eq!(appended, stored.len(), "appended events and log differ");

        let reopened = SledLog::open(dir.path(), OpenOptions::default()).unwrap();
        prop_assert_eq!(reopened.read_from(1, 100_000).unwrap(), stored);
    }
}
