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
    /// Starts `tafel serve --data DATA EXTRA...`, on a free HTTP port unless `EXTRA`
    /// names one.
    pub fn serve(data: &Path, extra: &[&str]) -> Tafel {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tafel"));
        command.arg("serve").arg("--data").arg(data).args(extra);
        if !extra.contains(&"--http") {
            command.arg("--http").arg(format!("127.0.0.1:{}", free_port()));
        }
        let mut child = command
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
        Tafel { child, stderr: lines }
    }

    /// Every log line up to and including the first containing `text` (for a test that
    /// reads what came before it too); panics if it never comes.
    pub fn lines_until(&self, text: &str) -> Vec<String> {
        let mut lines = Vec::new();
        while !lines.iter().any(|line: &String| line.contains(text)) {
            lines.push(self.stderr.recv_timeout(PATIENCE).unwrap_or_else(|_| panic!("tafel never logged {text:?}")));
        }
        lines
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
        panic!("tafel never logged {text:?}; it logged:\n{}", seen.join("\n"));
    }

    pub fn signal(&self, name: &str) {
        let status =
            Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().expect("run kill");
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

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until something accepts connections on `port`.
pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + PATIENCE;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A real `nats-server` on a free port, with its own temporary JetStream directory.
pub struct NatsServer {
    pub port: u16,
    child: Option<Child>,
    store: Option<tempfile::TempDir>,
}

impl NatsServer {
    /// A handle to the same server that does not own (or stop) its process.
    pub fn shadow(other: &NatsServer) -> NatsServer {
        NatsServer { port: other.port, child: None, store: None }
    }

    pub fn start() -> NatsServer {
        let store = tempfile::tempdir().unwrap();
        let mut server = NatsServer { port: free_port(), child: None, store: Some(store) };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.restart_after(Duration::ZERO);
    }

    /// Stops the server, keeps it down for `down`, and starts it again on the same port
    /// and store.
    pub fn restart_after(&mut self, down: Duration) {
        self.stop();
        std::thread::sleep(down);
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(self.store.as_ref().expect("only the owning handle restarts the server").path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is not installed: run scripts/test, which installs it");
        self.child = Some(child);
        wait_for_port(self.port);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Adds a principal with the real `tafel principals add` and returns its token.
pub fn add_principal(data: &Path, id: &str, role: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_tafel"))
        .args(["principals", "add", id, "--role", role, "--data"])
        .arg(data)
        .output()
        .expect("run tafel principals add");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// `tafel serve --nats` on free ports, waited for until ready.
pub fn serve_with_nats(data: &Path, nats: &NatsServer) -> (Tafel, u16) {
    let http_port = free_port();
    let tafel = Tafel::serve(data, &["--nats", &nats.url(), "--http", &format!("127.0.0.1:{http_port}")]);
    tafel.wait_for_log("tafel is up");
    (tafel, http_port)
}

impl NatsServer {
    /// A server started with a configuration file (on a free port, overriding `listen`).
    pub fn start_with_config(config: &Path) -> NatsServer {
        let port = free_port();
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(config)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is not installed: run scripts/test, which installs it");
        wait_for_port(port);
        NatsServer { port, child: Some(child), store: None }
    }
}

/// `/readyz` once it says ready, or what it said last after 10 s: readiness follows
/// "tafel is up" by as long as the NATS connections take (each authenticates).
pub fn ready(port: u16) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = http_get(port, "/readyz");
        if answer.0 == 200 || Instant::now() > deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A plain HTTP/1.1 GET on a real socket; returns the status code and the body.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    http_request(port, "GET", path, None, b"")
}

/// A plain HTTP/1.1 request on a real socket, with a bearer token and a body when
/// given; returns the status code and the body.
pub fn http_request(port: u16, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, String) {
    try_http_request(port, method, path, token, body).unwrap()
}

/// [`http_request`], answering the connection's error instead of panicking (for a
/// Tafel that may be killed under it).
pub fn try_http_request(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    let authorization = token.map(|token| format!("Authorization: Bearer {token}\r\n")).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{authorization}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// An IPv4 address of this machine that is not loopback (from `hostname -I`), if it
/// has one.
pub fn non_loopback_ipv4() -> Option<std::net::Ipv4Addr> {
    let output = Command::new("hostname").arg("-I").output().ok()?;
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter_map(|word| word.parse::<std::net::Ipv4Addr>().ok())
        .find(|address| !address.is_loopback())
}

impl NatsServer {
    /// A server without authentication (nor JetStream) listening on `host` only, on a
    /// free port. Its `url()` names loopback, where it does not listen: build the URL
    /// from `host` and `port`.
    pub fn start_on(host: std::net::IpAddr) -> NatsServer {
        let port = std::net::TcpListener::bind((host, 0)).unwrap().local_addr().unwrap().port();
        let child = Command::new("nats-server")
            .args(["-a", &host.to_string(), "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is not installed: run scripts/test, which installs it");
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect((host, port)).is_err() {
            assert!(Instant::now() < deadline, "nothing listens on {host}:{port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        NatsServer { port, child: Some(child), store: None }
    }
}
