//! The CloudEvents 1.0 envelope (contract section 1) and step 1 of checking a submit.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;

use crate::MAX_EVENT_BYTES;
use crate::event_type::EventType;
use crate::ids::{AggregateId, EventId, PrincipalId, is_valid_id};
use crate::reply::{ErrorCode, Refusal};

/// The only `specversion` Tafel speaks.
pub const SPEC_VERSION: &str = "1.0";
/// The only `datacontenttype` allowed, when present.
pub const DATA_CONTENT_TYPE: &str = "application/json";
/// Longest `source`, in bytes: long enough for any sensible URI reference.
pub const MAX_SOURCE_BYTES: usize = 512;
/// Attributes Tafel adds to stored events; a publisher may not set them.
pub const RESERVED_ATTRIBUTES: &[&str] = &["sequence", "streamversion", "principal", "recordedat"];

/// An incoming event's envelope, checked: every attribute well formed, the type known.
/// `data` is still raw here; [`crate::EventData::parse`] checks it (step 4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub specversion: String,
    pub id: EventId,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub subject: AggregateId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacontenttype: Option<String>,
    pub data: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expectedversion: Option<u64>,
}

impl Envelope {
    /// The bytes that decide whether a resent `id` is a duplicate or a conflict: the
    /// type, subject, data and principal, in a canonical JSON form (keys sorted), so
    /// that key order and whitespace do not matter.
    pub fn identity(&self, principal: &PrincipalId) -> Vec<u8> {
        let mut out = String::new();
        out.push('[');
        write_canonical(&Value::String(self.event_type.as_str().into()), &mut out);
        out.push(',');
        write_canonical(&Value::String(self.subject.to_string()), &mut out);
        out.push(',');
        write_canonical(&Value::String(principal.to_string()), &mut out);
        out.push(',');
        write_canonical(&Value::Object(self.data.clone()), &mut out);
        out.push(']');
        out.into_bytes()
    }
}

/// Writes `value` as JSON with object keys sorted at every depth.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Where a submit came in: the publishing principal and, on NATS, the
/// `<aggregate>.<event>` tokens of its subject, which must agree with the type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmitRoute {
    pub principal: String,
    pub type_tokens: Option<String>,
}

impl SubmitRoute {
    /// The route of a NATS submit: `tafel.submit.<aggregate>.<event>.<principal>`.
    /// Returns `None` for a subject outside that pattern (not a submit at all).
    pub fn from_nats_subject(subject: &str) -> Option<Self> {
        let rest = subject.strip_prefix("tafel.submit.")?;
        let mut tokens = rest.split('.');
        let (aggregate, event, principal) = (tokens.next()?, tokens.next()?, tokens.next()?);
        if tokens.next().is_some() {
            return None;
        }
        Some(Self { principal: principal.into(), type_tokens: Some(format!("{aggregate}.{event}")) })
    }

    /// The route of an HTTP submit, whose principal comes from the bearer token.
    pub fn http(principal: &PrincipalId) -> Self {
        Self { principal: principal.to_string(), type_tokens: None }
    }
}

/// The refusal of an event over [`MAX_EVENT_BYTES`]; `size_bytes` when known (a
/// transport that stops reading at the limit does not know it).
pub fn too_large(size_bytes: Option<usize>) -> Refusal {
    let size = size_bytes.map_or_else(|| "more than that".to_owned(), |size| format!("{size} bytes"));
    Refusal::new(ErrorCode::TooLarge, format!("an event is at most {MAX_EVENT_BYTES} bytes; this one is {size}"))
}

