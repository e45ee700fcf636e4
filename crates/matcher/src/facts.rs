//! What matching needs of a request and a mandate, packed for speed: sets as bit masks,
//! regions as packed codes. [`judge`] applies rules 1-8 to these facts; it must agree
//! with [`crate::eligibility::check`], the plain reading of the rules on the contract's
//! types (the property tests hold them together).

use serde::{Deserialize, Serialize};
use tafel_contract::AggregateId;
use tafel_contract::data::{MandateTerms, RequestDetails};
use tafel_contract::shortlist::Fit;
use tafel_contract::vocab::{CalendarDate, Certification, Instrument, Region, Stage};

use crate::eligibility::{Eligible, Rule};

/// A NUTS code packed left-aligned in five bytes, with its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "PackedRegionParts")]
pub struct PackedRegion {
    chars: u64,
    len: u8,
}

/// A [`PackedRegion`] as read from a snapshot, before it is checked.
#[derive(Deserialize)]
struct PackedRegionParts {
    chars: u64,
    len: u8,
}

impl TryFrom<PackedRegionParts> for PackedRegion {
    type Error = String;

    /// Only what [`PackedRegion::new`] makes: 2-5 bytes, none of them zero, nothing
    /// after them (the masks and shifts of matching rely on it).
    fn try_from(PackedRegionParts { chars, len }: PackedRegionParts) -> Result<Self, String> {
        let fits = (2..=5).contains(&len)
            && chars >> 40 == 0
            && (0..5u32).all(|index| ((chars >> (8 * (4 - index))) & 0xff == 0) == (index >= u32::from(len)));
        if fits { Ok(Self { chars, len }) } else { Err(format!("not a packed NUTS code: {chars:#x}, length {len}")) }
    }
}

impl PackedRegion {
    pub fn new(region: &Region) -> Self {
        let mut chars = 0u64;
        for (index, byte) in region.as_str().bytes().take(5).enumerate() {
            chars |= u64::from(byte) << (8 * (4 - index));
        }
        Self { chars, len: region.as_str().len().min(5) as u8 }
    }

    /// Whether this region is a prefix of `other` (contract section 4).
    #[inline(always)]
    pub fn contains(self, other: PackedRegion) -> bool {
        if self.len > other.len {
            return false;
        }
        let shift = 8 * (5 - u32::from(self.len));
        (self.chars >> shift) == (other.chars >> shift)
    }

    pub fn len(self) -> u8 {
        self.len
    }

    pub fn is_empty(self) -> bool {
        self.len == 0
    }

    pub fn text(self) -> String {
        (0..self.len).map(|index| char::from((self.chars >> (8 * (4 - index))) as u8)).collect()
    }
}

fn bit<T: PartialEq>(all: &[T], item: &T) -> u32 {
    all.iter().position(|candidate| candidate == item).map_or(0, |index| 1 << index)
}

pub fn instrument_mask(items: &[Instrument]) -> u8 {
    items.iter().fold(0, |mask, item| mask | bit(Instrument::ALL, item) as u8)
}

pub fn stage_mask(items: &[Stage]) -> u8 {
    items.iter().fold(0, |mask, item| mask | bit(Stage::ALL, item) as u8)
}

pub fn certification_mask(items: &[Certification]) -> u8 {
    items.iter().fold(0, |mask, item| mask | bit(Certification::ALL, item) as u8)
}

pub fn theme_mask(items: &[tafel_contract::vocab::Sdg]) -> u32 {
    items.iter().fold(0, |mask, sdg| mask | 1 << (sdg.number() - 1))
}

