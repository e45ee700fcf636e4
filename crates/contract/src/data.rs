//! The `data` of every event type (contract section 4) and step 4 of checking a submit.
//!
//! Parsing happens in two passes: serde, with `deny_unknown_fields` and the newtypes
//! of [`crate::vocab`] and [`crate::ids`], checks shapes, closed sets and patterns;
//! [`EventData::check`] then checks what types cannot say (amounts > 0, ticket ranges,
//! no repeats in a set, the aggregate id equal to the envelope's subject). Either
//! way the refusal names the JSON path of the first bad field, e.g. `data.instruments[1]`.

use std::collections::HashSet;
use std::hash::Hash;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event_type::EventType;
use crate::ids::{AggregateId, PrincipalId};
use crate::reply::{ErrorCode, Refusal};
use crate::vocab::{
    CalendarDate, Certification, FinancierKind, Instrument, Interest, Kvk, Readiness, Region, Sdg, Stage,
};

/// The largest amount of money anywhere in the contract: a trillion euros. No round
/// table comes near it; the bound keeps every sum of amounts far from overflow.
pub const MAX_AMOUNT_EUR: u64 = 1_000_000_000_000;
/// Longest name or title, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest free text (summary, notes, reasons, conditions), in characters.
pub const MAX_TEXT_CHARS: usize = 4000;
/// The only control characters text may hold: line feed and tab. Others (NUL, escape,
/// carriage return, ...) garble what a reader sees, in a terminal, a log or a page.
pub const TEXT_CONTROLS_ALLOWED: [char; 2] = ['\n', '\t'];
/// Most entries in any list of ids or regions.
pub const MAX_LIST_ITEMS: usize = 100;
/// Earliest and latest plausible founding year.
pub const FOUNDED_YEARS: std::ops::RangeInclusive<u16> = 1800..=2100;

/// An organisation asking for money.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organisation {
    pub name: String,
    pub kvk: Kvk,
    pub region: Region,
}

/// The data of `tafel.request.submitted` and `tafel.request.revised`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestDetails {
    pub request_id: AggregateId,
    pub organisation: Organisation,
    pub title: String,
    pub summary: String,
    pub amount_eur: u64,
    pub instruments: Vec<Instrument>,
    pub stage: Stage,
    pub impact_themes: Vec<Sdg>,
    pub certifications: Vec<Certification>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annual_revenue_eur: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub founded_year: Option<u16>,
}

/// The data of `tafel.request.coached`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestCoached {
    pub request_id: AggregateId,
    pub coach: PrincipalId,
    pub readiness: Readiness,
    pub notes: String,
}

/// The data of `tafel.request.withdrawn`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestWithdrawn {
    pub request_id: AggregateId,
    pub reason: String,
}

/// Who stands behind a mandate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Financier {
    pub name: String,
    pub kind: FinancierKind,
}

/// The data of `tafel.mandate.published` and `tafel.mandate.revised`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MandateTerms {
    pub mandate_id: AggregateId,
    pub financier: Financier,
    pub ticket_min_eur: u64,
    pub ticket_max_eur: u64,
    pub instruments: Vec<Instrument>,
    pub stages: Vec<Stage>,
    pub impact_themes: Vec<Sdg>,
    pub regions: Vec<Region>,
    pub required_certifications: Vec<Certification>,
    pub co_financing: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_eur: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<CalendarDate>,
}

/// The data of `tafel.mandate.closed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MandateClosed {
    pub mandate_id: AggregateId,
    pub reason: String,
}

/// The data of `tafel.roundtable.scheduled`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundtableScheduled {
    pub roundtable_id: AggregateId,
    pub title: String,
    pub date: CalendarDate,
    pub mandate_ids: Vec<AggregateId>,
}

/// The data of `tafel.roundtable.agenda_set`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgendaSet {
    pub roundtable_id: AggregateId,
    pub request_ids: Vec<AggregateId>,
}

