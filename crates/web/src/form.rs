//! Forms to event data and refusals back to fields. What a person types is turned
//! into the contract's JSON types here (an amount typed as `150.000` becomes
//! `150000`), as the API turns a query string into a query; whether the data is valid
//! is the contract's to say, and its refusal's JSON path (`data.organisation.kvk`)
//! names the field the error is shown beside.

use serde_json::{Map, Value, json};
use tafel_contract::reply::{ErrorCode, Refusal};

use crate::i18n::{Lang, msg};
use crate::layout::{FieldError, FormState};

/// The form's fields, in order, repeated names kept (checkboxes).
pub fn parse(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).map(|(key, value)| (key.into_owned(), value.into_owned())).collect()
}

/// A whole number of euros as people type it: `150000`, `150.000`, `150,000`,
/// `€ 150.000`. `None` for anything else (cents included: money is whole euros).
pub fn parse_eur(text: &str) -> Option<u64> {
    let text = text.trim().trim_start_matches('€').trim();
    let groups: Vec<&str> = text.split(['.', ',', ' ', '\u{a0}']).collect();
    // Separators only between groups of three digits, so that `1,50` is not 150.
    let well_grouped = groups.len() == 1 || groups[1..].iter().all(|group| group.len() == 3);
    let digits: String = groups.concat();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || !well_grouped || digits.len() > 15 {
        return None;
    }
    digits.parse().ok()
}

/// Builds `data` from a form: each `(form field, JSON path, kind)`; a field's JSON path
/// may be nested (`organisation.kvk`). Errors of kind (not a number) are gathered, every
/// one, before the contract is asked.
pub struct DataBuilder<'a> {
    form: &'a FormState,
    lang: Lang,
    data: Map<String, Value>,
    pub errors: Vec<FieldError>,
}

impl<'a> DataBuilder<'a> {
    pub fn new(lang: Lang, form: &'a FormState) -> Self {
        Self { form, lang, data: Map::new(), errors: Vec::new() }
    }

    fn put(&mut self, path: &str, value: Value) {
        let mut target = &mut self.data;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                target.insert(part.to_owned(), value);
                return;
            }
            let next = target.entry(part.to_owned()).or_insert_with(|| json!({}));
            let Value::Object(next) = next else { return };
            target = next;
        }
    }

    pub fn set(&mut self, path: &str, value: Value) -> &mut Self {
        self.put(path, value);
        self
    }

    /// Text as typed (trimmed).
    pub fn text(&mut self, name: &str) -> &mut Self {
        let value = self.form.value(name).trim().to_owned();
        self.put(name, Value::String(value));
        self
    }

    /// Text that may be left empty (then absent).
    pub fn optional_text(&mut self, name: &str) -> &mut Self {
        let value = self.form.value(name).trim().to_owned();
        if !value.is_empty() {
            self.put(name, Value::String(value));
        }
        self
    }

    /// Euros; a required amount left empty is sent as 0, for the contract to refuse.
    pub fn eur(&mut self, name: &str, required: bool) -> &mut Self {
        let text = self.form.value(name).trim().to_owned();
        if text.is_empty() {
            if required {
                self.put(name, json!(0));
            }
            return self;
        }
        match parse_eur(&text) {
            Some(amount) => self.put(name, json!(amount)),
            None => self
                .errors
                .push(FieldError { field: name.to_owned(), message: self.lang.t(msg::FORM_NOT_AN_AMOUNT).to_owned() }),
        }
        self
    }

    /// A whole number (a year, a score); empty is absent.
    pub fn whole(&mut self, name: &str) -> &mut Self {
        let text = self.form.value(name).trim().to_owned();
        if text.is_empty() {
            return self;
        }
        match text.parse::<u64>() {
            Ok(number) => self.put(name, json!(number)),
            Err(_) => self
                .errors
                .push(FieldError { field: name.to_owned(), message: self.lang.t(msg::FORM_NOT_A_NUMBER).to_owned() }),
        }
        self
    }

    /// Every value of a group of checkboxes, as strings.
    pub fn many(&mut self, name: &str) -> &mut Self {
        let values: Vec<Value> =
            self.form.values.iter().filter(|(key, _)| key == name).map(|(_, value)| json!(value)).collect();
        self.put(name, Value::Array(values));
        self
    }

    /// Every value of a group of checkboxes, as numbers (SDGs).
    pub fn many_numbers(&mut self, name: &str) -> &mut Self {
        let values: Vec<Value> = self
            .form
            .values
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.parse::<u64>().map_or_else(|_| json!(value), |n| json!(n)))
            .collect();
        self.put(name, Value::Array(values));
        self
    }

    pub fn boolean(&mut self, name: &str) -> &mut Self {
        let value = self.form.value(name) == "true";
        self.put(name, json!(value));
        self
    }

    pub fn build(&mut self) -> Value {
        Value::Object(std::mem::take(&mut self.data))
    }
}

/// The form field a refusal's JSON path names (`data.instruments[1]` is the field
/// `instruments`), if it names one of `fields`.
pub fn field_of(refusal: &Refusal, fields: &[&str]) -> Option<String> {
    let path = refusal.field.as_deref()?.strip_prefix("data.")?;
    let mut field = path.to_owned();
    while let Some(open) = field.rfind('[') {
        if !field.ends_with(']') {
            break;
        }
        field.truncate(open);
    }
    fields.contains(&field.as_str()).then_some(field)
}