/// The names of the set bits of `mask` in `all`.
pub fn names<T: std::fmt::Display>(all: &[T], mask: u32) -> String {
    all.iter()
        .enumerate()
        .filter(|(index, _)| mask & (1 << index) != 0)
        .map(|(_, item)| item.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn sdg_names(mask: u32) -> String {
    (0..17).filter(|index| mask & (1 << index) != 0).map(|index| (index + 1).to_string()).collect::<Vec<_>>().join(", ")
}

/// A request, as matching sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFacts {
    pub request_id: AggregateId,
    pub organisation: String,
    pub amount_eur: u64,
    pub instruments: u8,
    /// The request's instruments in its own order: the first is its preference.
    pub preferred_instrument: Instrument,
    /// The preferred instrument's bit.
    pub preferred_mask: u8,
    pub instrument_order: Vec<Instrument>,
    pub stage: u8,
    pub themes: u32,
    pub region: PackedRegion,
    pub certifications: u8,
    pub open: bool,
}

impl RequestFacts {
    pub fn new(details: &RequestDetails) -> Self {
        Self {
            request_id: details.request_id.clone(),
            organisation: details.organisation.name.clone(),
            amount_eur: details.amount_eur,
            instruments: instrument_mask(&details.instruments),
            preferred_instrument: details.instruments.first().copied().unwrap_or(Instrument::Grant),
            preferred_mask: instrument_mask(&details.instruments[..details.instruments.len().min(1)]),
            instrument_order: details.instruments.clone(),
            stage: stage_mask(std::slice::from_ref(&details.stage)),
            themes: theme_mask(&details.impact_themes),
            region: PackedRegion::new(&details.organisation.region),
            certifications: certification_mask(&details.certifications),
            open: true,
        }
    }
}

/// A mandate, as matching sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MandateFacts {
    pub mandate_id: AggregateId,
    pub financier: String,
    pub instruments: u8,
    pub stages: u8,
    /// 0 = any theme.
    pub themes: u32,
    /// Empty = anywhere.
    pub regions: Vec<PackedRegion>,
    /// The only region, kept inline for the common case of none or one.
    only_region: Option<PackedRegion>,
    pub required_certifications: u8,
    pub ticket_min_eur: u64,
    pub ticket_max_eur: u64,
    pub co_financing: bool,
    pub budget_eur: Option<u64>,
    pub committed_eur: u64,
    pub closed: bool,
    pub valid_until: Option<CalendarDate>,
    /// Bumped on every change, so that a shortlist naming this mandate can tell.
    pub revision: u32,
}

impl MandateFacts {
    pub fn new(terms: &MandateTerms) -> Self {
        Self {
            mandate_id: terms.mandate_id.clone(),
            financier: terms.financier.name.clone(),
            instruments: instrument_mask(&terms.instruments),
            stages: stage_mask(&terms.stages),
            themes: theme_mask(&terms.impact_themes),
            regions: terms.regions.iter().map(PackedRegion::new).collect(),
            only_region: (terms.regions.len() == 1).then(|| PackedRegion::new(&terms.regions[0])),
            required_certifications: certification_mask(&terms.required_certifications),
            ticket_min_eur: terms.ticket_min_eur,
            ticket_max_eur: terms.ticket_max_eur,
            co_financing: terms.co_financing,
            budget_eur: terms.budget_eur,
            committed_eur: 0,
            closed: false,
            valid_until: terms.valid_until,
            revision: 0,
        }
    }

    /// Whether the inline copy of a lone region is that region (a snapshot could say
    /// otherwise).
    pub fn regions_agree(&self) -> bool {
        self.only_region == (self.regions.len() == 1).then(|| self.regions[0])
    }

    /// Rule 1's half about the mandate.
    #[inline(always)]
    pub fn is_active(&self, today: Option<CalendarDate>) -> bool {
        !self.closed && !matches!((self.valid_until, today), (Some(until), Some(today)) if today > until)
    }

    /// The smaller of the ticket maximum and what is left of the budget.
    #[inline(always)]
    pub fn cap_eur(&self) -> u64 {
        match self.budget_eur {
            Some(budget) => self.ticket_max_eur.min(budget.saturating_sub(self.committed_eur)),
            None => self.ticket_max_eur,
        }
    }