/// A financier's marks for a request, each 1-5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scores {
    pub impact: u8,
    pub team: u8,
    pub financials: u8,
}

/// The data of `tafel.roundtable.assessed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assessed {
    pub roundtable_id: AggregateId,
    pub request_id: AggregateId,
    pub mandate_id: AggregateId,
    pub interest: Interest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_eur: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<Scores>,
}

/// The data of `tafel.roundtable.recused`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recused {
    pub roundtable_id: AggregateId,
    pub request_id: AggregateId,
    pub mandate_id: AggregateId,
    pub reason: String,
}

/// One mandate's promise of money at a round table's conclusion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commitment {
    pub mandate_id: AggregateId,
    pub amount_eur: u64,
    pub instrument: Instrument,
}

/// What a round table decided for one request on its agenda.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    pub request_id: AggregateId,
    pub commitments: Vec<Commitment>,
}

/// The data of `tafel.roundtable.concluded`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Concluded {
    pub roundtable_id: AggregateId,
    pub outcomes: Vec<Outcome>,
}

/// The checked `data` of a submitted event, one variant per submittable type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventData {
    RequestSubmitted(RequestDetails),
    RequestRevised(RequestDetails),
    RequestCoached(RequestCoached),
    RequestWithdrawn(RequestWithdrawn),
    MandatePublished(MandateTerms),
    MandateRevised(MandateTerms),
    MandateClosed(MandateClosed),
    RoundtableScheduled(RoundtableScheduled),
    RoundtableAgendaSet(AgendaSet),
    RoundtableAssessed(Assessed),
    RoundtableRecused(Recused),
    RoundtableConcluded(Concluded),
}

impl EventData {
    /// The data of an event from the log, parsed again as it was when accepted; an error
    /// (a log written under other rules) names the event.
    pub fn of_stored(event: &crate::StoredEvent) -> Result<Self, String> {
        let envelope = &event.envelope;
        Self::parse(envelope.event_type, &envelope.subject, &envelope.data)
            .map_err(|refusal| format!("event {} no longer parses: {refusal}", event.meta.sequence))
    }

    /// Step 4 of contract section 3: parses and checks `data` for `event_type`, whose
    /// aggregate id must equal the envelope's `subject`.
    pub fn parse(
        event_type: EventType,
        subject: &AggregateId,
        data: &Map<String, Value>,
    ) -> Result<EventData, Refusal> {
        let value = Value::Object(data.clone());
        let parsed = match event_type {
            EventType::RequestSubmitted => EventData::RequestSubmitted(typed(value)?),
            EventType::RequestRevised => EventData::RequestRevised(typed(value)?),
            EventType::RequestCoached => EventData::RequestCoached(typed(value)?),
            EventType::RequestWithdrawn => EventData::RequestWithdrawn(typed(value)?),
            EventType::MandatePublished => EventData::MandatePublished(typed(value)?),
            EventType::MandateRevised => EventData::MandateRevised(typed(value)?),
            EventType::MandateClosed => EventData::MandateClosed(typed(value)?),
            EventType::RoundtableScheduled => EventData::RoundtableScheduled(typed(value)?),
            EventType::RoundtableAgendaSet => EventData::RoundtableAgendaSet(typed(value)?),
            EventType::RoundtableAssessed => EventData::RoundtableAssessed(typed(value)?),
            EventType::RoundtableRecused => EventData::RoundtableRecused(typed(value)?),
            EventType::RoundtableConcluded => EventData::RoundtableConcluded(typed(value)?),
            EventType::ShortlistUpdated => {
                return Err(Refusal::new(ErrorCode::Forbidden, "tafel.shortlist.updated is published by Tafel only"));
            }
        };
        parsed.check()?;
        let id = parsed.aggregate_id();
        if id != subject {
            let field = format!("data.{}", event_type.aggregate().id_field());
            return Err(Refusal::at(
                ErrorCode::InvalidData,
                field,
                format!("{id} must equal the envelope's subject {subject}"),
            ));
        }
        Ok(parsed)
    }

