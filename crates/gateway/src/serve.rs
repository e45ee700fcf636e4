//! `tafel serve`: opens the log and runs until SIGTERM or Ctrl-C, then closes the log
//! cleanly (every queued append answered, the checkpoint written).

use std::path::PathBuf;

use tafel_store::{EventLog, OpenOptions, SledLog};
use tracing::info;

/// Where `tafel serve` keeps its data unless told otherwise.
pub const DEFAULT_DATA_DIR: &str = "./tafel-data";

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Open(#[from] tafel_store::OpenError),
    #[error("cannot listen for signals: {0}")]
    Signals(std::io::Error),
}

pub async fn run(config: ServeConfig) -> Result<(), ServeError> {
    let log = SledLog::open(&config.data_dir, OpenOptions::default())?;
    info!(data = %config.data_dir.display(), events = log.last_sequence(), "tafel is up");
    shutdown_signal().await.map_err(ServeError::Signals)?;
    info!("stopping: finishing in-flight writes");
    log.shutdown().await;
    info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}
