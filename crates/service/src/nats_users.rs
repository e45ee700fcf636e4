//! The NATS server's users for Tafel's principals (`tafel principals nats-config`):
//! one user per principal with the subject permissions of contract section 2, and one
//! for Tafel's own service, in the NATS configuration language, to be included in the
//! server's configuration (`include tafel-users.conf` inside the top level).
//!
//! A principal's NATS password is its HTTP token; the users carry only the bcrypt hash
//! that `tafel principals add` stored beside the token's SHA-256 (never the token), and
//! Tafel's service user the hash of a password kept in a file of its own. What each
//! user may do:
//!
//! - every principal publishes only its own submits and queries
//!   (`tafel.submit.*.*.<id>`, `tafel.query.*.<id>`) and subscribes only to its own
//!   reply inbox (`_INBOX.<id>.>`, so its client connects with the inbox prefix
//!   `_INBOX.<id>`);
//! - organisers and admins may also follow `tafel.events.>`, `tafel.shortlist.>` and
//!   `tafel.rejected.>`;
//! - Tafel's service user serves the submit and query subjects, publishes events,
//!   shortlists, rejections and replies, and confirms its fan-out on `tafel.fanout.>`;
//!   in cluster mode it also appends to the log's stream (`tafel.log.>`), uses the
//!   JetStream API for that one stream (`TAFEL_LOG`: its information, creation and
//!   messages by sequence, its consumers' creation, removal, information and messages,
//!   and acknowledgements, never deleting or purging it) and reads the API's answers on
//!   its own inbox
//!   (`_INBOX.<service user>.>`; Tafel connects with that prefix).

use std::fmt::Write;
use std::path::Path;

use tafel_contract::PrincipalId;
use tafel_domain::Actor;

use crate::principals::{self, Principals, PrincipalsError, PrincipalsFile};

/// The service user's permissions (see `deploy/nats-server.conf`).
const SERVICE_PUBLISH: [&str; 16] = [
    "tafel.events.>",
    "tafel.shortlist.>",
    "tafel.rejected.>",
    "tafel.fanout.>",
    "_INBOX.>",
    "tafel.log.>",
    "$JS.API.INFO",
    "$JS.API.STREAM.INFO.TAFEL_LOG",
    "$JS.API.STREAM.CREATE.TAFEL_LOG",
    "$JS.API.STREAM.MSG.GET.TAFEL_LOG",
    "$JS.API.CONSUMER.CREATE.TAFEL_LOG.>",
    "$JS.API.CONSUMER.DURABLE.CREATE.TAFEL_LOG.>",
    "$JS.API.CONSUMER.DELETE.TAFEL_LOG.>",
    "$JS.API.CONSUMER.INFO.TAFEL_LOG.>",
    "$JS.API.CONSUMER.MSG.NEXT.TAFEL_LOG.>",
    "$JS.ACK.TAFEL_LOG.>",
];
const SERVICE_SUBSCRIBE: [&str; 3] = ["tafel.submit.>", "tafel.query.>", "tafel.fanout.>"];
/// What organisers and admins may follow beside their inbox.
const FOLLOWING: [&str; 3] = ["tafel.events.>", "tafel.shortlist.>", "tafel.rejected.>"];

/// The users' configuration, and the principals left out for want of a NATS password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsUsers {
    pub config: String,
    /// Principals given a user.
    pub users: usize,
    pub without_password: Vec<PrincipalId>,
}