/// A refusal put on the form: beside its field when it names one (with the catalogue's
/// sentence for that field, else the contract's own), otherwise for the whole form.
pub fn refusal_on_form(lang: Lang, form: &mut FormState, refusal: &Refusal, fields: &[&str]) {
    match field_of(refusal, fields) {
        Some(field) => {
            // The catalogue's sentence says what is asked; for something typed, the
            // contract's own words say what is wrong with it (too long, a control
            // character, ...).
            let message = match msg::by_name(&format!("invalid.{field}")) {
                Some(key) if form.value(&field).trim().is_empty() => lang.t(key).to_owned(),
                Some(key) => format!("{} ({})", lang.t(key), refusal.message),
                None => refusal.message.clone(),
            };
            form.errors.push(FieldError { field, message });
        }
        None => form.general = Some(refusal_sentence(lang, refusal)),
    }
}

/// A refusal for people: the catalogue's sentence for its code, and the contract's
/// detail where it adds something.
pub fn refusal_sentence(lang: Lang, refusal: &Refusal) -> String {
    let key = msg::by_name(&format!("error.{}", refusal.code.as_str())).unwrap_or(msg::ERROR_UNAVAILABLE);
    match refusal.code {
        ErrorCode::InvalidState | ErrorCode::InvalidData | ErrorCode::Forbidden => {
            format!("{} ({})", lang.t(key), refusal.message)
        }
        _ => lang.t(key).to_owned(),
    }
}

/// A fresh event id for a form (`web-` and 24 hex digits): the form carries it, so
/// sending it twice is answered as a duplicate.
pub fn new_event_id() -> String {
    let secret = crate::session::random_secret().unwrap_or_default();
    format!("web-{}", &secret[..24.min(secret.len())])
}

/// An aggregate id from a title and the form's event id: the title's words in lower
/// case, joined by `-` and cut to fit, and a tail from the event id. The same form sent
/// twice (a double click, a browser's retry) names the same aggregate, so the second is
/// answered as a duplicate of the first instead of creating a second aggregate; two
/// forms of one title differ by their event ids.
pub fn new_aggregate_id(title: &str, event_id: &str) -> String {
    let mut slug = String::new();
    for c in title.to_lowercase().chars() {
        let c = match c {
            'a'..='z' | '0'..='9' => c,
            'à' | 'á' | 'â' | 'ä' => 'a',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ò' | 'ó' | 'ô' | 'ö' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            _ => '-',
        };
        if c != '-' || !slug.ends_with('-') {
            slug.push(c);
        }
    }
    let slug: String = slug.trim_matches('-').chars().take(40).collect();
    let from_event: String =
        event_id.chars().rev().filter(char::is_ascii_alphanumeric).take(6).collect::<String>().to_lowercase();
    let tail = if from_event.len() == 6 {
        from_event
    } else {
        crate::session::random_secret().unwrap_or_default()[..6].to_owned()
    };
    if slug.is_empty() { format!("r-{tail}") } else { format!("{}-{tail}", slug.trim_end_matches('-')) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_as_people_type_them() {
        for (typed, amount) in
            [("150000", 150_000), ("150.000", 150_000), ("150,000", 150_000), ("€ 150.000", 150_000), (" 7 ", 7)]
        {
            assert_eq!(parse_eur(typed), Some(amount), "{typed}");
        }
        for typed in ["", "1,50", "12.5", "abc", "-5", "€", "1.2345"] {
            assert_eq!(parse_eur(typed), None, "{typed}");
        }
    }

    #[test]
    fn a_refusals_path_names_its_field() {
        let at = |path: &str| Refusal::at(ErrorCode::InvalidData, path, "x");
        let fields = ["organisation.kvk", "instruments", "amount_eur"];
        assert_eq!(field_of(&at("data.organisation.kvk"), &fields).as_deref(), Some("organisation.kvk"));
        assert_eq!(field_of(&at("data.instruments[1]"), &fields).as_deref(), Some("instruments"));
        assert_eq!(field_of(&at("data.title"), &fields), None);
        assert_eq!(field_of(&Refusal::new(ErrorCode::InvalidData, "x"), &fields), None);
    }

    #[test]
    fn ids_are_made_from_titles() {
        let event_id = new_event_id();
        assert!(tafel_contract::EventId::parse(&event_id).is_ok());
        let id = new_aggregate_id("Zonnepanelen op 40 daken!", &event_id);
        assert!(id.starts_with("zonnepanelen-op-40-daken-"), "{id}");
        assert!(tafel_contract::AggregateId::parse(&id).is_ok(), "{id}");
        assert_eq!(new_aggregate_id("Zonnepanelen op 40 daken!", &event_id), id, "one form, one aggregate");
        assert_ne!(new_aggregate_id("Zonnepanelen op 40 daken!", &new_event_id()), id, "two forms, two aggregates");
        for odd in ["", "x", "WEB-ÄÖÜ-!!"] {
            assert!(tafel_contract::AggregateId::parse(&new_aggregate_id("¡¿", odd)).is_ok(), "{odd}");
        }
    }
}