    /// The longest of the mandate's regions that contains `region`, if any (0 when the
    /// mandate invests anywhere).
    #[inline(always)]
    pub fn region_match(&self, region: PackedRegion) -> Option<u8> {
        if let Some(only) = self.only_region {
            return only.contains(region).then_some(only.len());
        }
        if self.regions.is_empty() {
            return Some(0);
        }
        self.regions.iter().filter(|r| r.contains(region)).map(|r| r.len()).max()
    }
}

/// What judging and scoring read of a mandate. [`MandateFacts`] is the whole mandate;
/// [`HotMandate`] reads the same answers from a compact copy of the fields used on every
/// pair, kept in one array so that a pass over thousands of mandates stays in cache.
pub trait MandateView {
    fn instruments(&self) -> u8;
    fn stages(&self) -> u8;
    fn required_certifications(&self) -> u8;
    fn themes(&self) -> u32;
    fn ticket_min_eur(&self) -> u64;
    fn ticket_max_eur(&self) -> u64;
    fn co_financing(&self) -> bool;
    fn cap_eur(&self) -> u64;
    fn is_active(&self, today: Option<CalendarDate>) -> bool;
    fn region_match(&self, region: PackedRegion) -> Option<u8>;
}

impl MandateView for MandateFacts {
    #[inline(always)]
    fn instruments(&self) -> u8 {
        self.instruments
    }
    #[inline(always)]
    fn stages(&self) -> u8 {
        self.stages
    }
    #[inline(always)]
    fn required_certifications(&self) -> u8 {
        self.required_certifications
    }
    #[inline(always)]
    fn themes(&self) -> u32 {
        self.themes
    }
    #[inline(always)]
    fn ticket_min_eur(&self) -> u64 {
        self.ticket_min_eur
    }
    #[inline(always)]
    fn ticket_max_eur(&self) -> u64 {
        self.ticket_max_eur
    }
    #[inline(always)]
    fn co_financing(&self) -> bool {
        self.co_financing
    }
    #[inline(always)]
    fn cap_eur(&self) -> u64 {
        MandateFacts::cap_eur(self)
    }
    #[inline(always)]
    fn is_active(&self, today: Option<CalendarDate>) -> bool {
        MandateFacts::is_active(self, today)
    }
    #[inline(always)]
    fn region_match(&self, region: PackedRegion) -> Option<u8> {
        MandateFacts::region_match(self, region)
    }
}

/// The fields of a mandate read on every pair, in 64 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MandateHot {
    ticket_min_eur: u64,
    ticket_max_eur: u64,
    cap_eur: u64,
    only_region: PackedRegion,
    valid_until: Option<CalendarDate>,
    themes: u32,
    revision: u32,
    instruments: u8,
    stages: u8,
    required_certifications: u8,
    co_financing: bool,
    closed: bool,
    /// 0: anywhere; 1: `only_region`; 2: several (read from the full mandate).
    region_kind: u8,
}

impl MandateHot {
    pub fn revision(&self) -> u32 {
        self.revision
    }
}

impl MandateFacts {
    /// The compact copy of the fields read on every pair.
    pub fn hot(&self) -> MandateHot {
        MandateHot {
            ticket_min_eur: self.ticket_min_eur,
            ticket_max_eur: self.ticket_max_eur,
            cap_eur: self.cap_eur(),
            only_region: self.only_region.unwrap_or(PackedRegion { chars: 0, len: 0 }),
            valid_until: self.valid_until,
            themes: self.themes,
            revision: self.revision,
            instruments: self.instruments,
            stages: self.stages,
            required_certifications: self.required_certifications,
            co_financing: self.co_financing,
            closed: self.closed,
            region_kind: match self.regions.len() {
                0 => 0,
                1 => 1,
                _ => 2,
            },
        }
    }
}

