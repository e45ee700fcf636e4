//! Principals: who may act, in which role, and with which HTTP token.
//!
//! The file is `{"principals": [{"id", "role", "token_sha256"?}]}` (contract section 7).
//! Only the SHA-256 of a token is kept; `tafel principals add` makes a fresh token,
//! prints it once and stores its hash. A running service rereads the file on SIGHUP.
//! The file is private to its owner (mode 0600), replaced atomically, and concurrent
//! adders (threads or processes) take turns through a lock file beside it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tafel_contract::PrincipalId;
use tafel_contract::vocab::Role;
use tafel_domain::Actor;

/// Bytes of randomness in a fresh token (256 bits).
pub const TOKEN_BYTES: usize = 32;
/// The principals file and its lock file are readable by their owner only: the file
/// holds token hashes, and who may act.
pub const FILE_MODE: u32 = 0o600;
/// Names tried for a temporary file before giving up (a name is only taken by a
/// temporary file a crashed writer left behind, with the same process id).
const TEMPORARY_NAME_ATTEMPTS: u32 = 1000;

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
    #[error("cannot hash a NATS password: {0}")]
    Hash(String),
    #[error("{path} must be a file readable by its owner alone (chmod 600), not a link")]
    Exposed { path: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalEntry {
    pub id: PrincipalId,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// The bcrypt hash of the principal's NATS password, which is its HTTP token (set by
    /// `tafel principals add`; `tafel principals nats-config` puts it in the NATS
    /// server's users). Left out, the principal gets no NATS user from Tafel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_password_bcrypt: Option<String>,
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
    /// Each HTTP token's SHA-256, with its principal; compared in constant time, every
    /// one, so that timing tells nothing of which hashes exist.
    token_sha256s: Vec<([u8; 32], PrincipalId)>,
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
                let digest =
                    decode_hex_32(&hash).ok_or_else(|| format!("token_sha256 of {} is unreadable", entry.id))?;
                if principals.token_sha256s.iter().any(|(other, _)| *other == digest) {
                    return Err(format!("{} shares its token with another principal", entry.id));
                }
                principals.token_sha256s.push((digest, entry.id.clone()));
            }
            // Whatever stands here goes into the NATS server's users as the password: a
            // value that is not a bcrypt hash would be a password in the clear there.
            if let Some(hash) = &entry.nats_password_bcrypt
                && !is_bcrypt_hash(hash)
            {
                return Err(format!("nats_password_bcrypt of {} is not a bcrypt hash", entry.id));
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
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (known, id) in &self.token_sha256s {
            // No early exit, neither within a comparison nor across them.
            let difference = known.iter().zip(&digest).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if difference == 0 {
                found = Some(id);
            }
        }
        self.actor(found?.as_str())
    }
}

impl Principals {
    /// The SHA-256 of the HTTP token `id` holds now, if it holds one: a web session
    /// remembers the one it signed in with and ends when it changes.
    pub fn token_digest_of(&self, id: &PrincipalId) -> Option<[u8; 32]> {
        self.token_sha256s.iter().find(|(_, holder)| holder == id).map(|(digest, _)| *digest)
    }
}

/// The SHA-256 of `token`, as [`Principals::token_digest_of`] gives it.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// 64 hex digits as 32 bytes.
fn decode_hex_32(hex: &str) -> Option<[u8; 32]> {
    let mut bytes = [0u8; 32];
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(bytes)
}

