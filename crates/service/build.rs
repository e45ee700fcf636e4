//! Stamps the build with a hash of the sources the views are built by (the contract's
//! types, the domain, the matcher, the projection and the snapshot format), so that a
//! snapshot is read only by a Tafel whose views are built as the one that wrote it: a
//! change to any of them (a rule, a fingerprint, a field) means one full replay, never
//! views that a replay would not give.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let crates = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut files = Vec::new();
    for dir in ["contract/src", "domain/src", "matcher/src"] {
        sources(&crates.join(dir), &mut files);
    }
    files.push(manifest.join("src/projection.rs"));
    files.push(manifest.join("src/snapshot.rs"));
    files.sort();
    // FNV-1a over each file's path (relative) and contents.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        feed(file.strip_prefix(&crates).unwrap_or(file).to_string_lossy().as_bytes());
        feed(&std::fs::read(file).unwrap_or_default());
    }
    for dir in ["contract/src", "domain/src", "matcher/src"] {
        println!("cargo:rerun-if-changed={}", crates.join(dir).display());
    }
    println!("cargo:rustc-env=TAFEL_VIEWS_BUILD={hash:016x}");
}
