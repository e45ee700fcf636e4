use std::time::Instant;
use tafel_service::programme::{self, Shape};
use tafel_store::{EventLog, OpenOptions, SledLog};

#[tokio::main]
async fn main() {
    let events: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let log = SledLog::open(dir.path(), OpenOptions::default()).unwrap();
    programme::write(&log, events, Shape::bench()).await.unwrap();
    let views = tafel_service::projection::replay(&log, log.last_sequence(), Default::default()).unwrap();
    for _ in 0..2 {
        let t = Instant::now();
        let w = views.world.clone();
        let a = t.elapsed();
        let t = Instant::now();
        let m = views.matcher.clone();
        let b = t.elapsed();
        let t = Instant::now();
        let r = views.reports.clone();
        let c = t.elapsed();
        eprintln!("events {events}: world {a:?} matcher {b:?} reports {c:?}");
        drop((w, m, r));
    }
}
