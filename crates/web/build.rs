//! Turns the message catalogues (`messages/en.txt`, `messages/nl.txt`) into a table
//! of keys, so that every message a page uses is checked at compile time, and a key
//! missing from either catalogue (or found in one only) fails the build.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

const LANGUAGES: [&str; 2] = ["en", "nl"];

fn main() {
    let mut catalogues = Vec::new();
    for language in LANGUAGES {
        let path = format!("messages/{language}.txt");
        println!("cargo::rerun-if-changed={path}");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        catalogues.push((language, parse(&path, &text)));
    }
    let (_, first) = &catalogues[0];
    for (language, catalogue) in &catalogues[1..] {
        let missing: Vec<_> = first.keys().filter(|key| !catalogue.contains_key(*key)).collect();
        let extra: Vec<_> = catalogue.keys().filter(|key| !first.contains_key(*key)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "messages/{language}.txt: missing {missing:?}, extra {extra:?}"
        );
    }
    let mut out = String::new();
    writeln!(out, "/// How many messages each catalogue holds.\npub const COUNT: usize = {};", first.len()).unwrap();
    for (index, key) in first.keys().enumerate() {
        writeln!(out, "pub const {}: Key = Key({index});", constant(key)).unwrap();
    }
    writeln!(
        out,
        "/// The key named `name` in the catalogues.\npub fn by_name(name: &str) -> Option<Key> {{\n    match name {{"
    )
    .unwrap();
    for (index, key) in first.keys().enumerate() {
        writeln!(out, "        {key:?} => Some(Key({index})),").unwrap();
    }
    writeln!(out, "        _ => None,\n    }}\n}}").unwrap();
    for (language, catalogue) in &catalogues {
        writeln!(out, "pub const {}: [&str; COUNT] = [", language.to_uppercase()).unwrap();
        for text in catalogue.values() {
            writeln!(out, "    {text:?},").unwrap();
        }
        writeln!(out, "];").unwrap();
    }
    let target = Path::new(&std::env::var("OUT_DIR").unwrap()).join("messages.rs");
    std::fs::write(target, out).unwrap();
}

/// `key = text` lines; `#` starts a comment line; a key is lower case with dots and
/// underscores.
fn parse(path: &str, text: &str) -> BTreeMap<String, String> {
    let mut messages = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once(" = ").unwrap_or_else(|| panic!("{path}:{}: not `key = text`", number + 1));
        let key = key.trim();
        assert!(
            !key.is_empty()
                && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_'),
            "{path}:{}: bad key {key:?}",
            number + 1
        );
        assert!(
            messages.insert(key.to_owned(), value.trim().to_owned()).is_none(),
            "{path}:{}: {key} twice",
            number + 1
        );
    }
    messages
}

fn constant(key: &str) -> String {
    key.replace('.', "_").to_uppercase()
}
