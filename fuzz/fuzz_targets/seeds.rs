//! Writes the seed corpora of the fuzz targets into `<dir>/<target>/`: the contract's
//! examples (`proto/examples`) as HTTP and NATS submits, the world's real records and
//! snapshot body, one query of each kind by each principal, and each web form filled in
//! right and each page with a query string. Run with the directory
//! in `TAFEL_FUZZ_SEEDS`; it is a libFuzzer binary like the targets (so that it links
//! with their instrumentation) that writes the seeds before fuzzing anything and exits.

#![no_main]
#![allow(unreachable_code)] // the init exits before fuzzing

#[path = "world.rs"]
mod world;

use std::path::Path;

use tafel_store::EventLog;

libfuzzer_sys::fuzz_target!(
    init: {
        let dir = std::env::var("TAFEL_FUZZ_SEEDS").expect("TAFEL_FUZZ_SEEDS names the directory to write");
        write_seeds(Path::new(&dir));
        std::process::exit(0);
    },
    |_input: &[u8]| {}
);

fn write_seeds(dir: &Path) {
    let write = |target: &str, name: String, bytes: &[u8]| {
        let target = dir.join(target);
        std::fs::create_dir_all(&target).expect("a corpus directory");
        std::fs::write(target.join(name), bytes).expect("a seed");
    };

    // Envelopes: every example of the contract, over HTTP and over NATS.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/examples");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(examples.join("manifest.json")).expect("the manifest")).expect("JSON");
    for (index, example) in manifest["examples"].as_array().expect("examples").iter().enumerate() {
        let body = std::fs::read(examples.join(example["file"].as_str().expect("a file"))).expect("an example");
        let principal = example["principal"].as_str().unwrap_or("fuzzer");
        let subject = example["nats_subject"].as_str().map(str::to_owned).unwrap_or_else(|| {
            let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let tokens = event["type"].as_str().unwrap_or("tafel.request.submitted").trim_start_matches("tafel.");
            format!("tafel.submit.{tokens}.{principal}")
        });
        write("envelope", format!("http-{index}"), &[b"\n".as_slice(), &body].concat());
        write("envelope", format!("nats-{index}"), &[subject.as_bytes(), b"\n", &body].concat());
    }

    // Records: the world's own, whole and as bodies behind a fitting checksum.
    let world = world::world();
    for event in world.log.read_from(1, 100).expect("the world's events") {
        let bytes = tafel_store::record::encode(&event);
        write("record", format!("whole-{}", event.sequence), &[&[0u8][..], &bytes].concat());
        write("record", format!("body-{}", event.sequence), &[&[1u8][..], &bytes[5..]].concat());
    }

    // Queries: each by each principal, as JSON and as a query string.
    let bodies = [
        r#"{"request_id": "r1"}"#,
        r#"{"mandate_id": "m1", "limit": 3}"#,
        r#"{"roundtable_id": "t1"}"#,
        r#"{"from": 1, "limit": 5}"#,
        r#"{"request_id": "r1", "as_of": 3, "limit": 2}"#,
        r#"{"state": "ready", "after": "r0", "limit": 1}"#,
        r#"{"year": 2026}"#,
        r#"{}"#,
    ];
    for selector in 0..=255u8 {
        let body = bodies[usize::from(selector) % bodies.len()];
        let rest = if selector & 0x80 != 0 {
            let value: serde_json::Value = serde_json::from_str(body).expect("JSON");
            let pairs: Vec<String> = value
                .as_object()
                .expect("an object")
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())))
                .collect();
            pairs.join("&")
        } else {
            body.to_owned()
        };
        write("query", format!("q-{selector}"), &[&[selector][..], rest.as_bytes()].concat());
    }

    // Forms: each filled in right by its principal, in both languages, with and without
    // the CSRF token; pages: each with a query string of its kind.
    for (which, (_, principal, fields)) in world::FORMS.iter().enumerate() {
        let who = world::PRINCIPALS.iter().position(|(id, _)| id == principal).expect("a principal") as u8;
        for how in [who, who | 0x20, who | 0x80] {
            write("form", format!("form-{which}-{how}"), &[&[how, which as u8][..], fields.as_bytes()].concat());
        }
    }
    let queries = ["state=ready", "state=open&lang=en", "year=2021", "as_of=3", "from=1&limit=5", "code=nl"];
    for (which, _) in world::PAGES.iter().enumerate() {
        for (index, query) in queries.iter().enumerate() {
            let how = 0x40 | (index % world::PRINCIPALS.len()) as u8;
            write("form", format!("page-{which}-{index}"), &[&[how, which as u8][..], query.as_bytes()].concat());
        }
    }

    // Snapshots: the world's real snapshot, whole, and its body behind a fitting trailer.
    let views =
        tafel_service::projection::replay(&world.log, world.log.last_sequence(), Default::default()).expect("a replay");
    let mark = views.last_event.clone().expect("events");
    let scratch = tempfile::tempdir().expect("a directory");
    let path = tafel_service::snapshot::write(scratch.path(), world.log.identity(), &views, &mark, Default::default())
        .expect("a snapshot");
    let bytes = std::fs::read(path).expect("the snapshot");
    write("snapshot", "whole".into(), &[&[0u8][..], &bytes].concat());
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    write("snapshot", "body".into(), &[&[1u8][..], lines[2]].concat());
}
