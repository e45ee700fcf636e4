//! Dutch and English: the language a page is in, its messages (from the catalogues in
//! `messages/`, turned into [`msg`] keys at build time) and how amounts and dates are
//! written in it (`€ 150.000` and `1 maart 2021` in Dutch, `€150,000` and
//! `1 March 2021` in English).

use axum::http::HeaderMap;
use axum::http::header;

/// The keys of the message catalogues, checked at compile time.
pub mod msg {
    /// One message of the catalogues.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Key(pub usize);
    include!(concat!(env!("OUT_DIR"), "/messages.rs"));
}

use msg::Key;

/// The cookie that remembers the language a person chose.
pub const LANGUAGE_COOKIE: &str = "tafel_lang";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Nl,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Nl, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::En => "en",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "nl" => Some(Lang::Nl),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language chosen before (the cookie), else the browser's first of ours in
    /// `Accept-Language` (by its `q` weights), else Dutch.
    pub fn of(headers: &HeaderMap) -> Lang {
        if let Some(chosen) = crate::session::cookie(headers, LANGUAGE_COOKIE).and_then(|code| Lang::parse(&code)) {
            return chosen;
        }
        let accepted = headers.get(header::ACCEPT_LANGUAGE).and_then(|value| value.to_str().ok()).unwrap_or("");
        Self::from_accept_language(accepted).unwrap_or(Lang::Nl)
    }

    fn from_accept_language(value: &str) -> Option<Lang> {
        let mut best: Option<(f32, Lang)> = None;
        for part in value.split(',') {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let weight = pieces
                .find_map(|piece| piece.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            let Some(lang) = Lang::parse(primary) else { continue };
            if weight > 0.0 && best.is_none_or(|(best_weight, _)| weight > best_weight) {
                best = Some((weight, lang));
            }
        }
        best.map(|(_, lang)| lang)
    }

    /// The message `key` in this language.
    pub fn t(self, key: Key) -> &'static str {
        match self {
            Lang::Nl => msg::NL[key.0],
            Lang::En => msg::EN[key.0],
        }
    }

    /// The message `key` with each `{name}` replaced by its value.
    pub fn f(self, key: Key, values: &[(&str, &str)]) -> String {
        let mut text = self.t(key).to_owned();
        for (name, value) in values {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }

    /// The label of a closed-set value (`instrument.loan`, `stage.growth`, ...), or the
    /// value itself when the catalogue has none.
    pub fn label(self, set: &str, value: &str) -> String {
        msg::by_name(&format!("{set}.{value}")).map_or_else(|| value.to_owned(), |key| self.t(key).to_owned())
    }

    /// A whole number with this language's thousands separator.
    pub fn number(self, value: u64) -> String {
        let digits = value.to_string();
        let separator = match self {
            Lang::Nl => '.',
            Lang::En => ',',
        };
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (index, digit) in digits.chars().enumerate() {
            if index > 0 && (digits.len() - index).is_multiple_of(3) {
                out.push(separator);
            }
            out.push(digit);
        }
        out
    }

    /// Whole euros: `€ 150.000` in Dutch, `€150,000` in English.
    pub fn eur(self, value: u64) -> String {
        match self {
            Lang::Nl => format!("€\u{a0}{}", self.number(value)),
            Lang::En => format!("€{}", self.number(value)),
        }
    }

    /// A decimal with one digit after the point, as this language writes it.
    pub fn decimal(self, value: f64) -> String {
        let text = format!("{value:.1}");
        match self {
            Lang::Nl => text.replace('.', ","),
            Lang::En => text,
        }
    }

    /// A `YYYY-MM-DD` date (or the date part of an RFC 3339 time) as `1 maart 2021` or
    /// `1 March 2021`; anything else as it is.
    pub fn date(self, text: &str) -> String {
        let day = text.get(..10).unwrap_or(text);
        let mut parts = day.split('-');
        let (Some(year), Some(month), Some(date)) = (parts.next(), parts.next(), parts.next()) else {
            return text.to_owned();
        };
        let (Ok(month), Ok(date)) = (month.parse::<usize>(), date.parse::<u32>()) else {
            return text.to_owned();
        };
        match MONTHS.get(month.wrapping_sub(1)) {
            Some(key) => format!("{date} {} {year}", self.t(*key)),
            None => text.to_owned(),
        }
    }
}

const MONTHS: [Key; 12] = [
    msg::MONTH_01,
    msg::MONTH_02,
    msg::MONTH_03,
    msg::MONTH_04,
    msg::MONTH_05,
    msg::MONTH_06,
    msg::MONTH_07,
    msg::MONTH_08,
    msg::MONTH_09,
    msg::MONTH_10,
    msg::MONTH_11,
    msg::MONTH_12,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_dates_are_written_as_each_language_does() {
        assert_eq!(Lang::Nl.eur(150_000), "€\u{a0}150.000");
        assert_eq!(Lang::En.eur(150_000), "€150,000");
        assert_eq!(Lang::Nl.eur(999), "€\u{a0}999");
        assert_eq!(Lang::En.number(1_234_567), "1,234,567");
        assert_eq!(Lang::Nl.date("2021-03-01"), "1 maart 2021");
        assert_eq!(Lang::En.date("2021-03-01T10:00:00Z"), "1 March 2021");
        assert_eq!(Lang::Nl.date("not a date"), "not a date");
        assert_eq!(Lang::Nl.decimal(3.26), "3,3");
    }

    #[test]
    fn the_browser_language_is_the_default() {
        assert_eq!(Lang::from_accept_language("en-GB,en;q=0.9,nl;q=0.8"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("de-DE, nl;q=0.5, en;q=0.4"), Some(Lang::Nl));
        assert_eq!(Lang::from_accept_language("fr, de"), None);
        assert_eq!(Lang::from_accept_language("en;q=0, nl;q=0.1"), Some(Lang::Nl));
    }

    #[test]
    fn every_message_has_a_text_in_both_languages_and_placeholders_agree() {
        for index in 0..msg::COUNT {
            let (en, nl) = (msg::EN[index], msg::NL[index]);
            assert!(!en.is_empty() && !nl.is_empty(), "message {index} is empty");
            let names = |text: &str| {
                let mut names: Vec<String> = text
                    .split('{')
                    .skip(1)
                    .filter_map(|rest| rest.split_once('}'))
                    .map(|(n, _)| n.to_owned())
                    .collect();
                names.sort();
                names
            };
            assert_eq!(names(en), names(nl), "placeholders of {en:?} and {nl:?}");
        }
    }
}