/// The hot copies of every mandate, in step with the mandates, and beside them the
/// fields of rules 2-8 (the region only for a mandate with one) as columns, one array per field, for the
/// first pass over the mandates ([`HotMandates::candidates`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HotMandates {
    rows: Vec<MandateHot>,
    instruments: Vec<u8>,
    stages: Vec<u8>,
    required_certifications: Vec<u8>,
    themes: Vec<u32>,
    ticket_min_eur: Vec<u64>,
    cap_eur: Vec<u64>,
    /// Whether the mandate can carry part of a request: it co-finances and its
    /// minimum ticket fits under its cap.
    partial: Vec<bool>,
    /// Rule 4 (the region) for a mandate with one region: a request's packed region, masked to the
    /// mandate's code length, equals the mandate's code. Zero and zero (always equal)
    /// for a mandate that invests anywhere or in several regions (which `judge` sees).
    region_mask: Vec<u64>,
    region_chars: Vec<u64>,
}

impl MandateHot {
    /// The mask and the code of rule 4's test over the columns (see [`HotMandates`]).
    fn region_test(&self) -> (u64, u64) {
        if self.region_kind != 1 {
            return (0, 0);
        }
        // The code's bytes sit at the top of the five; a shorter request region has
        // zeros where the mandate's code has letters, so it never passes.
        let mask = !(u64::MAX >> (8 * u32::from(self.only_region.len))) >> 24;
        (mask, self.only_region.chars & mask)
    }
}

impl HotMandates {
    pub fn push(&mut self, hot: MandateHot) {
        self.rows.push(hot);
        self.instruments.push(hot.instruments);
        self.stages.push(hot.stages);
        self.required_certifications.push(hot.required_certifications);
        self.themes.push(hot.themes);
        self.ticket_min_eur.push(hot.ticket_min_eur);
        self.cap_eur.push(hot.cap_eur);
        self.partial.push(hot.co_financing & (hot.ticket_min_eur <= hot.cap_eur));
        let (mask, chars) = hot.region_test();
        self.region_mask.push(mask);
        self.region_chars.push(chars);
    }

    pub fn set(&mut self, index: usize, hot: MandateHot) {
        self.rows[index] = hot;
        self.instruments[index] = hot.instruments;
        self.stages[index] = hot.stages;
        self.required_certifications[index] = hot.required_certifications;
        self.themes[index] = hot.themes;
        self.ticket_min_eur[index] = hot.ticket_min_eur;
        self.cap_eur[index] = hot.cap_eur;
        self.partial[index] = hot.co_financing & (hot.ticket_min_eur <= hot.cap_eur);
        (self.region_mask[index], self.region_chars[index]) = hot.region_test();
    }