#[derive(Debug, thiserror::Error)]
pub enum NatsConfigError {
    #[error("the service user {0:?} is not a name: {1}")]
    ServiceUser(String, String),
    #[error("there is no principals file at {0}")]
    NoPrincipals(String),
    #[error(transparent)]
    Principals(#[from] PrincipalsError),
    #[error("{path}: {detail}")]
    Invalid { path: String, detail: String },
    #[error("a principal is named {0}, as Tafel's own NATS user is: choose another service user")]
    Clash(String),
}

/// `tafel principals nats-config`: the users for the principals file at `path`, and for
/// Tafel as `service_user` with the password in `password_file` (made when missing).
/// Refused before anything is written: a service user that is not a principal's kind
/// of name, a missing principals file (a mistyped data directory would otherwise give
/// a configuration of Tafel's user alone, locking every principal out on reload), an
/// invalid one, and a principal of the service user's name.
pub fn nats_config(path: &Path, password_file: &Path, service_user: &str) -> Result<NatsUsers, NatsConfigError> {
    PrincipalId::parse(service_user).map_err(|why| NatsConfigError::ServiceUser(service_user.to_owned(), why))?;
    if !path.is_file() {
        return Err(NatsConfigError::NoPrincipals(path.display().to_string()));
    }
    let file = principals::read_file(path)?;
    Principals::from_file(&file)
        .map_err(|detail| NatsConfigError::Invalid { path: path.display().to_string(), detail })?;
    if file.principals.iter().any(|entry| entry.id.as_str() == service_user) {
        return Err(NatsConfigError::Clash(service_user.to_owned()));
    }
    let hash = principals::nats_password_bcrypt(&principals::service_password(password_file)?)?;
    Ok(nats_users(&file, service_user, &hash))
}

/// The `authorization { users: [...] }` block for `file`'s principals and the service
/// user `service_user` with the password whose bcrypt hash is `service_password_bcrypt`.
pub fn nats_users(file: &PrincipalsFile, service_user: &str, service_password_bcrypt: &str) -> NatsUsers {
    let mut config = String::from(
        "# Made by `tafel principals nats-config` from Tafel's principals file: one NATS user\n\
         # per principal, with the subject permissions of contract section 2. Passwords are\n\
         # bcrypt hashes: a principal's password is its HTTP token, Tafel's its own file's.\n\
         # Include this file at the top level of the server's configuration.\n\
         authorization {\n  users: [\n",
    );
    let mut user = |name: &str, hash: &str, publish: &[String], subscribe: &[String]| {
        let _ = writeln!(
            config,
            "    {{user: {}, password: {}, permissions: {{\n      publish: {}\n      subscribe: {}\n    }}}}",
            quoted(name),
            quoted(hash),
            list(publish),
            list(subscribe)
        );
    };
    let owned = |subjects: &[&str]| subjects.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let mut service_subscribe = owned(&SERVICE_SUBSCRIBE);
    service_subscribe.push(format!("_INBOX.{service_user}.>"));
    user(service_user, service_password_bcrypt, &owned(&SERVICE_PUBLISH), &service_subscribe);
    let mut without_password = Vec::new();
    for entry in &file.principals {
        let Some(hash) = &entry.nats_password_bcrypt else {
            without_password.push(entry.id.clone());
            continue;
        };
        let id = entry.id.as_str();
        let publish = vec![format!("tafel.submit.*.*.{id}"), format!("tafel.query.*.{id}")];
        let mut subscribe = vec![format!("_INBOX.{id}.>")];
        // Following the log is reading it: the same rule as the `events` query.
        if Actor::new(entry.id.clone(), entry.role).reads_the_log() {
            subscribe.extend(owned(&FOLLOWING));
        }
        user(id, hash, &publish, &subscribe);
    }
    config.push_str("  ]\n}\n");
    NatsUsers { config, users: file.principals.len() - without_password.len(), without_password }
}

/// A string in the NATS configuration language: double-quoted (so that a bcrypt hash's
/// `$` is not read as a variable), with `"` and `\` escaped.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn list(subjects: &[String]) -> String {
    format!("[{}]", subjects.iter().map(|s| quoted(s)).collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principals::PrincipalEntry;
    use tafel_contract::vocab::Role;

    fn entry(id: &str, role: Role, hash: Option<&str>) -> PrincipalEntry {
        PrincipalEntry {
            id: PrincipalId::parse(id).unwrap(),
            role,
            token_sha256: None,
            nats_password_bcrypt: hash.map(str::to_owned),
        }
    }

    #[test]
    fn each_principal_gets_its_own_subjects_and_only_followers_follow() {
        let file = PrincipalsFile {
            principals: vec![
                entry("acme-bikes", Role::Entrepreneur, Some("$2a$06$acme")),
                entry("organiser-haarlem", Role::Organiser, Some("$2a$06$org")),
                entry("nats-less", Role::Coach, None),
            ],
        };
        let users = nats_users(&file, "tafel", "$2a$06$tafel");
        assert_eq!(users.without_password, vec![PrincipalId::parse("nats-less").unwrap()]);
        let text = &users.config;
        assert!(text.contains(
            "{user: \"acme-bikes\", password: \"$2a$06$acme\", permissions: {\n      \
             publish: [\"tafel.submit.*.*.acme-bikes\", \"tafel.query.*.acme-bikes\"]\n      \
             subscribe: [\"_INBOX.acme-bikes.>\"]\n    }}"
        ));
        assert!(text.contains(
            "subscribe: [\"_INBOX.organiser-haarlem.>\", \"tafel.events.>\", \"tafel.shortlist.>\", \"tafel.rejected.>\"]"
        ));
        assert!(text.contains("{user: \"tafel\", password: \"$2a$06$tafel\""));
        assert!(!text.contains("nats-less"));
        assert_eq!(text.matches("tafel.events.>").count(), 2, "the service and the organiser only");
    }

    #[test]
    fn quotes_and_backslashes_cannot_end_a_string() {
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