    /// The id of the aggregate this data is about.
    pub fn aggregate_id(&self) -> &AggregateId {
        match self {
            EventData::RequestSubmitted(d) | EventData::RequestRevised(d) => &d.request_id,
            EventData::RequestCoached(d) => &d.request_id,
            EventData::RequestWithdrawn(d) => &d.request_id,
            EventData::MandatePublished(d) | EventData::MandateRevised(d) => &d.mandate_id,
            EventData::MandateClosed(d) => &d.mandate_id,
            EventData::RoundtableScheduled(d) => &d.roundtable_id,
            EventData::RoundtableAgendaSet(d) => &d.roundtable_id,
            EventData::RoundtableAssessed(d) => &d.roundtable_id,
            EventData::RoundtableRecused(d) => &d.roundtable_id,
            EventData::RoundtableConcluded(d) => &d.roundtable_id,
        }
    }

    /// The rules types cannot express; the first breach, with its path.
    pub fn check(&self) -> Result<(), Refusal> {
        match self {
            EventData::RequestSubmitted(d) | EventData::RequestRevised(d) => check_request(d),
            EventData::RequestCoached(d) => text("data.notes", &d.notes, MAX_TEXT_CHARS),
            EventData::RequestWithdrawn(d) => text("data.reason", &d.reason, MAX_TEXT_CHARS),
            EventData::MandatePublished(d) | EventData::MandateRevised(d) => check_mandate(d),
            EventData::MandateClosed(d) => text("data.reason", &d.reason, MAX_TEXT_CHARS),
            EventData::RoundtableScheduled(d) => {
                name("data.title", &d.title)?;
                list("data.mandate_ids", &d.mandate_ids, 1, MAX_LIST_ITEMS)
            }
            EventData::RoundtableAgendaSet(d) => list("data.request_ids", &d.request_ids, 1, MAX_LIST_ITEMS),
            EventData::RoundtableAssessed(d) => {
                if let Some(amount) = d.amount_eur {
                    money("data.amount_eur", amount)?;
                }
                if let Some(conditions) = &d.conditions {
                    text("data.conditions", conditions, MAX_TEXT_CHARS)?;
                }
                if let Some(scores) = d.scores {
                    for (field, score) in
                        [("impact", scores.impact), ("team", scores.team), ("financials", scores.financials)]
                    {
                        if !(1..=5).contains(&score) {
                            return Err(invalid(
                                format!("data.scores.{field}"),
                                format!("{field} must be 1-5, not {score}"),
                            ));
                        }
                    }
                }
                Ok(())
            }
            EventData::RoundtableRecused(d) => text("data.reason", &d.reason, MAX_TEXT_CHARS),
            EventData::RoundtableConcluded(d) => check_conclusion(d),
        }
    }
}

fn check_request(d: &RequestDetails) -> Result<(), Refusal> {
    name("data.organisation.name", &d.organisation.name)?;
    name("data.title", &d.title)?;
    text("data.summary", &d.summary, MAX_TEXT_CHARS)?;
    money("data.amount_eur", d.amount_eur)?;
    list("data.instruments", &d.instruments, 1, Instrument::ALL.len())?;
    list("data.impact_themes", &d.impact_themes, 1, usize::from(Sdg::COUNT))?;
    list("data.certifications", &d.certifications, 0, Certification::ALL.len())?;
    if let Some(revenue) = d.annual_revenue_eur
        && revenue > MAX_AMOUNT_EUR
    {
        return Err(invalid("data.annual_revenue_eur", format!("annual_revenue_eur must be <= {MAX_AMOUNT_EUR}")));
    }
    if let Some(year) = d.founded_year
        && !FOUNDED_YEARS.contains(&year)
    {
        return Err(invalid(
            "data.founded_year",
            format!("founded_year must be {}-{}", FOUNDED_YEARS.start(), FOUNDED_YEARS.end()),
        ));
    }
    Ok(())
}

