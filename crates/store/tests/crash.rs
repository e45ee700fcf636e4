//! The crash test: a child process appends under load and is killed with SIGKILL at
//! random moments, again and again on the same log. After each kill the log must open
//! (no partial batch, no gap), hold every event the child had been told was durable,
//! at the position it was told, and hold nothing the child had not begun to append.
//!
//! The child is this same test binary, started again with `CRASH_CHILD_DIR` set.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tafel_store::{AppendBatch, EventLog, ExpectedVersion, NewEvent, OpenOptions, SledLog};

const KILLS: usize = 24;
const CHILD_WRITERS: usize = 16;
const TEST_NAME: &str = "acknowledged_events_survive_sigkill";

#[test]
fn acknowledged_events_survive_sigkill() {
    if let Ok(dir) = std::env::var("CRASH_CHILD_DIR") {
        let round: usize = std::env::var("CRASH_CHILD_ROUND").unwrap().parse().unwrap();
        child(std::path::Path::new(&dir), round);
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("crash test seed {seed}");
    let mut random = XorShift(seed);
    let mut begun: HashSet<String> = HashSet::new();
    let mut acknowledged: HashMap<String, (u64, u64)> = HashMap::new();
    let mut kills = 0;
    let mut last_length = 0;

    for round in 0..KILLS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env("CRASH_CHILD_DIR", dir.path())
            .env("CRASH_CHILD_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });

        // Let it open the log and get going, then kill it after a random while.
        let started = Instant::now();
        let mut acks_this_round = 0;
        let kill_after = Duration::from_millis(20 + random.next() % 300);
        loop {
            match lines.recv_timeout(Duration::from_millis(5)) {
                Ok(line) => record_line(&line, &mut begun, &mut acknowledged, &mut acks_this_round),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the child exited by itself"),
            }
            if acks_this_round > 0 && started.elapsed() >= kill_after {
                child.kill().unwrap(); // SIGKILL
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "the child made no progress");
        }
        child.wait().unwrap();
        // Whatever the child wrote before it died is still in the pipe.
        while let Ok(line) = lines.recv() {
            record_line(&line, &mut begun, &mut acknowledged, &mut acks_this_round);
        }
        reader.join().unwrap();
        kills += 1;

        let log = SledLog::open(dir.path(), OpenOptions::default())
            .unwrap_or_else(|error| panic!("round {round}: the log did not reopen: {error}"));
        let events = log.read_from(1, usize::MAX).unwrap();
        for (index, event) in events.iter().enumerate() {
            assert_eq!(event.sequence, index as u64 + 1, "round {round}: gap in the log");
            assert!(begun.contains(&event.id), "round {round}: {} was never begun", event.id);
        }
        let positions: HashMap<&str, (u64, u64)> =
            events.iter().map(|e| (e.id.as_str(), (e.sequence, e.stream_version))).collect();
        for (id, position) in &acknowledged {
            assert_eq!(positions.get(id.as_str()), Some(position), "round {round}: acknowledged {id} lost or moved");
        }
        assert!(events.len() >= last_length, "round {round}: the log got shorter");
        last_length = events.len();
        drop(log);
    }
    eprintln!(
        "crash test: {kills} kills survived, {} acknowledged events, {last_length} in the log",
        acknowledged.len()
    );
    assert_eq!(kills, KILLS);
    assert!(acknowledged.len() >= KILLS, "too few acknowledged events to mean anything");
}

fn record_line(
    line: &str,
    begun: &mut HashSet<String>,
    acknowledged: &mut HashMap<String, (u64, u64)>,
    acks: &mut usize,
) {
    let parts: Vec<&str> = line.split(' ').collect();
    match parts.as_slice() {
        ["begin", ids @ ..] => begun.extend(ids.iter().map(|id| id.to_string())),
        ["ack", id, sequence, version] => {
            acknowledged.insert(id.to_string(), (sequence.parse().unwrap(), version.parse().unwrap()));
            *acks += 1;
        }
        _ => {}
    }
}

/// Appends forever from many tasks, saying what it begins and what was acknowledged.
fn child(dir: &std::path::Path, round: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let log = SledLog::open(dir, OpenOptions::default()).unwrap();
        // libtest has written "test <name> ... " without a newline; end that line.
        say("");
        let mut tasks = Vec::new();
        for writer in 0..CHILD_WRITERS {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                for index in 0.. {
                    let size = 1 + (index + writer) % 4;
                    let events: Vec<NewEvent> = (0..size)
                        .map(|k| NewEvent {
                            id: format!("r{round}-w{writer}-{index}-{k}"),
                            principal: "child".into(),
                            identity: format!("{round} {writer} {index} {k}").into_bytes(),
                            payload: vec![b'x'; 200 + k * 50],
                        })
                        .collect();
                    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
                    say(&format!("begin {}", ids.join(" ")));
                    let stream = format!("stream-{}", writer % 8);
                    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
                    let appended = log.append(AppendBatch::new(stream, ExpectedVersion::Any, events)).await.unwrap();
                    for (id, position) in ids.iter().zip(&appended.positions) {
                        say(&format!("ack {id} {} {}", position.sequence, position.stream_version));
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}

fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
