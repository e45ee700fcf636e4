//! A generator of plausible worlds for benchmarks and load: requests and mandates with
//! realistic spreads of amounts, instruments, stages, SDGs and NUTS regions, from a
//! seed (the same seed gives the same world).

use tafel_contract::AggregateId;
use tafel_contract::data::{Financier, MandateTerms, Organisation, RequestDetails};
use tafel_contract::vocab::{Certification, FinancierKind, Instrument, Kvk, Region, Sdg, Stage};

/// NUTS-3 regions of the Netherlands, and a few neighbours.
const NUTS3: &[&str] = &[
    "NL111", "NL112", "NL113", "NL124", "NL125", "NL126", "NL131", "NL132", "NL133", "NL211", "NL212", "NL213",
    "NL221", "NL224", "NL225", "NL226", "NL230", "NL310", "NL321", "NL323", "NL324", "NL325", "NL327", "NL328",
    "NL329", "NL332", "NL333", "NL337", "NL33A", "NL33B", "NL33C", "NL341", "NL342", "NL411", "NL412", "NL413",
    "NL414", "NL421", "NL422", "NL423", "BE211", "BE241", "DEA11", "DE212",
];

/// splitmix64: small, fast, and the same everywhere.
#[derive(Clone, Debug)]
pub struct Random(u64);

impl Random {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Log-uniform in `low..high`, rounded to `step`.
    fn log_uniform(&mut self, low: u64, high: u64, step: u64) -> u64 {
        let (low_log, high_log) = ((low as f64).ln(), (high as f64).ln());
        let fraction = self.below(1_000_000) as f64 / 1_000_000.0;
        let value = (low_log + fraction * (high_log - low_log)).exp() as u64;
        (value / step).max(1) * step
    }

    /// Picks by weight.
    fn weighted<T: Copy>(&mut self, items: &[(T, u64)]) -> T {
        let total: u64 = items.iter().map(|(_, weight)| weight).sum();
        let mut roll = self.below(total);
        for (item, weight) in items {
            if roll < *weight {
                return *item;
            }
            roll -= weight;
        }
        items[0].0
    }

    /// `count` distinct picks by weight.
    fn distinct<T: Copy + PartialEq>(&mut self, items: &[(T, u64)], count: usize) -> Vec<T> {
        let mut picked = Vec::with_capacity(count);
        while picked.len() < count.min(items.len()) {
            let item = self.weighted(items);
            if !picked.contains(&item) {
                picked.push(item);
            }
        }
        picked
    }
}

const INSTRUMENTS: &[(Instrument, u64)] = &[
    (Instrument::Loan, 40),
    (Instrument::Grant, 20),
    (Instrument::Equity, 15),
    (Instrument::ConvertibleLoan, 10),
    (Instrument::SubordinatedLoan, 8),
    (Instrument::RevenueBasedFinancing, 5),
    (Instrument::Guarantee, 2),
];
const STAGES: &[(Stage, u64)] =
    &[(Stage::Idea, 10), (Stage::PreRevenue, 20), (Stage::EarlyRevenue, 35), (Stage::Growth, 25), (Stage::Mature, 10)];

fn sdgs() -> Vec<(u64, u64)> {
    (1..=17).map(|n| (n, if [3, 4, 7, 8, 11, 12, 13].contains(&n) { 10 } else { 3 })).collect()
}

fn id(prefix: &str, index: usize) -> AggregateId {
    AggregateId::parse(&format!("{prefix}{index}")).expect("generated ids are valid")
}

/// A request, the `index`-th of a world.
pub fn request(random: &mut Random, index: usize) -> RequestDetails {
    let instruments = 1 + random.below(3) as usize;
    let themes = 1 + random.below(4) as usize;
    let region = NUTS3[random.below(NUTS3.len() as u64) as usize];
    RequestDetails {
        request_id: id("r", index),
        organisation: Organisation {
            name: format!("Impact onderneming {index}"),
            kvk: Kvk::try_from(format!("{:08}", random.below(100_000_000))).expect("8 digits"),
            region: Region::parse(region).expect("listed regions are valid"),
        },
        title: format!("Financing request {index}"),
        summary: String::new(),
        amount_eur: random.log_uniform(10_000, 2_000_000, 5_000),
        instruments: random.distinct(INSTRUMENTS, instruments),
        stage: random.weighted(STAGES),
        impact_themes: random.distinct(&sdgs(), themes).into_iter().map(|n| Sdg::new(n).expect("1-17")).collect(),
        certifications: Certification::ALL.iter().copied().filter(|_| random.chance(15)).collect(),
        annual_revenue_eur: None,
        founded_year: None,
    }
}

/// A mandate, the `index`-th of a world.
pub fn mandate(random: &mut Random, index: usize) -> MandateTerms {
    let ticket_min_eur = random.log_uniform(10_000, 500_000, 5_000);
    let ticket_max_eur = ticket_min_eur * (2 + random.below(19));
    let first_stage = random.below(4) as usize;
    let stage_count = 2 + random.below(2) as usize;
    let instrument_count = 1 + random.below(3) as usize;
    let regions = match random.below(10) {
        0..=3 => Vec::new(),
        4..=6 => vec!["NL".to_owned()],
        _ => {
            let region = NUTS3[random.below(NUTS3.len() as u64) as usize];
            vec![region[..3 + random.below(3) as usize].to_owned()]
        }
    };
    MandateTerms {
        mandate_id: id("m", index),
        financier: Financier {
            name: format!("Financier {index}"),
            kind: FinancierKind::ALL[random.below(FinancierKind::ALL.len() as u64) as usize],
        },
        ticket_min_eur,
        ticket_max_eur,
        instruments: random.distinct(INSTRUMENTS, instrument_count),
        stages: Stage::ALL[first_stage..(first_stage + stage_count).min(Stage::ALL.len())].to_vec(),
        impact_themes: if random.chance(40) {
            Vec::new()
        } else {
            let count = 2 + random.below(5) as usize;
            random.distinct(&sdgs(), count).into_iter().map(|n| Sdg::new(n).expect("1-17")).collect()
        },
        regions: regions.iter().map(|r| Region::parse(r).expect("prefixes of listed regions are valid")).collect(),
        required_certifications: Certification::ALL.iter().copied().filter(|_| random.chance(5)).collect(),
        co_financing: random.chance(50),
        budget_eur: random.chance(60).then(|| ticket_max_eur * (5 + random.below(46))),
        valid_until: None,
    }
}