/// Step 1 of contract section 3: size, JSON, envelope, type, subject. The first
/// failure is the answer.
pub fn parse_envelope(raw: &[u8], route: &SubmitRoute) -> Result<Envelope, Refusal> {
    if raw.len() > MAX_EVENT_BYTES {
        return Err(too_large(Some(raw.len())));
    }
    let value: Value = serde_json::from_slice(raw)
        .map_err(|error| Refusal::new(ErrorCode::MalformedJson, format!("not JSON: {error}")))?;
    let Value::Object(mut object) = value else {
        return Err(Refusal::new(ErrorCode::InvalidEnvelope, "the event must be a JSON object"));
    };

    for key in object.keys() {
        if RESERVED_ATTRIBUTES.contains(&key.as_str()) {
            return Err(envelope_error(key, format!("{key} is set by Tafel, not by a publisher")));
        }
        if !KNOWN_ATTRIBUTES.contains(&key.as_str()) {
            return Err(envelope_error(key, format!("unknown attribute {key:?}")));
        }
    }

    match object.get("specversion") {
        Some(Value::String(version)) if version == SPEC_VERSION => {}
        Some(_) => return Err(envelope_error("specversion", "specversion must be \"1.0\"")),
        None => return Err(envelope_error("specversion", "specversion is required")),
    }
    let id = required_string(&object, "id")?;
    let id = EventId::parse(id).map_err(|why| envelope_error("id", format!("id {why}")))?;
    let source = required_string(&object, "source")?;
    check_source(source)?;
    let event_type = required_string(&object, "type")?.to_owned();
    let subject = required_string(&object, "subject")?;
    let subject = AggregateId::parse(subject).map_err(|why| envelope_error("subject", why))?;
    let time = optional_string(&object, "time")?;
    if let Some(time) = time {
        time::OffsetDateTime::parse(time, &Rfc3339)
            .map_err(|_| envelope_error("time", format!("{time:?} is not an RFC 3339 time")))?;
    }
    let datacontenttype = optional_string(&object, "datacontenttype")?;
    if let Some(content_type) = datacontenttype
        && content_type != DATA_CONTENT_TYPE
    {
        return Err(envelope_error(
            "datacontenttype",
            format!("datacontenttype must be {DATA_CONTENT_TYPE:?} when present"),
        ));
    }
    let expectedversion = match object.get("expectedversion") {
        None => None,
        Some(Value::Number(number)) => Some(
            number
                .as_u64()
                .ok_or_else(|| envelope_error("expectedversion", "expectedversion must be an integer >= 0"))?,
        ),
        Some(_) => {
            return Err(envelope_error("expectedversion", "expectedversion must be an integer >= 0"));
        }
    };
    let (source, time, datacontenttype) =
        (source.to_owned(), time.map(str::to_owned), datacontenttype.map(str::to_owned));
    let data = match object.remove("data") {
        Some(Value::Object(data)) => data,
        Some(_) => return Err(envelope_error("data", "data must be a JSON object")),
        None => return Err(envelope_error("data", "data is required")),
    };

    let event_type = EventType::parse(&event_type)
        .ok_or_else(|| Refusal::at(ErrorCode::UnknownType, "type", format!("unknown event type {event_type:?}")))?;

    if let Some(tokens) = &route.type_tokens
        && tokens != event_type.subject_tokens()
    {
        return Err(Refusal::new(
            ErrorCode::SubjectMismatch,
            format!(
                "the subject names {tokens:?} but the event's type is {:?}; submit it on tafel.submit.{}.<principal>",
                event_type.as_str(),
                event_type.subject_tokens()
            ),
        ));
    }
    if !is_valid_id(&route.principal) {
        return Err(Refusal::new(ErrorCode::SubjectMismatch, format!("{:?} is not a principal id", route.principal)));
    }

    Ok(Envelope {
        specversion: SPEC_VERSION.into(),
        id,
        source,
        event_type,
        subject,
        time,
        datacontenttype,
        data,
        expectedversion,
    })
}

const KNOWN_ATTRIBUTES: &[&str] =
    &["specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data", "expectedversion"];

fn envelope_error(field: &str, message: impl Into<String>) -> Refusal {
    Refusal::at(ErrorCode::InvalidEnvelope, field, message)
}

fn required_string<'a>(object: &'a Map<String, Value>, key: &str) -> Result<&'a str, Refusal> {
    match object.get(key) {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(envelope_error(key, format!("{key} must be a string"))),
        None => Err(envelope_error(key, format!("{key} is required"))),
    }
}

fn optional_string<'a>(object: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, Refusal> {
    match object.get(key) {
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(envelope_error(key, format!("{key} must be a string"))),
        None => Ok(None),
    }
}

/// A URI reference (RFC 3986) in practice: non-empty, no spaces or control characters.
fn check_source(source: &str) -> Result<(), Refusal> {
    if source.is_empty() || source.len() > MAX_SOURCE_BYTES {
        return Err(envelope_error("source", format!("source must be 1-{MAX_SOURCE_BYTES} bytes")));
    }
    if source.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(envelope_error("source", "source must be a URI reference, without spaces"));
    }
    Ok(())
}

/// What the store adds to an event when it commits it (contract section 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedMeta {
    pub sequence: u64,
    pub streamversion: u64,
    pub principal: PrincipalId,
    /// RFC 3339, UTC.
    pub recordedat: String,
}

/// An event as Tafel stores and emits it: the envelope plus Tafel's four extensions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    #[serde(flatten)]
    pub envelope: Envelope,
    #[serde(flatten)]
    pub meta: RecordedMeta,
}

