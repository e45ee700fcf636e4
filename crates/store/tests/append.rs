//! Example tests of the log's promises: versions, idempotency, reads, subscriptions,
//! shutdown, and refusing to serve a damaged log.

use tafel_store::{
    AppendBatch, AppendCondition, AppendError, EventLog, ExpectedVersion, IdLookup, NewEvent, OpenError, OpenOptions,
    Position, ReadError, SledLog, Subscription, Verify,
};

fn event(id: &str, content: &str) -> NewEvent {
    NewEvent {
        id: id.into(),
        principal: "acme".into(),
        identity: content.as_bytes().to_vec(),
        payload: format!("{{\"content\":{content:?}}}").into_bytes(),
    }
}

fn batch(stream: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> AppendBatch {
    AppendBatch::new(stream, expected, events)
}

/// The log's sled database opened behind the store's back; sled lets go of its file
/// lock a moment after the log is dropped, so this waits for it (up to 2 s).
fn raw_sled(dir: &std::path::Path) -> sled::Db {
    let config = sled::Config::new().path(dir.join("sled")).segment_size(tafel_store::SEGMENT_SIZE_BYTES);
    let waiting = std::time::Instant::now();
    loop {
        match config.open() {
            Ok(db) => return db,
            Err(cause) if waiting.elapsed() < std::time::Duration::from_secs(2) => {
                assert!(cause.to_string().contains("could not acquire lock"), "{cause}");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(cause) => panic!("{cause}"),
        }
    }
}

fn open(dir: &std::path::Path) -> SledLog {
    SledLog::open(dir, OpenOptions::default()).expect("open")
}

#[tokio::test]
async fn versions_are_checked_and_sequences_run_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let first = log.append(batch("r/1", ExpectedVersion::Exactly(0), vec![event("a", "1")])).await.unwrap();
    assert_eq!(first.positions, vec![Position { sequence: 1, stream_version: 1 }]);
    assert!(!first.duplicate);

    // A creating append on an existing stream is a version conflict.
    let again = log.append(batch("r/1", ExpectedVersion::Exactly(0), vec![event("b", "2")])).await;
    assert_eq!(again, Err(AppendError::VersionConflict { stream: "r/1".into(), expected: 0, actual: 1 }));

    let two =
        log.append(batch("r/1", ExpectedVersion::Exactly(1), vec![event("b", "2"), event("c", "3")])).await.unwrap();
    assert_eq!(
        two.positions,
        vec![Position { sequence: 2, stream_version: 2 }, Position { sequence: 3, stream_version: 3 }]
    );
    let other = log.append(batch("r/2", ExpectedVersion::Any, vec![event("d", "4")])).await.unwrap();
    assert_eq!(other.positions, vec![Position { sequence: 4, stream_version: 1 }]);

    assert_eq!(log.stream_version("r/1").unwrap(), 3);
    assert_eq!(log.stream_version("r/3").unwrap(), 0);
    let stream: Vec<u64> = log.read_stream("r/1", 1).unwrap().iter().map(|e| e.sequence).collect();
    assert_eq!(stream, vec![1, 2, 3]);
    let tail: Vec<u64> = log.read_stream("r/1", 3).unwrap().iter().map(|e| e.sequence).collect();
    assert_eq!(tail, vec![3]);
    let page: Vec<String> = log.read_from(2, 2).unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(page, vec!["b", "c"]);
    assert_eq!(log.last_sequence(), 4);
}

/// A batch on `stream` that holds only if nothing happened on `read` after `after`.
fn conditional(stream: &str, id: &str, after: u64, read: &[&str], touches: &[&str]) -> AppendBatch {
    AppendBatch {
        condition: AppendCondition { after, streams: read.iter().map(|s| s.to_string()).collect() },
        touches: touches.iter().map(|s| s.to_string()).collect(),
        ..batch(stream, ExpectedVersion::Any, vec![event(id, id)])
    }
}

#[tokio::test]
async fn a_condition_holds_only_while_nothing_it_read_has_moved() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.append(batch("request/r1", ExpectedVersion::Exactly(0), vec![event("r1", "1")])).await.unwrap();
    log.append(batch("mandate/m1", ExpectedVersion::Exactly(0), vec![event("m1", "2")])).await.unwrap();

    // Decided at 2, nothing read moved since: appended.
    log.append(conditional("roundtable/t1", "t1", 2, &["request/r1"], &[])).await.unwrap();
    // r1 moves on at 4: a decision made at 3 that read it is stale.
    log.append(batch("request/r1", ExpectedVersion::Any, vec![event("r1-w", "4")])).await.unwrap();
    let stale = log.append(conditional("roundtable/t1", "t1-agenda", 3, &["request/r1"], &[])).await;
    assert_eq!(stale, Err(AppendError::ConditionFailed { stream: "request/r1".into(), after: 3 }));
    assert_eq!(log.last_sequence(), 4, "nothing of a refused batch is stored");
    log.append(conditional("roundtable/t1", "t1-agenda", 4, &["request/r1"], &[])).await.unwrap();

    // A batch that touches m1 (a conclusion spending its budget) is an event on m1.
    log.append(conditional("roundtable/t1", "t1-concluded", 5, &["mandate/m1"], &["mandate/m1"])).await.unwrap();
    let spent_twice =
        log.append(conditional("roundtable/t2", "t2-concluded", 5, &["mandate/m1"], &["mandate/m1"])).await;
    assert_eq!(spent_twice, Err(AppendError::ConditionFailed { stream: "mandate/m1".into(), after: 5 }));
    assert_eq!(log.stream_version("mandate/m1").unwrap(), 1, "touching is not appending");

    // After a reopen the writer no longer knows when r1 last moved: a decision older
    // than the reopened log is made again; one made on the reopened log holds.
    drop(log);
    let log = open(dir.path());
    let old = log.append(conditional("roundtable/t3", "t3", 5, &["request/r1"], &[])).await;
    assert_eq!(old, Err(AppendError::ConditionFailed { stream: "request/r1".into(), after: 5 }));
    log.append(conditional("roundtable/t3", "t3", 6, &["request/r1"], &[])).await.unwrap();
}

