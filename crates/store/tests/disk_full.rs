//! A full disk (issue 8): appends answer `unavailable` and the log says why; nothing
//! acknowledged is lost; and once space is freed, writes resume by themselves, without
//! a restart, after the writer has reopened and verified the log (it never retries a
//! failed fsync). The disk is a small tmpfs mounted for the test, so it needs root, as
//! the test command (`scripts/test`) runs in CI.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tafel_store::{AppendBatch, AppendError, EventLog, ExpectedVersion, NewEvent, OpenOptions, SledLog, Subscription};

/// A tmpfs of a few segments, unmounted on drop.
struct SmallDisk {
    mount_point: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size_mib: u32) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tafel-test"])
            .arg(dir.path())
            .status()
            .expect("mount(8) is missing");
        assert!(status.success(), "cannot mount a tmpfs: this test needs root (scripts/test runs as root)");
        SmallDisk { mount_point: dir.path().to_path_buf(), _dir: dir }
    }

    fn path(&self) -> &Path {
        &self.mount_point
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount_point).status();
    }
}

/// Fills the disk with a file until a write fails; returns the file's path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.flush();
    path
}

fn event(id: String) -> NewEvent {
    NewEvent {
        id: id.clone(),
        principal: "acme".into(),
        identity: id.clone().into_bytes(),
        payload: vec![b'x'; 16 * 1024],
    }
}

async fn append(log: &SledLog, id: String) -> Result<u64, AppendError> {
    let appended = log.append(AppendBatch::new("s", ExpectedVersion::Any, vec![event(id)])).await?;
    Ok(appended.positions[0].sequence)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_loses_nothing_and_recovers_by_itself() {
    let disk = SmallDisk::mount(40);
    let dir = disk.path().join("log");
    let log = SledLog::open(&dir, OpenOptions::default()).unwrap();
    // A subscriber that lags behind the whole time: it must read on across the reopen.
    let mut lagging = log.subscribe(1);
    let mut acknowledged = Vec::new();
    for index in 0..20 {
        acknowledged.push((format!("before-{index}"), append(&log, format!("before-{index}")).await.unwrap()));
    }

    let filler = fill(disk.path());
    let mut refused = None;
    for index in 0..5000 {
        let id = format!("full-{index}");
        match append(&log, id.clone()).await {
            Ok(sequence) => acknowledged.push((id, sequence)),
            Err(AppendError::Unavailable(_)) => {
                refused = Some(id);
                break;
            }
            Err(other) => panic!("{other}"),
        }
    }
    let refused = refused.expect("the full disk never refused a write");
    assert!(log.write_failure().is_some(), "the log must say why it refuses writes");
    assert!(matches!(append(&log, "while-full".into()).await, Err(AppendError::Unavailable(_))));

    // Free the space; the writer must find out by itself, with no append asking.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while log.write_failure().is_some() {
        assert!(Instant::now() < deadline, "the log did not recover within 30 s of space being freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = append(&log, "after".into()).await.expect("writes resume once space is free");

    // Nothing acknowledged was lost, and the refused event, resent, is stored once.
    let events = log.read_from(1, 100_000).unwrap();
    for (id, sequence) in &acknowledged {
        let event = &events[*sequence as usize - 1];
        assert_eq!((&event.id, event.sequence), (id, *sequence));
    }
    let resent = append(&log, refused.clone()).await.unwrap();
    let stored: Vec<u64> =
        log.read_from(1, 100_000).unwrap().iter().filter(|e| e.id == refused).map(|e| e.sequence).collect();
    assert_eq!(stored, vec![resent], "the refused event is stored exactly once after the resend");
    assert!(after > acknowledged.last().unwrap().1);

    let last = log.last_sequence();
    for sequence in 1..=last {
        let event = tokio::time::timeout(Duration::from_secs(10), lagging.next()).await.unwrap().unwrap();
        assert_eq!(event.sequence, sequence, "a subscription from before the reopen reads on, in order");
    }

    // And the log opens clean.
    let last = log.last_sequence();
    log.shutdown().await;
    drop(log);
    let reopened = SledLog::open(&dir, OpenOptions::default()).unwrap();
    assert_eq!(reopened.last_sequence(), last);
}