/// The milliseconds since the Unix epoch of a `recordedat` (RFC 3339), the inverse of
/// [`format_recorded_at`].
pub fn parse_recorded_at(text: &str) -> Option<i64> {
    let time = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Formats a commit time, in milliseconds since the Unix epoch, as RFC 3339 UTC.
pub fn format_recorded_at(unix_ms: i64) -> String {
    let nanos = i128::from(unix_ms) * 1_000_000;
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (date, clock) = (time.date(), time.time());
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        date.year(),
        u8::from(date.month()),
        date.day(),
        clock.hour(),
        clock.minute(),
        clock.second(),
        clock.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route() -> SubmitRoute {
        SubmitRoute::from_nats_subject("tafel.submit.request.withdrawn.acme-bikes").unwrap()
    }

    fn event() -> Value {
        json!({"specversion": "1.0", "id": "e1", "source": "/desk", "type": "tafel.request.withdrawn",
               "subject": "r1", "data": {"request_id": "r1", "reason": "funded"}})
    }

    fn code_of(value: &Value, route: &SubmitRoute) -> Option<(ErrorCode, Option<String>)> {
        parse_envelope(value.to_string().as_bytes(), route).err().map(|r| (r.code, r.field))
    }

    #[test]
    fn a_good_envelope_parses() {
        let envelope = parse_envelope(event().to_string().as_bytes(), &route()).unwrap();
        assert_eq!(envelope.event_type, EventType::RequestWithdrawn);
        assert_eq!(envelope.subject.as_str(), "r1");
    }

    #[test]
    fn step_one_in_order() {
        let big = vec![b' '; MAX_EVENT_BYTES + 1];
        assert_eq!(parse_envelope(&big, &route()).unwrap_err().code, ErrorCode::TooLarge);
        assert_eq!(parse_envelope(b"{", &route()).unwrap_err().code, ErrorCode::MalformedJson);
        let mut bad = event();
        bad["specversion"] = json!("0.3");
        bad["type"] = json!("tafel.nope");
        assert_eq!(code_of(&bad, &route()), Some((ErrorCode::InvalidEnvelope, Some("specversion".into()))));
        let mut unknown = event();
        unknown["type"] = json!("tafel.nope");
        assert_eq!(code_of(&unknown, &route()).unwrap().0, ErrorCode::UnknownType);
        let mut other = event();
        other["type"] = json!("tafel.request.revised");
        assert_eq!(code_of(&other, &route()).unwrap().0, ErrorCode::SubjectMismatch);
        let http = SubmitRoute { principal: "acme-bikes".into(), type_tokens: None };
        assert_eq!(code_of(&other, &http), None);
        let bad_principal = SubmitRoute { principal: "Acme".into(), type_tokens: None };
        assert_eq!(code_of(&event(), &bad_principal).unwrap().0, ErrorCode::SubjectMismatch);
    }

    #[test]
    fn envelope_fields() {
        let cases: Vec<(&str, Value)> = vec![
            ("id", json!("")),
            ("id", json!(7)),
            ("source", json!("has space")),
            ("subject", json!("Not-An-Id")),
            ("time", json!("yesterday")),
            ("datacontenttype", json!("text/plain")),
            ("expectedversion", json!(-1)),
            ("expectedversion", json!(1.5)),
            ("data", json!([1])),
            ("sequence", json!(3)),
            ("traceparent", json!("x")),
        ];
        for (field, value) in cases {
            let mut bad = event();
            bad[field] = value;
            assert_eq!(code_of(&bad, &route()), Some((ErrorCode::InvalidEnvelope, Some(field.into()))), "{field}");
        }
        let mut no_data = event();
        no_data.as_object_mut().unwrap().remove("data");
        assert_eq!(code_of(&no_data, &route()).unwrap().1.as_deref(), Some("data"));
        let mut timed = event();
        timed["time"] = json!("2024-05-01T10:00:00+02:00");
        timed["expectedversion"] = json!(0);
        assert_eq!(code_of(&timed, &route()), None);
    }

    #[test]
    fn identity_ignores_key_order_and_envelope_extras() {
        let a = parse_envelope(event().to_string().as_bytes(), &route()).unwrap();
        let reordered = r#"{"data":{"reason":"funded","request_id":"r1"},"subject":"r1","type":"tafel.request.withdrawn",
            "source":"/elsewhere","id":"e1","specversion":"1.0","time":"2024-01-01T00:00:00Z"}"#;
        let b = parse_envelope(reordered.as_bytes(), &route()).unwrap();
        let principal = PrincipalId::parse("acme-bikes").unwrap();
        assert_eq!(a.identity(&principal), b.identity(&principal));
        let other = PrincipalId::parse("other").unwrap();
        assert_ne!(a.identity(&principal), a.identity(&other));
    }

    #[test]
    fn recorded_at_is_rfc3339_utc() {
        assert_eq!(format_recorded_at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_recorded_at(1_717_243_200_123), "2024-06-01T12:00:00.123Z");
    }

    #[test]
    fn nats_routes() {
        assert_eq!(SubmitRoute::from_nats_subject("tafel.submit.request.submitted"), None);
        assert_eq!(SubmitRoute::from_nats_subject("tafel.submit.a.b.c.d"), None);
        assert_eq!(route().type_tokens.as_deref(), Some("request.withdrawn"));
    }
}