pub fn token_sha256(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The principals file at `path`; an empty one when there is no file yet.
pub fn read_file(path: &Path) -> Result<PrincipalsFile, PrincipalsError> {
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
/// the token, which is stored nowhere else. Adders take turns (see [`lock`]), so
/// concurrent adds all end up in the file.
pub fn add(path: &Path, id: PrincipalId, role: Role) -> Result<String, PrincipalsError> {
    let _turn = lock(path)?;
    let mut file = read_file(path)?;
    if file.principals.iter().any(|entry| entry.id == id) {
        return Err(PrincipalsError::Exists(id.to_string()));
    }
    let token = fresh_token()?;
    let nats_password_bcrypt = Some(nats_password_bcrypt(&token)?);
    file.principals.push(PrincipalEntry { id, role, token_sha256: Some(token_sha256(&token)), nats_password_bcrypt });
    Principals::from_file(&file)
        .map_err(|detail| PrincipalsError::Invalid { path: path.display().to_string(), detail })?;
    write_file(path, &file)?;
    Ok(token)
}

/// Creates `directory` (and its parents) readable by Tafel's user alone when it does
/// not exist yet (the data directory: the log, snapshots and principals live there).
fn private_directory(directory: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(directory)
}

/// An exclusive lock on `<file>.lock` beside the principals file, held until the
/// returned file is dropped; it blocks until earlier holders (in this process or
/// another) are done. The lock file is never removed: two writers that locked two
/// different incarnations of it would not exclude each other.
pub fn lock(path: &Path) -> Result<File, PrincipalsError> {
    let write_error = |source| PrincipalsError::Write { path: path.display().to_string(), source };
    private_directory(directory_of(path)).map_err(write_error)?;
    let lock_file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(sibling(path, "lock").map_err(write_error)?)
        .map_err(write_error)?;
    lock_file.lock().map_err(write_error)?;
    Ok(lock_file)
}

/// Writes the file atomically and privately: a fresh temporary file of mode 0600
/// beside it, fsync, rename over it, fsync of the directory. Whoever reads, changes
/// and writes the file holds [`lock`] meanwhile.
pub fn write_file(path: &Path, file: &PrincipalsFile) -> Result<(), PrincipalsError> {
    let write_error = |source| PrincipalsError::Write { path: path.display().to_string(), source };
    let directory = directory_of(path);
    private_directory(directory).map_err(write_error)?;
    let text = serde_json::to_string_pretty(file).map_err(|e| write_error(std::io::Error::other(e)))? + "\n";
    let (temporary, mut handle) = create_temporary(path).map_err(write_error)?;
    let written = handle
        .write_all(text.as_bytes())
        .and_then(|()| handle.sync_all())
        .and_then(|()| std::fs::rename(&temporary, path))
        .and_then(|()| File::open(directory)?.sync_all());
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written.map_err(write_error)
}

/// A new file `<file>.<pid>.<n>.tmp` of mode 0600, that no other writer has.
fn create_temporary(path: &Path) -> std::io::Result<(PathBuf, File)> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    for _ in 0..TEMPORARY_NAME_ATTEMPTS {
        let number = NEXT.fetch_add(1, Ordering::Relaxed);
        let temporary = sibling(path, &format!("{}.{number}.tmp", std::process::id()))?;
        match OpenOptions::new().write(true).create_new(true).mode(FILE_MODE).open(&temporary) {
            Ok(handle) => {
                // The mode given at creation is narrowed by the umask, never widened;
                // say it outright in case the file system ignores it.
                handle.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
                return Ok((temporary, handle));
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
    Err(std::io::Error::other("no free name for a temporary file"))
}

/// `<file>.<suffix>` in the file's directory.
fn sibling(path: &Path, suffix: &str) -> std::io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| std::io::Error::other("the principals path names no file"))?;
    let mut sibling = name.to_os_string();
    sibling.push(".");
    sibling.push(suffix);
    Ok(path.with_file_name(sibling))
}

fn directory_of(path: &Path) -> &Path {
    path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// bcrypt's cost for NATS password hashes. A cost slows down guessing a password from
/// its hash; these passwords are 256-bit random tokens, which no number of guesses
/// finds, so a low cost loses nothing and spares the NATS server (which checks the hash
/// at every connect) and `tafel principals add`.
pub const NATS_BCRYPT_COST: u32 = 6;

/// The bcrypt hash (version 2a, which every NATS server reads) of `password`.
pub fn nats_password_bcrypt(password: &str) -> Result<String, PrincipalsError> {
    bcrypt::hash_with_salt(password, NATS_BCRYPT_COST, random_bytes::<16>()?)
        .map(|parts| parts.format_for_version(bcrypt::Version::TwoA))
        .map_err(|e| PrincipalsError::Hash(e.to_string()))
}

/// Whether `text` has the shape of a bcrypt hash NATS reads: `$2a$`, `$2b$` or `$2y$`,
/// a two-digit cost, then 53 characters of bcrypt's base-64.
pub fn is_bcrypt_hash(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 60
        && (text.starts_with("$2a$") || text.starts_with("$2b$") || text.starts_with("$2y$"))
        && bytes[4].is_ascii_digit()
        && bytes[5].is_ascii_digit()
        && bytes[6] == b'$'
        && bytes[7..].iter().all(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'/')
}

/// The password of Tafel's own NATS user, kept in `path`: made (a fresh 256-bit
/// password, in a new file readable by its owner alone) when there is no file yet, else
/// read, if the file is a plain file that only its owner may read.
pub fn service_password(path: &Path) -> Result<String, PrincipalsError> {
    let write_error = |source| PrincipalsError::Write { path: path.display().to_string(), source };
    let read = || -> Result<Option<String>, PrincipalsError> {
        let metadata = match std::fs::symlink_metadata(path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(PrincipalsError::Read { path: path.display().to_string(), source }),
        };
        if !metadata.is_file() || metadata.permissions().mode() & 0o077 != 0 {
            return Err(PrincipalsError::Exposed { path: path.display().to_string() });
        }
        let text = std::fs::read_to_string(path)
            .map_err(|source| PrincipalsError::Read { path: path.display().to_string(), source })?;
        Ok(Some(text.trim().to_owned()).filter(|password| !password.is_empty()))
    };
    if let Some(password) = read()? {
        return Ok(password);
    }
    private_directory(directory_of(path)).map_err(write_error)?;
    let password = fresh_token()?;
    // A new file or none: never through a link, never over what another maker wrote.
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .and_then(|mut file| file.write_all(format!("{password}\n").as_bytes()).and_then(|()| file.sync_all()));
    match created {
        Ok(()) => Ok(password),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => read()?.ok_or_else(|| {
            PrincipalsError::Invalid { path: path.display().to_string(), detail: "it holds no password".into() }
        }),
        Err(source) => Err(write_error(source)),
    }
}

fn fresh_token() -> Result<String, PrincipalsError> {
    Ok(hex(&random_bytes::<TOKEN_BYTES>()?))
}

/// `N` bytes from the kernel's random source (tokens, salts).
fn random_bytes<const N: usize>() -> Result<[u8; N], PrincipalsError> {
    let mut bytes = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .map_err(PrincipalsError::Random)?;
    Ok(bytes)
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
        // The NATS password is the token, kept as a bcrypt hash NATS reads.
        let hash = read_file(&path).unwrap().principals[0].nats_password_bcrypt.clone().unwrap();
        assert!(hash.starts_with("$2a$06$"), "{hash}");
        assert!(bcrypt::verify(&token, &hash).unwrap());
        assert!(!bcrypt::verify("wrong", &hash).unwrap());
    }

    #[test]
    fn tafels_own_nats_password_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("nats-service-password");
        let first = service_password(&path).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(service_password(&path).unwrap(), first, "kept, not made again");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, FILE_MODE);
        // A file others may read, or a link, is not taken (nor written through).
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(service_password(&path), Err(PrincipalsError::Exposed { .. })));
        let link = dir.path().join("link");
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(service_password(&link), Err(PrincipalsError::Exposed { .. })));
        assert!(!target.exists(), "written through a link");
    }

    #[test]
    fn only_a_bcrypt_hash_may_stand_for_a_nats_password() {
        let hash = nats_password_bcrypt("a-token").unwrap();
        assert!(is_bcrypt_hash(&hash), "{hash}");
        for bad in ["hunter2", "", "$2a$06$short", &hash.replace('$', "x"), &format!("{hash}\n")] {
            assert!(!is_bcrypt_hash(bad), "{bad:?}");
        }
        let entry = |hash: &str| PrincipalEntry {
            id: PrincipalId::parse("acme").unwrap(),
            role: Role::Entrepreneur,
            token_sha256: None,
            nats_password_bcrypt: Some(hash.to_owned()),
        };
        assert!(Principals::from_file(&PrincipalsFile { principals: vec![entry(&hash)] }).is_ok());
        let clear = Principals::from_file(&PrincipalsFile { principals: vec![entry("hunter2")] });
        assert!(clear.unwrap_err().contains("not a bcrypt hash"));
    }

    /// Many adders at once, as from several `tafel principals add`: none is lost, the
    /// file is private, and no temporary file is left behind.
    #[test]
    fn concurrent_adders_all_end_up_in_a_private_file() {
        const ADDERS: usize = 32;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("principals.json");
        let start = std::sync::Arc::new(std::sync::Barrier::new(ADDERS));
        let adders: Vec<_> = (0..ADDERS)
            .map(|index| {
                let (path, start) = (path.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    add(&path, PrincipalId::parse(&format!("p{index}")).unwrap(), Role::Coach)
                })
            })
            .collect();
        let tokens: Vec<String> = adders.into_iter().map(|adder| adder.join().unwrap().unwrap()).collect();
        let principals = Principals::load(&path).unwrap();
        assert_eq!(principals.len(), ADDERS, "adds were lost");
        for (index, token) in tokens.iter().enumerate() {
            assert_eq!(principals.actor_for_token(token).unwrap().id.as_str(), format!("p{index}"));
        }
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, FILE_MODE, "the principals file is {mode:o}");
        let mut names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["principals.json", "principals.json.lock"]);
    }

    #[test]
    fn bad_files_are_refused() {
        let twice = PrincipalsFile {
            principals: vec![
                PrincipalEntry {
                    id: PrincipalId::parse("a").unwrap(),
                    role: Role::Coach,
                    token_sha256: None,
                    nats_password_bcrypt: None,
                },
                PrincipalEntry {
                    id: PrincipalId::parse("a").unwrap(),
                    role: Role::Admin,
                    token_sha256: None,
                    nats_password_bcrypt: None,
                },
            ],
        };
        assert!(Principals::from_file(&twice).is_err());
        let bad: Result<PrincipalsFile, _> =
            serde_json::from_str(r#"{"principals": [{"id": "a", "role": "visitor"}]}"#);
        assert!(bad.is_err());
    }
}