fn check_mandate(d: &MandateTerms) -> Result<(), Refusal> {
    name("data.financier.name", &d.financier.name)?;
    money("data.ticket_min_eur", d.ticket_min_eur)?;
    money("data.ticket_max_eur", d.ticket_max_eur)?;
    if d.ticket_max_eur < d.ticket_min_eur {
        return Err(invalid(
            "data.ticket_max_eur",
            format!("ticket_max_eur ({}) must be >= ticket_min_eur ({})", d.ticket_max_eur, d.ticket_min_eur),
        ));
    }
    list("data.instruments", &d.instruments, 1, Instrument::ALL.len())?;
    list("data.stages", &d.stages, 1, Stage::ALL.len())?;
    list("data.impact_themes", &d.impact_themes, 0, usize::from(Sdg::COUNT))?;
    list("data.regions", &d.regions, 0, MAX_LIST_ITEMS)?;
    list("data.required_certifications", &d.required_certifications, 0, Certification::ALL.len())?;
    if let Some(budget) = d.budget_eur {
        money("data.budget_eur", budget)?;
    }
    Ok(())
}

fn check_conclusion(d: &Concluded) -> Result<(), Refusal> {
    list("data.outcomes", &d.outcomes.iter().map(|o| &o.request_id).collect::<Vec<_>>(), 0, MAX_LIST_ITEMS)
        .map_err(|refusal| Refusal { message: format!("{} (outcomes by request_id)", refusal.message), ..refusal })?;
    for (index, outcome) in d.outcomes.iter().enumerate() {
        let path = format!("data.outcomes[{index}].commitments");
        if outcome.commitments.len() > MAX_LIST_ITEMS {
            return Err(invalid(path, format!("at most {MAX_LIST_ITEMS} commitments per outcome")));
        }
        let mut seen = HashSet::new();
        for (position, commitment) in outcome.commitments.iter().enumerate() {
            money(&format!("{path}[{position}].amount_eur"), commitment.amount_eur)?;
            if !seen.insert(&commitment.mandate_id) {
                return Err(invalid(
                    format!("{path}[{position}].mandate_id"),
                    format!("{} commits twice to the same request", commitment.mandate_id),
                ));
            }
        }
    }
    Ok(())
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Refusal {
    Refusal::at(ErrorCode::InvalidData, field, message)
}

fn money(field: &str, amount_eur: u64) -> Result<(), Refusal> {
    let short = field.rsplit('.').next().unwrap_or(field);
    if amount_eur == 0 {
        return Err(invalid(field, format!("{short} must be > 0")));
    }
    if amount_eur > MAX_AMOUNT_EUR {
        return Err(invalid(field, format!("{short} must be <= {MAX_AMOUNT_EUR}")));
    }
    Ok(())
}

/// A name or title: text that is not blank.
fn name(field: &str, value: &str) -> Result<(), Refusal> {
    if !value.chars().any(visible) {
        return Err(invalid(field, "must hold at least one visible character"));
    }
    text(field, value, MAX_NAME_CHARS)
}

/// Free text: at most `max_chars` characters, no control characters but line feeds and
/// tabs, and either empty or holding at least one visible character.
fn text(field: &str, value: &str, max_chars: usize) -> Result<(), Refusal> {
    if value.chars().count() > max_chars {
        return Err(invalid(field, format!("must be at most {max_chars} characters")));
    }
    if let Some((position, control)) =
        value.chars().enumerate().find(|(_, c)| c.is_control() && !TEXT_CONTROLS_ALLOWED.contains(c))
    {
        return Err(invalid(
            field,
            format!(
                "holds the control character U+{:04X} at character {position}; only line feeds and tabs are allowed",
                u32::from(control)
            ),
        ));
    }
    if let Some((position, format)) = value.chars().enumerate().find(|(_, c)| refused_format(*c)) {
        return Err(invalid(
            field,
            format!(
                "holds U+{:04X} at character {position}, which reorders or breaks text unseen; write the text as it reads",
                u32::from(format)
            ),
        ));
    }
    if !value.is_empty() && !value.chars().any(visible) {
        return Err(invalid(field, "must be empty or hold at least one visible character"));
    }
    Ok(())
}

/// A character that shows: neither white space nor a control character.
fn visible(c: char) -> bool {
    !c.is_whitespace() && !c.is_control() && !invisible(c)
}

/// Characters that show nothing by themselves (zero-width spaces and joiners, direction
/// marks, word joiners, invisible operators, variation selectors, the byte-order mark,
/// filler letters, tags): allowed inside text, but they do not make it visible.
fn invisible(c: char) -> bool {
    matches!(u32::from(c),
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x2060..=0x2064 | 0x206A..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF)
}

/// Format characters refused anywhere in text: bidirectional embeddings, overrides and
/// isolates (which make text read otherwise than it is stored), line and paragraph
/// separators (line breaks are `\n`), interlinear annotations and the byte-order mark.
fn refused_format(c: char) -> bool {
    matches!(u32::from(c), 0x202A..=0x202E | 0x2066..=0x2069 | 0x2028 | 0x2029 | 0xFFF9..=0xFFFB | 0xFEFF)
}

/// A list with `min..=max` items, none repeated; the path of a repeat is its index.
fn list<T: Eq + Hash + std::fmt::Debug>(field: &str, items: &[T], min: usize, max: usize) -> Result<(), Refusal> {
    if items.len() < min {
        return Err(invalid(field, format!("needs at least {min} item(s)")));
    }
    if items.len() > max {
        return Err(invalid(field, format!("takes at most {max} items")));
    }
    let mut seen = HashSet::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        if !seen.insert(item) {
            return Err(invalid(format!("{field}[{index}]"), format!("{item:?} is listed twice")));
        }
    }
    Ok(())
}

