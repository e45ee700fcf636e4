//! The first pass over the mandates (`HotMandates::candidates`) may only leave out
//! pairs that are neither eligible nor a near miss: whatever `judge` keeps, it keeps.

use proptest::prelude::*;
use tafel_contract::vocab::{CalendarDate, Region};
use tafel_matcher::facts::{HotMandates, MandateFacts, RequestFacts, Verdict, judge};
use tafel_matcher::generate::{Random, mandate, request};

/// Mandates generated from `seed`, some moved onto the request's edges (minimum ticket
/// equal to its amount, a cap of exactly its amount, a budget spent, closed).
fn world(seed: u64, mandates: usize) -> (RequestFacts, Vec<MandateFacts>) {
    let mut random = Random::new(seed);
    let mut details = request(&mut random, 0);
    // Requests in regions coarser than NUTS-3 too (a code of 2-5 characters).
    let code = details.organisation.region.as_str().to_owned();
    let length = 2 + random.below(4) as usize;
    details.organisation.region = Region::parse(&code[..length]).unwrap();
    let request = RequestFacts::new(&details);
    let amount = request.amount_eur;
    let mandates = (0..mandates)
        .map(|index| {
            let mut terms = mandate(&mut random, index);
            // Now and then the request's own region, or a prefix of it.
            if random.below(4) == 0 {
                let prefix = 2 + random.below(4) as usize;
                terms.regions = vec![Region::parse(&code[..prefix]).unwrap()];
            }
            match random.below(6) {
                0 => terms.ticket_min_eur = amount,
                1 => {
                    terms.ticket_max_eur = amount;
                    terms.ticket_min_eur = terms.ticket_min_eur.min(amount);
                }
                2 => terms.budget_eur = Some(amount),
                _ => {}
            }
            let mut facts = MandateFacts::new(&terms);
            match random.below(8) {
                0 => facts.committed_eur = facts.budget_eur.unwrap_or(0),
                1 => facts.closed = true,
                _ => {}
            }
            facts
        })
        .collect();
    (request, mandates)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn candidates_keep_every_pair_judge_keeps(seed in any::<u64>(), count in 1usize..300) {
        let (request, mandates) = world(seed, count);
        let today = CalendarDate::parse("2024-06-01").ok();
        let hot: HotMandates = mandates.iter().map(MandateFacts::hot).collect();
        let mut words = Vec::new();
        hot.candidates(&request, &mut words);
        prop_assert_eq!(words.len(), count.div_ceil(64));
        // Whichever instructions this CPU chose, the same answer as without the choice.
        let mut portable = Vec::new();
        hot.candidates_portable(&request, &mut portable);
        prop_assert_eq!(&portable, &words);
        let mut kept = 0;
        for (index, mandate) in mandates.iter().enumerate() {
            let candidate = words[index / 64] >> (index % 64) & 1 == 1;
            if judge(&request, mandate, today) != Verdict::Neither {
                kept += 1;
                prop_assert!(candidate, "mandate {} is kept by judge but not a candidate", index);
            }
        }
        // Bits beyond the last mandate stay clear.
        if count % 64 != 0 {
            prop_assert_eq!(words[count / 64] >> (count % 64), 0);
        }
        prop_assert!(words.iter().map(|w| w.count_ones() as usize).sum::<usize>() >= kept);
    }
}