#[tokio::test]
async fn conditions_are_checked_against_the_appends_of_the_same_group() {
    // Two decisions made at the same position, spending the same mandate, sent at once:
    // whatever group commit makes of them, exactly one is appended.
    for round in 0..50 {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        log.append(batch("mandate/m1", ExpectedVersion::Exactly(0), vec![event("m1", "m")])).await.unwrap();
        let (a, b) = tokio::join!(
            log.append(conditional("roundtable/a", "a", 1, &["mandate/m1"], &["mandate/m1"])),
            log.append(conditional("roundtable/b", "b", 1, &["mandate/m1"], &["mandate/m1"])),
        );
        assert_eq!(a.is_ok() as u8 + b.is_ok() as u8, 1, "round {round}: {a:?} {b:?}");
        assert_eq!(log.last_sequence(), 2);
    }
}

/// sled 0.34 never fsyncs its blob files, where it puts pages over a quarter of a
/// segment: the largest records the log takes must never make one.
#[tokio::test]
async fn the_largest_records_stay_out_of_sleds_unsynced_blob_files() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let stream = "s".repeat(tafel_store::MAX_STREAM_BYTES);
    for round in 0..6u8 {
        let events = (0..24u8)
            .map(|index| NewEvent {
                id: format!("{round:03}-{index:03}-{}", "i".repeat(tafel_store::MAX_EVENT_ID_BYTES - 8)),
                principal: "p".repeat(tafel_store::MAX_PRINCIPAL_BYTES),
                identity: vec![round, index],
                payload: vec![b'x' + index % 3; tafel_store::MAX_PAYLOAD_BYTES],
            })
            .collect();
        log.append(batch(&stream, ExpectedVersion::Any, events)).await.unwrap();
    }
    let blobs: Vec<_> = std::fs::read_dir(dir.path().join("sled").join("blobs"))
        .map(|entries| entries.filter_map(Result::ok).map(|entry| entry.file_name()).collect())
        .unwrap_or_default();
    assert!(blobs.is_empty(), "sled wrote blob files it will not fsync: {blobs:?}");
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.read_from(1, 1000).unwrap().len(), 6 * 24);
}

