//! A shortlist's reasons and near misses as sentences in the page's language. The
//! contract carries them as English details written by the matcher; their few shapes
//! are read here and put in words from the catalogues (a test holds this to what the
//! matcher writes). A detail of an unknown shape is shown as it came, marked as
//! English.

use maud::{Markup, html};

use crate::i18n::{Lang, msg};
use crate::layout::english;

/// Codes (`loan, equity`) as labels of `set`, joined as the language joins a list.
fn labels(lang: Lang, set: &str, codes: &str) -> String {
    let labels: Vec<String> = codes.split(", ").map(|code| lang.label(set, code.trim())).collect();
    join(lang, &labels)
}

fn join(lang: Lang, items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} {} {last}", rest.join(", "), lang.t(msg::WORD_AND)),
    }
}

fn euros(lang: Lang, text: &str) -> Option<String> {
    text.trim().parse::<u64>().ok().map(|amount| lang.eur(amount))
}

/// "Would pass if ..." for a near miss that failed `failed`, from its detail.
pub fn near_miss(lang: Lang, failed: &str, detail: &str) -> Markup {
    match near_miss_sentence(lang, failed, detail) {
        Some(sentence) => html! { (sentence) },
        None => html! { (lang.label("rule", failed)) ": " (english(detail)) },
    }
}

fn near_miss_sentence(lang: Lang, failed: &str, detail: &str) -> Option<String> {
    let sentence = match failed {
        "instruments" => {
            let (offers, asks) = detail.strip_prefix("offers ")?.split_once("; the request asks ")?;
            lang.f(
                msg::NEAR_INSTRUMENTS,
                &[("offers", &labels(lang, "instrument", offers)), ("asks", &labels(lang, "instrument", asks))],
            )
        }
        "stage" => {
            let (takes, is) = detail.strip_prefix("takes ")?.split_once("; the request is ")?;
            lang.f(msg::NEAR_STAGE, &[("takes", &labels(lang, "stage", takes)), ("is", &labels(lang, "stage", is))])
        }
        "region" => {
            let (regions, is) = detail.strip_prefix("invests in ")?.split_once("; the request is in ")?;
            lang.f(msg::NEAR_REGION, &[("regions", regions), ("is", is)])
        }
        "certifications" => {
            let requires = detail.strip_prefix("requires ")?;
            lang.f(msg::NEAR_CERTIFICATIONS, &[("requires", &labels(lang, "certification", requires))])
        }
        "impact_themes" => {
            let sdgs = detail.strip_prefix("funds SDG ")?.strip_suffix("; the request names none of them")?;
            lang.f(msg::NEAR_IMPACT_THEMES, &[("sdgs", sdgs)])
        }
        "ticket_min" => {
            let (from, asks) = detail.strip_prefix("lends from ")?.split_once(" EUR; the request asks ")?;
            let asks = asks.strip_suffix(" EUR")?;
            lang.f(msg::NEAR_TICKET_MIN, &[("from", &euros(lang, from)?), ("asks", &euros(lang, asks)?)])
        }
        "capacity" => {
            if let Some(rest) = detail.strip_prefix("has ") {
                let (left, min) = rest.split_once(" EUR left, below its own minimum ticket of ")?;
                let min = min.strip_suffix(" EUR")?;
                lang.f(msg::NEAR_CAPACITY_BUDGET, &[("left", &euros(lang, left)?), ("min", &euros(lang, min)?)])
            } else {
                let cap = detail.strip_prefix("carries at most ")?.split_once(" EUR and does not co-finance")?.0;
                lang.f(msg::NEAR_CAPACITY, &[("cap", &euros(lang, cap)?)])
            }
        }
        "open" => lang.t(msg::NEAR_OPEN).to_owned(),
        _ => return None,
    };
    Some(sentence)
}

/// One reason of a score, in words.
pub fn reason(lang: Lang, criterion: &str, detail: &str) -> Markup {
    match reason_sentence(lang, criterion, detail) {
        Some(sentence) => html! { (sentence) },
        None => english(detail),
    }
}