    pub fn rows(&self) -> &[MandateHot] {
        &self.rows
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The mandates that can be eligible for `request` or a near miss of it, as a bit
    /// set (bit `i % 64` of word `i / 64` for mandate `i`) in `out`: those failing at
    /// most one of rules 2-8 (instruments, stage, certifications, themes, minimum ticket,
    /// capacity, and the region of a mandate with one region). A pair failing two can
    /// be neither, whether it is open or not, so [`judge`] need only see these. The rules are counted over the
    /// columns 64 mandates at a time with no branch, which the compiler turns into
    /// vector instructions (AVX2's, on a CPU that has them).
    pub fn candidates(&self, request: &RequestFacts, out: &mut Vec<u64>) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: this CPU has AVX2, as checked just above.
            unsafe { self.candidates_avx2(request, out) };
            return;
        }
        self.count_failures(request, out);
    }

    /// [`HotMandates::candidates`] compiled for AVX2 (four 64-bit lanes instead of two).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn candidates_avx2(&self, request: &RequestFacts, out: &mut Vec<u64>) {
        self.count_failures(request, out);
    }

    /// [`HotMandates::candidates`] without the choice of instructions (for the tests).
    pub fn candidates_portable(&self, request: &RequestFacts, out: &mut Vec<u64>) {
        self.count_failures(request, out);
    }

    #[inline(always)]
    fn count_failures(&self, request: &RequestFacts, out: &mut Vec<u64>) {
        out.clear();
        let amount = request.amount_eur;
        let mut failed = [0u8; 64];
        let mut start = 0;
        while start < self.rows.len() {
            let end = (start + 64).min(self.rows.len());
            let failed = &mut failed[..end - start];
            let columns = self.instruments[start..end]
                .iter()
                .zip(&self.stages[start..end])
                .zip(&self.required_certifications[start..end])
                .zip(&self.themes[start..end])
                .zip(&self.ticket_min_eur[start..end])
                .zip(&self.cap_eur[start..end])
                .zip(&self.partial[start..end])
                .zip(self.region_mask[start..end].iter().zip(&self.region_chars[start..end]));
            for (count, (((((((instruments, stages), required), themes), ticket_min), cap), partial), region)) in
                failed.iter_mut().zip(columns)
            {
                let (region_mask, region_chars) = region;
                *count = u8::from(request.instruments & instruments == 0)
                    + u8::from(request.stage & stages == 0)
                    + u8::from(required & !request.certifications != 0)
                    + u8::from((*themes != 0) & (themes & request.themes == 0))
                    + u8::from(*ticket_min > amount)
                    + u8::from((amount > *cap) & !partial)
                    + u8::from(request.region.chars & region_mask != *region_chars);
            }
            let word = failed.iter().enumerate().fold(0u64, |word, (bit, count)| word | u64::from(*count <= 1) << bit);
            out.push(word);
            start = end;
        }
    }
}

impl FromIterator<MandateHot> for HotMandates {
    fn from_iter<I: IntoIterator<Item = MandateHot>>(items: I) -> Self {
        let mut hot = HotMandates::default();
        for item in items {
            hot.push(item);
        }
        hot
    }
}

/// A mandate read through its hot copy; the full mandate is touched only for a mandate
/// with several regions.
#[derive(Clone, Copy)]
pub struct HotMandate<'a> {
    pub hot: &'a MandateHot,
    pub full: &'a MandateFacts,
}

impl MandateView for HotMandate<'_> {
    #[inline(always)]
    fn instruments(&self) -> u8 {
        self.hot.instruments
    }
    #[inline(always)]
    fn stages(&self) -> u8 {
        self.hot.stages
    }
    #[inline(always)]
    fn required_certifications(&self) -> u8 {
        self.hot.required_certifications
    }
    #[inline(always)]
    fn themes(&self) -> u32 {
        self.hot.themes
    }
    #[inline(always)]
    fn ticket_min_eur(&self) -> u64 {
        self.hot.ticket_min_eur
    }
    #[inline(always)]
    fn ticket_max_eur(&self) -> u64 {
        self.hot.ticket_max_eur
    }
    #[inline(always)]
    fn co_financing(&self) -> bool {
        self.hot.co_financing
    }
    #[inline(always)]
    fn cap_eur(&self) -> u64 {
        self.hot.cap_eur
    }
    #[inline(always)]
    fn is_active(&self, today: Option<CalendarDate>) -> bool {
        !self.hot.closed && !matches!((self.hot.valid_until, today), (Some(until), Some(today)) if today > until)
    }
    #[inline(always)]
    fn region_match(&self, region: PackedRegion) -> Option<u8> {
        match self.hot.region_kind {
            0 => Some(0),
            1 => self.hot.only_region.contains(region).then_some(self.hot.only_region.len()),
            _ => self.full.region_match(region),
        }
    }
}

/// What rules 1-8 say of a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Eligible(Eligible),
    /// Active on both sides, and exactly this one of rules 2-8 fails.
    NearMiss(Rule),
    Neither,
}