#[tokio::test]
async fn the_same_id_with_the_same_content_is_a_duplicate_for_ever() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        log.append(batch("r/1", ExpectedVersion::Exactly(0), vec![event("a", "1")])).await.unwrap();
        log.append(batch("r/1", ExpectedVersion::Any, vec![event("b", "2")])).await.unwrap();
        // The stream moved on; the resend still answers with the original position.
        let resend = log.append(batch("r/1", ExpectedVersion::Exactly(0), vec![event("a", "1")])).await.unwrap();
        assert!(resend.duplicate);
        assert_eq!(resend.positions, vec![Position { sequence: 1, stream_version: 1 }]);
        assert_eq!(log.last_sequence(), 2);
        log.shutdown().await;
    }
    // ...and after a reopen.
    let log = open(dir.path());
    let resend = log.append(batch("r/1", ExpectedVersion::Any, vec![event("b", "2")])).await.unwrap();
    assert!(resend.duplicate);
    assert_eq!(resend.positions, vec![Position { sequence: 2, stream_version: 2 }]);
    assert_eq!(log.lookup_id("a", b"1").unwrap(), IdLookup::Duplicate(Position { sequence: 1, stream_version: 1 }));
    assert_eq!(log.lookup_id("a", b"other").unwrap(), IdLookup::Conflict);
    assert_eq!(log.lookup_id("zz", b"1").unwrap(), IdLookup::Unknown);
    assert_eq!(log.last_sequence(), 2);
}

#[tokio::test]
async fn the_same_id_with_other_content_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.append(batch("r/1", ExpectedVersion::Any, vec![event("a", "1")])).await.unwrap();
    let refused = log.append(batch("r/1", ExpectedVersion::Any, vec![event("a", "changed")])).await;
    assert_eq!(refused, Err(AppendError::IdConflict { id: "a".into() }));
    // An id reused on another stream is other content too.
    let mut moved = event("a", "1");
    moved.identity = b"1 on r/2".to_vec();
    let refused = log.append(batch("r/2", ExpectedVersion::Any, vec![moved])).await;
    assert_eq!(refused, Err(AppendError::IdConflict { id: "a".into() }));
    // A batch mixing an old id with a new one is not a resend; nothing of it is stored.
    let mixed = log.append(batch("r/1", ExpectedVersion::Any, vec![event("new", "n"), event("a", "1")])).await;
    assert_eq!(mixed, Err(AppendError::IdConflict { id: "a".into() }));
    assert_eq!(log.lookup_id("new", b"n").unwrap(), IdLookup::Unknown);
    assert_eq!(log.last_sequence(), 1);
}

#[tokio::test]
async fn malformed_batches_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let cases = vec![
        batch("r/1", ExpectedVersion::Any, vec![]),
        batch("", ExpectedVersion::Any, vec![event("a", "1")]),
        batch("r\0x", ExpectedVersion::Any, vec![event("a", "1")]),
        batch("r/1", ExpectedVersion::Any, vec![event("a", "1"), event("a", "1")]),
        batch("r/1", ExpectedVersion::Any, vec![event("", "1")]),
    ];
    for case in cases {
        assert!(matches!(log.append(case).await, Err(AppendError::InvalidBatch(_))));
    }
    assert_eq!(log.last_sequence(), 0);
}