fn reason_sentence(lang: Lang, criterion: &str, detail: &str) -> Option<String> {
    let sentence = match (criterion, detail) {
        ("impact_themes", "funds every SDG") => lang.t(msg::REASON_EVERY_SDG).to_owned(),
        ("impact_themes", "shares no SDG") => lang.t(msg::REASON_NO_SDG).to_owned(),
        ("impact_themes", _) => lang.f(msg::REASON_SHARES_SDG, &[("sdgs", detail.strip_prefix("shares SDG ")?)]),
        ("ticket_fit", "the amount does not fit") => lang.t(msg::REASON_AMOUNT_MISFITS).to_owned(),
        ("ticket_fit", _) if detail.starts_with("can carry ") => {
            let (part, whole) = detail.strip_prefix("can carry ")?.split_once(" of ")?;
            let whole = whole.strip_suffix(" EUR")?;
            lang.f(msg::REASON_CARRIES_PART, &[("part", &euros(lang, part)?), ("whole", &euros(lang, whole)?)])
        }
        ("ticket_fit", _) => {
            let (amount, range) = detail.split_once(" EUR within tickets of ")?;
            let (min, max) = range.strip_suffix(" EUR")?.split_once('-')?;
            lang.f(
                msg::REASON_WITHIN_TICKETS,
                &[("amount", &euros(lang, amount)?), ("min", &euros(lang, min)?), ("max", &euros(lang, max)?)],
            )
        }
        ("instruments", _) => match detail.strip_prefix("takes ")?.strip_suffix(", the request's first choice") {
            Some(first) => lang.f(msg::REASON_FIRST_CHOICE, &[("instrument", &lang.label("instrument", first))]),
            None => lang
                .f(msg::REASON_TAKES, &[("instruments", &labels(lang, "instrument", detail.strip_prefix("takes ")?))]),
        },
        ("stage_focus", _) => {
            let stages = detail.strip_prefix("takes ")?.split_once(": ")?.1;
            lang.f(msg::REASON_STAGES, &[("stages", &labels(lang, "stage", stages))])
        }
        ("regional_focus", "invests anywhere") => lang.t(msg::REASON_ANYWHERE).to_owned(),
        ("regional_focus", "outside its regions") => lang.t(msg::REASON_OUTSIDE).to_owned(),
        ("regional_focus", _) => lang.f(msg::REASON_REGIONS, &[("regions", detail.strip_prefix("invests in ")?)]),
        ("certifications", "holds no certification") => lang.t(msg::REASON_NO_CERTIFICATION).to_owned(),
        ("certifications", _) => lang.f(
            msg::REASON_HOLDS,
            &[("certifications", &labels(lang, "certification", detail.strip_prefix("holds ")?))],
        ),
        _ => return None,
    };
    Some(sentence)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shapes the matcher writes today (`tafel_matcher`'s `near_miss_detail` and
    /// `reasons`); the shortlist test in `tests/pages.rs` runs the real matcher too.
    #[test]
    fn the_matchers_details_are_put_in_words() {
        let near = [
            ("instruments", "offers equity, convertible_loan; the request asks loan"),
            ("stage", "takes growth, mature; the request is early_revenue"),
            ("region", "invests in NL32, NL33; the request is in DE1"),
            ("certifications", "requires b_corp"),
            ("impact_themes", "funds SDG 7, 13; the request names none of them"),
            ("ticket_min", "lends from 250000 EUR; the request asks 80000 EUR"),
            ("capacity", "has 20000 EUR left, below its own minimum ticket of 50000 EUR"),
            (
                "capacity",
                "carries at most 100000 EUR and does not co-finance; a request of at most 100000 EUR would fit",
            ),
            ("open", "the mandate or the request is not open"),
        ];
        for lang in Lang::ALL {
            for (failed, detail) in near {
                let sentence = near_miss_sentence(lang, failed, detail);
                assert!(sentence.is_some(), "{failed}: {detail}");
            }
        }
        assert_eq!(
            near_miss_sentence(Lang::Nl, "ticket_min", "lends from 250000 EUR; the request asks 80000 EUR").unwrap(),
            "Zou passen als u ten minste €\u{a0}250.000 vroeg (u vraagt nu €\u{a0}80.000)."
        );
        let reasons = [
            ("impact_themes", "shares SDG 7, 12"),
            ("impact_themes", "funds every SDG"),
            ("impact_themes", "shares no SDG"),
            ("ticket_fit", "150000 EUR within tickets of 50000-250000 EUR"),
            ("ticket_fit", "can carry 100000 of 400000 EUR"),
            ("ticket_fit", "the amount does not fit"),
            ("instruments", "takes loan, the request's first choice"),
            ("instruments", "takes grant, loan"),
            ("stage_focus", "takes 2 stage(s): growth, mature"),
            ("regional_focus", "invests anywhere"),
            ("regional_focus", "invests in NL3"),
            ("regional_focus", "outside its regions"),
            ("certifications", "holds no certification"),
            ("certifications", "holds b_corp, pso"),
        ];
        for lang in Lang::ALL {
            for (criterion, detail) in reasons {
                assert!(reason_sentence(lang, criterion, detail).is_some(), "{criterion}: {detail}");
            }
        }
        assert!(near_miss_sentence(Lang::En, "stage", "something new").is_none());
    }
}
