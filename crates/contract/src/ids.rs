//! Identifiers: aggregate and principal ids share one pattern; event ids are freer.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest aggregate or principal id: `^[a-z0-9][a-z0-9-]{0,63}$`.
pub const MAX_ID_CHARS: usize = 64;
/// Longest event id (CloudEvents `id`), in characters.
pub const MAX_EVENT_ID_CHARS: usize = 128;

/// Whether `text` matches `^[a-z0-9][a-z0-9-]{0,63}$`.
pub fn is_valid_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_ID_CHARS
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

macro_rules! pattern_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(text: &str) -> Result<Self, String> {
                if is_valid_id(text) {
                    Ok(Self(text.to_owned()))
                } else {
                    Err(format!("{text:?} is not an id: 1-64 of a-z, 0-9 and '-', not starting with '-'"))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(text: String) -> Result<Self, String> {
                Self::parse(&text)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

pattern_id!(
    /// The id of a request, mandate or round table.
    AggregateId
);
pattern_id!(
    /// The id of a principal: an entrepreneur, coach, financier, organiser or admin.
    PrincipalId
);

/// A CloudEvents `id`: 1-128 characters, no control characters. It is the
/// idempotency key, unique across the whole log for ever.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

impl EventId {
    pub fn parse(text: &str) -> Result<Self, String> {
        let chars = text.chars().count();
        if chars == 0 || chars > MAX_EVENT_ID_CHARS {
            return Err(format!("must be 1-{MAX_EVENT_ID_CHARS} characters"));
        }
        if text.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventId {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> String {
        id.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_pattern() {
        for good in ["a", "0", "acme-bikes", "a-", &"a".repeat(64)] {
            assert!(is_valid_id(good), "{good}");
        }
        for bad in ["", "-a", "A", "a_b", "a.b", "é", &"a".repeat(65)] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn event_id_limits() {
        assert!(EventId::parse(&"x".repeat(128)).is_ok());
        assert!(EventId::parse(&"x".repeat(129)).is_err());
        assert!(EventId::parse("").is_err());
        assert!(EventId::parse("a\nb").is_err());
    }
}