/// Deserializes `value` into `T`, turning serde's complaint into `invalid_data` with the
/// JSON path of the field it was about.
fn typed<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, Refusal> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let mut path = String::from("data");
        for segment in error.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => path.push_str(&format!("[{index}]")),
                serde_path_to_error::Segment::Map { key } => {
                    path.push('.');
                    path.push_str(key);
                }
                serde_path_to_error::Segment::Enum { variant } => {
                    path.push('.');
                    path.push_str(variant);
                }
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        let message = error.inner().to_string();
        // serde names a missing field in its message, at its parent's path.
        if let Some(rest) = message.strip_prefix("missing field `")
            && let Some(end) = rest.find('`')
        {
            path.push('.');
            path.push_str(&rest[..end]);
        }
        Refusal::at(ErrorCode::InvalidData, path, message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request() -> Value {
        json!({
            "request_id": "r1",
            "organisation": {"name": "Fietsfabriek", "kvk": "01234567", "region": "NL324"},
            "title": "Refurbished bikes", "summary": "", "amount_eur": 150000,
            "instruments": ["loan", "grant"], "stage": "early_revenue",
            "impact_themes": [8, 12], "certifications": ["b_corp"]
        })
    }

    fn mandate() -> Value {
        json!({
            "mandate_id": "m1", "financier": {"name": "Triodos", "kind": "bank"},
            "ticket_min_eur": 50000, "ticket_max_eur": 500000, "instruments": ["loan"],
            "stages": ["growth"], "impact_themes": [], "regions": ["NL"],
            "required_certifications": [], "co_financing": true,
            "budget_eur": 2000000, "valid_until": "2025-12-31"
        })
    }

    fn refusal(event_type: EventType, subject: &str, data: Value) -> Option<(ErrorCode, String)> {
        let subject = AggregateId::parse(subject).unwrap();
        let Value::Object(map) = data else { panic!("data must be an object") };
        EventData::parse(event_type, &subject, &map).err().map(|r| (r.code, r.field.unwrap_or_default()))
    }

    #[test]
    fn good_data_parses() {
        assert_eq!(refusal(EventType::RequestSubmitted, "r1", request()), None);
        assert_eq!(refusal(EventType::MandatePublished, "m1", mandate()), None);
    }

    #[test]
    fn bad_request_fields_are_named() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("amount_eur", json!(0), "data.amount_eur"),
            ("amount_eur", json!(-5), "data.amount_eur"),
            ("amount_eur", json!(1.5), "data.amount_eur"),
            ("amount_eur", json!("100"), "data.amount_eur"),
            ("instruments", json!([]), "data.instruments"),
            ("instruments", json!(["loan", "shares"]), "data.instruments[1]"),
            ("instruments", json!(["loan", "loan"]), "data.instruments[1]"),
            ("impact_themes", json!([18]), "data.impact_themes[0]"),
            ("impact_themes", json!([0]), "data.impact_themes[0]"),
            ("stage", json!("seed"), "data.stage"),
            ("certifications", json!(["iso"]), "data.certifications[0]"),
            ("request_id", json!("r2"), "data.request_id"),
            ("title", json!("  "), "data.title"),
            ("founded_year", json!(1700), "data.founded_year"),
            ("extra", json!(1), "data.extra"),
        ];
        for (key, value, path) in cases {
            let mut data = request();
            data[key] = value;
            assert_eq!(
                refusal(EventType::RequestSubmitted, "r1", data),
                Some((ErrorCode::InvalidData, path.to_owned())),
                "{key}"
            );
        }
        let mut data = request();
        data["organisation"]["kvk"] = json!("1234567");
        assert_eq!(refusal(EventType::RequestSubmitted, "r1", data).unwrap().1, "data.organisation.kvk");
        let mut data = request();
        data["organisation"]["region"] = json!("nl3");
        assert_eq!(refusal(EventType::RequestSubmitted, "r1", data).unwrap().1, "data.organisation.region");
        let mut data = request();
        data.as_object_mut().unwrap().remove("title");
        assert_eq!(refusal(EventType::RequestSubmitted, "r1", data).unwrap().1, "data.title");
    }

    #[test]
    fn bad_mandate_fields_are_named() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("ticket_max_eur", json!(10000), "data.ticket_max_eur"),
            ("ticket_min_eur", json!(0), "data.ticket_min_eur"),
            ("stages", json!([]), "data.stages"),
            ("regions", json!(["NL", "XX1"]), "data.regions[1]"),
            ("valid_until", json!("2025-02-30"), "data.valid_until"),
            ("budget_eur", json!(0), "data.budget_eur"),
            ("co_financing", json!("yes"), "data.co_financing"),
        ];
        for (key, value, path) in cases {
            let mut data = mandate();
            data[key] = value;
            assert_eq!(
                refusal(EventType::MandatePublished, "m1", data),
                Some((ErrorCode::InvalidData, path.to_owned())),
                "{key}"
            );
        }
    }

    /// Every free-text field: control characters other than line feed and tab are
    /// refused, and so is text with nothing visible in it (names and titles may not be
    /// empty either; other text may).
    #[test]
    fn text_fields_hold_something_visible_and_no_control_characters() {
        let assessed = json!({"roundtable_id": "t1", "request_id": "r1", "mandate_id": "m1", "interest": "yes"});
        let coached = json!({"request_id": "r1", "coach": "c", "readiness": "ready", "notes": ""});
        let scheduled = json!({"roundtable_id": "t1", "title": "Haarlem", "date": "2021-06-01", "mandate_ids": ["m1"]});
        let recused = json!({"roundtable_id": "t1", "request_id": "r1", "mandate_id": "m1", "reason": ""});
        // (event type, subject, data, pointer to the field, its path, may it be empty)
        let fields: Vec<(EventType, &str, Value, &str, &str, bool)> = vec![
            (EventType::RequestSubmitted, "r1", request(), "/title", "data.title", false),
            (EventType::RequestSubmitted, "r1", request(), "/summary", "data.summary", true),
            (EventType::RequestSubmitted, "r1", request(), "/organisation/name", "data.organisation.name", false),
            (EventType::RequestRevised, "r1", request(), "/title", "data.title", false),
            (EventType::RequestCoached, "r1", coached, "/notes", "data.notes", true),
            (
                EventType::RequestWithdrawn,
                "r1",
                json!({"request_id": "r1", "reason": ""}),
                "/reason",
                "data.reason",
                true,
            ),
            (EventType::MandatePublished, "m1", mandate(), "/financier/name", "data.financier.name", false),
            (EventType::MandateRevised, "m1", mandate(), "/financier/name", "data.financier.name", false),
            (EventType::MandateClosed, "m1", json!({"mandate_id": "m1", "reason": ""}), "/reason", "data.reason", true),
            (EventType::RoundtableScheduled, "t1", scheduled, "/title", "data.title", false),
            (EventType::RoundtableAssessed, "t1", assessed, "/conditions", "data.conditions", true),
            (EventType::RoundtableRecused, "t1", recused, "/reason", "data.reason", true),
        ];
        for (event_type, subject, data, pointer, path, may_be_empty) in fields {
            let with = |text: &str| {
                let mut data = data.clone();
                let (parent, key) = pointer.rsplit_once('/').unwrap();
                data.pointer_mut(parent).unwrap()[key] = json!(text);
                refusal(event_type, subject, data)
            };
            let refused = Some((ErrorCode::InvalidData, path.to_owned()));
            for bad in [
                "\u{0}\u{1}\u{2}",
                "a\u{0}b",
                "Bikes\u{1b}[2J",
                "two\r\nlines",
                "\u{7f}",
                "x\u{85}",
                "  \n\t ",
                "\u{a0}\u{3000}",
                "\u{200b}",
                "\u{202e}\u{2066}",
                "a\u{202e}b",
                "\u{feff}",
                "\u{2028}x",
                "x\u{2029}",
                "\u{ad}\u{200d}\u{fe0f}",
            ] {
                assert_eq!(with(bad), refused, "{event_type} {path} = {bad:?}");
            }
            for good in ["Fietsfabriek", "two\nlines\tand a tab", " x ", "Ærø ✓", "\u{200b}x", "👩\u{200d}🌾"] {
                assert_eq!(with(good), None, "{event_type} {path} = {good:?}");
            }
            assert_eq!(with(""), if may_be_empty { None } else { refused.clone() }, "{event_type} {path} empty");
        }
    }

    #[test]
    fn round_table_data() {
        let assessed = json!({"roundtable_id": "t1", "request_id": "r1", "mandate_id": "m1",
            "interest": "yes", "amount_eur": 10000, "scores": {"impact": 5, "team": 4, "financials": 6}});
        assert_eq!(refusal(EventType::RoundtableAssessed, "t1", assessed).unwrap().1, "data.scores.financials");
        let concluded = json!({"roundtable_id": "t1", "outcomes": [
            {"request_id": "r1", "commitments": [{"mandate_id": "m1", "amount_eur": 5, "instrument": "loan"},
                                                  {"mandate_id": "m1", "amount_eur": 5, "instrument": "loan"}]}]});
        assert_eq!(
            refusal(EventType::RoundtableConcluded, "t1", concluded).unwrap().1,
            "data.outcomes[0].commitments[1].mandate_id"
        );
        let scheduled = json!({"roundtable_id": "t1", "title": "Haarlem", "date": "2021-06-01", "mandate_ids": []});
        assert_eq!(refusal(EventType::RoundtableScheduled, "t1", scheduled).unwrap().1, "data.mandate_ids");
    }
}
