//! Helpers shared by the end-to-end tests: the real `tafel` binary in a temporary
//! data directory, started and stopped as a user would.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a test waits for the binary to come up or go down before failing.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A running `tafel serve`, its stderr lines collected as they come.
pub struct Tafel {
    pub child: Child,
    pub stderr: mpsc::Receiver<String>,
}

impl Tafel {
    pub fn serve(data: &Path, extra: &[&str]) -> Tafel {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tafel"))
            .arg("serve")
            .arg("--data")
            .arg(data)
            .args(extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tafel");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        Tafel {
            child,
            stderr: lines,
        }
    }

    /// Waits for a log line containing `text`; panics with what was seen otherwise.
    pub fn wait_for_log(&self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            match self.stderr.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.contains(text) => return line,
                Ok(line) => seen.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!(
            "tafel never logged {text:?}; it logged:\n{}",
            seen.join("\n")
        );
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit and returns how it did.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for tafel") {
                return status;
            }
            assert!(Instant::now() < deadline, "tafel did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tafel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