/// Rules 1-8 on packed facts, evaluated without branching on each rule (which of them
/// fail is unpredictable from pair to pair), then read off a bit mask.
#[inline(always)]
pub fn judge<M: MandateView>(request: &RequestFacts, mandate: &M, today: Option<CalendarDate>) -> Verdict {
    if !request.open || !mandate.is_active(today) {
        return Verdict::Neither;
    }
    let cap = mandate.cap_eur();
    let full = request.amount_eur <= cap;
    let partial = mandate.co_financing() & (mandate.ticket_min_eur() <= cap);
    let themes = mandate.themes();
    let failed: u32 = u32::from(request.instruments & mandate.instruments() == 0)
        | u32::from(request.stage & mandate.stages() == 0) << 1
        | u32::from(mandate.required_certifications() & !request.certifications != 0) << 2
        | u32::from((themes != 0) & (themes & request.themes == 0)) << 3
        | u32::from(mandate.ticket_min_eur() > request.amount_eur) << 4
        | u32::from(!full & !partial) << 5;
    if failed & failed.wrapping_sub(1) != 0 {
        return Verdict::Neither;
    }
    let failed = failed | u32::from(mandate.region_match(request.region).is_none()) << 6;
    match failed {
        0 if full => Verdict::Eligible(Eligible { fit: Fit::Full, max_contribution_eur: request.amount_eur }),
        0 => Verdict::Eligible(Eligible { fit: Fit::Partial, max_contribution_eur: cap }),
        1 => Verdict::NearMiss(Rule::Instruments),
        2 => Verdict::NearMiss(Rule::Stage),
        4 => Verdict::NearMiss(Rule::Certifications),
        8 => Verdict::NearMiss(Rule::ImpactThemes),
        16 => Verdict::NearMiss(Rule::TicketMin),
        32 => Verdict::NearMiss(Rule::Capacity),
        64 => Verdict::NearMiss(Rule::Region),
        _ => Verdict::Neither,
    }
}

/// A plain sentence of what would pass `rule` for this pair.
pub fn near_miss_detail(rule: Rule, request: &RequestFacts, mandate: &MandateFacts) -> String {
    match rule {
        Rule::Open => "the mandate or the request is not open".into(),
        Rule::Instruments => format!(
            "offers {}; the request asks {}",
            names(Instrument::ALL, u32::from(mandate.instruments)),
            names(Instrument::ALL, u32::from(request.instruments))
        ),
        Rule::Stage => format!(
            "takes {}; the request is {}",
            names(Stage::ALL, u32::from(mandate.stages)),
            names(Stage::ALL, u32::from(request.stage))
        ),
        Rule::Region => format!(
            "invests in {}; the request is in {}",
            mandate.regions.iter().map(|r| r.text()).collect::<Vec<_>>().join(", "),
            request.region.text()
        ),
        Rule::Certifications => format!(
            "requires {}",
            names(Certification::ALL, u32::from(mandate.required_certifications & !request.certifications))
        ),
        Rule::ImpactThemes => {
            format!("funds SDG {}; the request names none of them", sdg_names(mandate.themes))
        }
        Rule::TicketMin => {
            format!("lends from {} EUR; the request asks {} EUR", mandate.ticket_min_eur, request.amount_eur)
        }
        Rule::Capacity => {
            let cap = mandate.cap_eur();
            if mandate.co_financing {
                format!("has {cap} EUR left, below its own minimum ticket of {} EUR", mandate.ticket_min_eur)
            } else {
                format!("carries at most {cap} EUR and does not co-finance; a request of at most {cap} EUR would fit")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_regions_compare_by_prefix() {
        let region = |text| PackedRegion::new(&Region::parse(text).unwrap());
        assert!(region("NL").contains(region("NL324")));
        assert!(region("NL32").contains(region("NL324")));
        assert!(region("NL324").contains(region("NL324")));
        assert!(!region("NL33").contains(region("NL324")));
        assert!(!region("NL324").contains(region("NL32")));
        assert!(!region("DE").contains(region("NL324")));
        assert_eq!(region("NL324").text(), "NL324");
    }
}
