//! End-to-end: the real `tafel serve` opens its log, stops cleanly on SIGTERM and on
//! Ctrl-C (SIGINT) with exit code 0, and refuses to start on a damaged log.

mod support;

use support::Tafel;

#[test]
fn serve_starts_and_stops_cleanly_on_sigterm_and_sigint() {
    let data = tempfile::tempdir().unwrap();
    for signal in ["TERM", "INT"] {
        let mut tafel = Tafel::serve(data.path(), &[]);
        tafel.wait_for_log("tafel is up");
        tafel.signal(signal);
        tafel.wait_for_log("stopped");
        let status = tafel.wait();
        assert_eq!(
            status.code(),
            Some(0),
            "SIG{signal} should end tafel with 0"
        );
    }
    assert!(
        data.path().join("sled").is_dir(),
        "the log was not created in --data"
    );
}

#[test]
fn serve_refuses_a_damaged_log_and_says_why() {
    let data = tempfile::tempdir().unwrap();
    let mut tafel = Tafel::serve(data.path(), &[]);
    tafel.wait_for_log("tafel is up");
    tafel.signal("TERM");
    assert_eq!(tafel.wait().code(), Some(0));
    // Claim that more was durable than the log holds.
    std::fs::write(
        data.path().join("durable-sequence"),
        "tafel durable-sequence v1\n5\n",
    )
    .unwrap();
    let mut tafel = Tafel::serve(data.path(), &[]);
    let line = tafel.wait_for_log("damaged");
    assert!(line.contains("events were lost"), "{line}");
    assert_eq!(tafel.wait().code(), Some(1));
}