#[tokio::test]
async fn concurrent_appends_in_one_group_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    // Many creators of the same stream race: exactly one wins, all others conflict.
    let mut tasks = Vec::new();
    for writer in 0..32 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            log.append(batch("r/1", ExpectedVersion::Exactly(0), vec![event(&format!("e{writer}"), "x")])).await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(appended) => {
                won += 1;
                assert_eq!(appended.positions[0], Position { sequence: 1, stream_version: 1 });
            }
            Err(AppendError::VersionConflict { actual: 1, .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(log.last_sequence(), 1);
}

#[tokio::test]
async fn a_subscription_catches_up_then_tails() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    for index in 0..5 {
        log.append(batch("s", ExpectedVersion::Any, vec![event(&format!("old{index}"), "x")])).await.unwrap();
    }
    let mut subscription = log.subscribe(3);
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            for index in 0..50 {
                log.append(batch("s", ExpectedVersion::Any, vec![event(&format!("new{index}"), "x")])).await.unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 53 {
        seen.push(subscription.next().await.unwrap().sequence);
    }
    writer.await.unwrap();
    assert_eq!(seen, (3..=55).collect::<Vec<u64>>());
}

#[tokio::test]
async fn shutdown_answers_what_is_queued_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut tasks = Vec::new();
    for index in 0..100 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            log.append(batch("s", ExpectedVersion::Any, vec![event(&format!("e{index}"), "x")])).await
        }));
    }
    tokio::task::yield_now().await;
    log.shutdown().await;
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(AppendError::Unavailable(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let after = log.append(batch("s", ExpectedVersion::Any, vec![event("late", "x")])).await;
    assert!(matches!(after, Err(AppendError::Unavailable(_))));
    drop(log);
    let reopened = open(dir.path());
    assert_eq!(reopened.last_sequence(), accepted);
}

/// Flips one byte of event `sequence`'s record, behind the store's back.
fn damage_record(dir: &std::path::Path, sequence: u64) {
    let db = raw_sled(dir);
    let tree = db.open_tree("log").unwrap();
    let mut key = vec![b'E'];
    key.extend_from_slice(&sequence.to_be_bytes());
    let mut value = tree.get(&key).unwrap().unwrap().to_vec();
    let last = value.len() - 1;
    value[last] ^= 0x01;
    tree.insert(&key, value).unwrap();
    db.flush().unwrap();
}

fn refused_as_damaged(dir: &std::path::Path, verify: Verify, expected: &str) {
    match SledLog::open(dir, OpenOptions { verify, ..OpenOptions::default() }) {
        Err(OpenError::Damaged { detail, .. }) => assert!(detail.contains(expected), "{detail}"),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a damaged log was opened"),
    }
}

#[tokio::test]
async fn a_damaged_record_is_reported_on_open_in_the_tail_and_on_read_before_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        for index in 0..3 {
            log.append(batch("s", ExpectedVersion::Any, vec![event(&format!("e{index}"), "x")])).await.unwrap();
        }
        log.shutdown().await;
    }
    // The clean stop wrote the checkpoint at 3: event 2 is before the tail, so opening
    // does not read it, but every read of it says it is damaged, and a full check
    // refuses the log.
    assert!(std::fs::read_to_string(dir.path().join("durable-sequence")).unwrap().ends_with("3\n"));
    damage_record(dir.path(), 2);
    {
        let log = SledLog::open(dir.path(), OpenOptions::default()).unwrap();
        assert_eq!(log.last_sequence(), 3);
        assert!(matches!(log.read_from(1, 10), Err(ReadError::Damaged(_))), "a damaged record was read");
        assert!(matches!(log.read_from(2, 1), Err(ReadError::Damaged(_))));
        assert_eq!(log.read_from(3, 1).unwrap().len(), 1);
        log.shutdown().await;
    }
    refused_as_damaged(dir.path(), Verify::All, "event 2");
    // With the checkpoint before it, event 2 is in the tail: opening refuses the log.
    std::fs::write(dir.path().join("durable-sequence"), "tafel durable-sequence v1\n1\n").unwrap();
    refused_as_damaged(dir.path(), Verify::Tail, "event 2");
    // And the checkpoint's own record is checked.
    std::fs::write(dir.path().join("durable-sequence"), "tafel durable-sequence v1\n2\n").unwrap();
    refused_as_damaged(dir.path(), Verify::Tail, "event 2");
}

