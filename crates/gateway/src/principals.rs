//! Principals: who may act, in which role, and with which HTTP token.
//!
//! The file is `{"principals": [{"id", "role", "token_sha256"?}]}` (contract section 7).
//! Only the SHA-256 of a token is kept; `tafel principals add` makes a fresh token,
//! prints it once and stores its hash. A running service rereads the file on SIGHUP.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tafel_contract::PrincipalId;
use tafel_contract::vocab::Role;
use tafel_domain::Actor;

/// Bytes of randomness in a fresh token (256 bits).
pub const TOKEN_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum PrincipalsError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("{path} is not a principals file: {detail}")]
    Invalid { path: String, detail: String },
    #[error("principal {0} exists already")]
    Exists(String),
    #[error("cannot make a token: {0}")]
    Random(std::io::Error),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalEntry {
    pub id: PrincipalId,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalsFile {
    pub principals: Vec<PrincipalEntry>,
}

/// The principals in force, indexed for lookups.
#[derive(Clone, Debug, Default)]
pub struct Principals {
    by_id: HashMap<PrincipalId, Role>,
    by_token_sha256: HashMap<String, PrincipalId>,
}

impl Principals {
    pub fn from_file(file: &PrincipalsFile) -> Result<Self, String> {
        let mut principals = Principals::default();
        for entry in &file.principals {
            if principals.by_id.insert(entry.id.clone(), entry.role).is_some() {
                return Err(format!("principal {} is listed twice", entry.id));
            }
            if let Some(hash) = &entry.token_sha256 {
                let hash = hash.to_ascii_lowercase();
                if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("token_sha256 of {} is not 64 hex digits", entry.id));
                }
                if principals.by_token_sha256.insert(hash, entry.id.clone()).is_some() {
                    return Err(format!("{} shares its token with another principal", entry.id));
                }
            }
        }
        Ok(principals)
    }

    /// Reads the file; a missing file is an empty set of principals.
    pub fn load(path: &Path) -> Result<Self, PrincipalsError> {
        let file = read_file(path)?;
        Principals::from_file(&file)
            .map_err(|detail| PrincipalsError::Invalid { path: path.display().to_string(), detail })
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The actor behind a principal id, if it is known.
    pub fn actor(&self, id: &str) -> Option<Actor> {
        let id = PrincipalId::parse(id).ok()?;
        let role = *self.by_id.get(&id)?;
        Some(Actor::new(id, role))
    }

    /// The actor behind an HTTP bearer token, if it is known.
    pub fn actor_for_token(&self, token: &str) -> Option<Actor> {
        let id = self.by_token_sha256.get(&token_sha256(token))?;
        self.actor(id.as_str())
    }
}

pub fn token_sha256(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read_file(path: &Path) -> Result<PrincipalsFile, PrincipalsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(PrincipalsFile::default());
        }
        Err(source) => {
            return Err(PrincipalsError::Read { path: path.display().to_string(), source });
        }
    };
    serde_json::from_str(&text)
        .map_err(|error| PrincipalsError::Invalid { path: path.display().to_string(), detail: error.to_string() })
}

/// Adds a principal with a fresh token to the file (creating it if needed) and returns
/// the token, which is stored nowhere else.
pub fn add(path: &Path, id: PrincipalId, role: Role) -> Result<String, PrincipalsError> {
    let mut file = read_file(path)?;
    if file.principals.iter().any(|entry| entry.id == id) {
        return Err(PrincipalsError::Exists(id.to_string()));
    }
    let token = fresh_token()?;
    file.principals.push(PrincipalEntry { id, role, token_sha256: Some(token_sha256(&token)) });
    Principals::from_file(&file)
        .map_err(|detail| PrincipalsError::Invalid { path: path.display().to_string(), detail })?;
    write_file(path, &file)?;
    Ok(token)
}

/// Writes the file atomically (temporary file, fsync, rename).
pub fn write_file(path: &Path, file: &PrincipalsFile) -> Result<(), PrincipalsError> {
    let write_error = |source| PrincipalsError::Write { path: path.display().to_string(), source };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(write_error)?;
    }
    let temporary = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(file).map_err(|e| write_error(std::io::Error::other(e)))?;
    std::fs::write(&temporary, text + "\n").map_err(write_error)?;
    std::fs::File::open(&temporary).and_then(|f| f.sync_all()).map_err(write_error)?;
    std::fs::rename(&temporary, path).map_err(write_error)
}

fn fresh_token() -> Result<String, PrincipalsError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .map_err(PrincipalsError::Random)?;
    Ok(hex(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_then_look_up_by_id_and_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("principals.json");
        let token = add(&path, PrincipalId::parse("acme").unwrap(), Role::Entrepreneur).unwrap();
        assert_eq!(token.len(), 64);
        let again = add(&path, PrincipalId::parse("acme").unwrap(), Role::Coach);
        assert!(matches!(again, Err(PrincipalsError::Exists(_))));
        let principals = Principals::load(&path).unwrap();
        assert_eq!(principals.actor("acme").unwrap().role, Role::Entrepreneur);
        assert_eq!(principals.actor_for_token(&token).unwrap().id.as_str(), "acme");
        assert!(principals.actor_for_token("wrong").is_none());
        assert!(principals.actor("nobody").is_none());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&token), "the token itself must not be stored");
    }

    #[test]
    fn bad_files_are_refused() {
        let twice = PrincipalsFile {
            principals: vec![
                PrincipalEntry { id: PrincipalId::parse("a").unwrap(), role: Role::Coach, token_sha256: None },
                PrincipalEntry { id: PrincipalId::parse("a").unwrap(), role: Role::Admin, token_sha256: None },
            ],
        };
        assert!(Principals::from_file(&twice).is_err());
        let bad: Result<PrincipalsFile, _> =
            serde_json::from_str(r#"{"principals": [{"id": "a", "role": "visitor"}]}"#);
        assert!(bad.is_err());
    }
}
