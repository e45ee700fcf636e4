//! The closed vocabularies of the contract (section 4), parsed once at the boundary.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! closed_set {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

closed_set!(
    /// How money is offered or asked for.
    Instrument {
        Grant => "grant",
        Loan => "loan",
        SubordinatedLoan => "subordinated_loan",
        ConvertibleLoan => "convertible_loan",
        Equity => "equity",
        RevenueBasedFinancing => "revenue_based_financing",
        Guarantee => "guarantee",
    }
);

closed_set!(
    /// How far along an enterprise is.
    Stage {
        Idea => "idea",
        PreRevenue => "pre_revenue",
        EarlyRevenue => "early_revenue",
        Growth => "growth",
        Mature => "mature",
    }
);

closed_set!(
    /// Certifications an entrepreneur may hold and a mandate may require.
    Certification {
        CodeSocialeOndernemingen => "code_sociale_ondernemingen",
        BCorp => "b_corp",
        SroiBadge => "sroi_badge",
        Pso => "pso",
    }
);

closed_set!(
    /// What kind of financier publishes a mandate.
    FinancierKind {
        Bank => "bank",
        ImpactFund => "impact_fund",
        PrivateInvestor => "private_investor",
        Foundation => "foundation",
        PublicFund => "public_fund",
        CrowdfundingPlatform => "crowdfunding_platform",
    }
);

closed_set!(
    /// Every principal has exactly one role.
    Role {
        Entrepreneur => "entrepreneur",
        Coach => "coach",
        Financier => "financier",
        Organiser => "organiser",
        Admin => "admin",
    }
);

closed_set!(
    /// A coach's verdict on a request.
    Readiness {
        Ready => "ready",
        NeedsWork => "needs_work",
    }
);

closed_set!(
    /// A financier's interest in a request at a round table.
    Interest {
        Yes => "yes",
        Maybe => "maybe",
        No => "no",
    }
);

/// A UN Sustainable Development Goal, 1-17.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u8")]
pub struct Sdg(u8);

impl Sdg {
    pub const COUNT: u8 = 17;

    pub fn new(number: u64) -> Result<Self, String> {
        if (1..=u64::from(Self::COUNT)).contains(&number) {
            Ok(Self(number as u8))
        } else {
            Err(format!("SDG {number} does not exist: SDGs are numbered 1-17"))
        }
    }

    pub fn number(self) -> u8 {
        self.0
    }
}

impl TryFrom<u64> for Sdg {
    type Error = String;
    fn try_from(number: u64) -> Result<Self, String> {
        Self::new(number)
    }
}

impl From<Sdg> for u8 {
    fn from(sdg: Sdg) -> u8 {
        sdg.0
    }
}

/// Country prefixes of the EU NUTS 2021 classification (EU member states, EFTA
/// countries and candidate countries with statistical regions).
const NUTS_COUNTRIES: &[&str] = &[
    "AL", "AT", "BE", "BG", "CH", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU", "IE", "IS", "IT",
    "LI", "LT", "LU", "LV", "ME", "MK", "MT", "NL", "NO", "PL", "PT", "RO", "RS", "SE", "SI", "SK", "TR",
];

/// A NUTS 2021 code: a country (two capitals) and up to three further levels of one
/// capital or digit each (`NL`, `NL3`, `NL32`, `NL324`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

impl Region {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = text.as_bytes();
        let well_formed = (2..=5).contains(&bytes.len())
            && bytes[..2].iter().all(u8::is_ascii_uppercase)
            && bytes[2..].iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !well_formed {
            return Err(format!(
                "{text:?} is not a NUTS code: two capitals for the country, then up to three levels (e.g. NL324)"
            ));
        }
        if !NUTS_COUNTRIES.contains(&&text[..2]) {
            return Err(format!("{:?} is not a NUTS 2021 country", &text[..2]));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this region contains `other`: a mandate region matches a request region
    /// it is a prefix of (contract section 4).
    pub fn contains(&self, other: &Region) -> bool {
        other.0.starts_with(&self.0)
    }
}

impl TryFrom<String> for Region {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

impl From<Region> for String {
    fn from(region: Region) -> String {
        region.0
    }
}

/// A Dutch Chamber of Commerce number: exactly eight digits, kept as text so that
/// leading zeros survive.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Kvk(String);

impl TryFrom<String> for Kvk {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        if text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(text))
        } else {
            Err(format!("{text:?} is not a KvK number: exactly 8 digits"))
        }
    }
}

impl From<Kvk> for String {
    fn from(kvk: Kvk) -> String {
        kvk.0
    }
}

/// A calendar date written `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CalendarDate(time::Date);

const DATE_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

impl CalendarDate {
    pub fn parse(text: &str) -> Result<Self, String> {
        // `[year]` alone would also take a sign or more than four digits.
        if text.len() != 10 {
            return Err(format!("{text:?} is not a date: YYYY-MM-DD"));
        }
        time::Date::parse(text, DATE_FORMAT).map(Self).map_err(|_| format!("{text:?} is not a date: YYYY-MM-DD"))
    }

    pub fn from_date(date: time::Date) -> Self {
        Self(date)
    }

    pub fn date(self) -> time::Date {
        self.0
    }
}

impl TryFrom<String> for CalendarDate {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

impl From<CalendarDate> for String {
    fn from(date: CalendarDate) -> String {
        date.to_string()
    }
}

impl fmt::Display for CalendarDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = (self.0.year(), u8::from(self.0.month()), self.0.day());
        write!(f, "{year:04}-{month:02}-{day:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        for good in ["NL", "NL3", "NL32", "NL324", "DEA1", "NLZZZ"] {
            assert!(Region::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "N", "nl", "NL3245", "XX", "NL-3", "US1"] {
            assert!(Region::parse(bad).is_err(), "{bad}");
        }
        let nl3 = Region::parse("NL3").unwrap();
        assert!(nl3.contains(&Region::parse("NL324").unwrap()));
        assert!(nl3.contains(&Region::parse("NL3").unwrap()));
        assert!(!nl3.contains(&Region::parse("NL4").unwrap()));
        assert!(!nl3.contains(&Region::parse("NL").unwrap()));
    }

    #[test]
    fn dates() {
        assert_eq!(CalendarDate::parse("2024-02-29").unwrap().to_string(), "2024-02-29");
        for bad in ["2023-02-29", "2024-13-01", "2024-1-01", "+2024-01-01", "20240101"] {
            assert!(CalendarDate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sdgs() {
        assert!(Sdg::new(0).is_err());
        assert!(Sdg::new(18).is_err());
        assert_eq!(Sdg::new(17).unwrap().number(), 17);
    }

    #[test]
    fn closed_sets_round_trip() {
        for instrument in Instrument::ALL {
            assert_eq!(Instrument::parse(instrument.as_str()), Some(*instrument));
        }
        assert_eq!(Role::parse("visitor"), None);
    }
}