#[tokio::test]
async fn a_log_shorter_than_its_checkpoint_is_reported_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        for index in 0..3 {
            log.append(batch("s", ExpectedVersion::Any, vec![event(&format!("e{index}"), "x")])).await.unwrap();
        }
        log.shutdown().await;
    }
    assert!(std::fs::read_to_string(dir.path().join("durable-sequence")).unwrap().ends_with("3\n"));
    {
        let db = raw_sled(dir.path());
        let tree = db.open_tree("log").unwrap();
        // Lose the last event whole, with its index entries, as a storage engine that
        // dropped a flushed write would: only the checkpoint can tell.
        let mut key = vec![b'E'];
        key.extend_from_slice(&3u64.to_be_bytes());
        tree.remove(&key).unwrap();
        let mut stream_key = b"Ss\0".to_vec();
        stream_key.extend_from_slice(&3u64.to_be_bytes());
        tree.remove(stream_key).unwrap().expect("stream entry");
        tree.remove(b"Ie2").unwrap().expect("id entry");
        db.flush().unwrap();
    }
    match SledLog::open(dir.path(), OpenOptions::default()) {
        Err(OpenError::Damaged { detail, .. }) => assert!(detail.contains("lost"), "{detail}"),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a shortened log was opened"),
    }
}

/// Logs written before the stream index held one entry per append had one entry per
/// event (its value just the sequence): such a log reads, verifies and goes on alike.
#[tokio::test]
async fn a_stream_index_of_one_entry_per_event_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        log.append(batch("r/1", ExpectedVersion::Exactly(0), vec![event("a", "1"), event("b", "2")])).await.unwrap();
        log.append(batch("r/2", ExpectedVersion::Exactly(0), vec![event("c", "3")])).await.unwrap();
        log.append(batch("r/1", ExpectedVersion::Exactly(2), vec![event("d", "4")])).await.unwrap();
        log.shutdown().await;
    }
    {
        // Rewrite the index as the old layout had it: S + stream + 0 + version -> sequence.
        let db = raw_sled(dir.path());
        let db = db.open_tree("log").unwrap();
        let runs: Vec<_> = db.scan_prefix(b"S").map(Result::unwrap).collect();
        assert_eq!(runs.len(), 3, "one entry per append");
        for (stream, versions_and_sequences) in [("r/1", [(1u64, 1u64), (2, 2), (3, 4)].as_slice()), ("r/2", &[(1, 3)])]
        {
            for &(version, sequence) in versions_and_sequences {
                let mut key = vec![b'S'];
                key.extend_from_slice(stream.as_bytes());
                key.push(0);
                key.extend_from_slice(&version.to_be_bytes());
                db.insert(key, &sequence.to_be_bytes()).unwrap();
            }
        }
        assert_eq!(db.scan_prefix(b"S").count(), 4, "the old layout has one entry per event");
        // And its format marker said 1.
        db.insert(b"F", &1u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let log = SledLog::open(dir.path(), OpenOptions { verify: Verify::All, ..OpenOptions::default() }).unwrap();
    assert_eq!(log.stream_version("r/1").unwrap(), 3);
    let sequences = |from| log.read_stream("r/1", from).unwrap().iter().map(|e| e.sequence).collect::<Vec<_>>();
    assert_eq!(sequences(1), vec![1, 2, 4]);
    assert_eq!(sequences(2), vec![2, 4]);
    assert_eq!(sequences(3), vec![4]);
    let next = log.append(batch("r/1", ExpectedVersion::Exactly(3), vec![event("e", "5")])).await.unwrap();
    assert_eq!(next.positions, vec![Position { sequence: 5, stream_version: 4 }]);
    assert_eq!(log.read_stream("r/1", 2).unwrap().iter().map(|e| e.sequence).collect::<Vec<_>>(), vec![2, 4, 5]);
    log.shutdown().await;
    drop(log);
    // The marker now says 2, so that an older Tafel refuses the log rather than misread
    // the new entries; a marker this code does not know is refused.
    {
        let db = raw_sled(dir.path()).open_tree("log").unwrap();
        assert_eq!(db.get(b"F").unwrap().unwrap().as_ref(), 2u32.to_be_bytes());
        db.insert(b"F", &3u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    assert!(matches!(
        SledLog::open(dir.path(), OpenOptions::default()),
        Err(OpenError::UnsupportedFormat { found: 3, supported: 2, .. })
    ));
}
