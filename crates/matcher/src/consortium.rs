//! Consortia: when no single mandate carries a request, combinations of 2-4 eligible
//! mandates whose contributions, each between its mandate's `ticket_min_eur` and its
//! `max_contribution_eur`, add up to exactly the requested amount (contract section 5).
//!
//! A set of parts can make the amount exactly when the sum of their minimums is at most
//! the amount and the sum of their maximums at least the amount; the amount is then
//! split by giving each part its minimum and the rest, in rank order, up to each
//! maximum. Consortia rank by fewest parts, then the highest total score, then the
//! mandates' rank order. The search is a depth-first walk over candidates sorted by
//! score that prunes on both sums and on the best score still reachable, and it stops
//! after [`MAX_SEARCH_NODES`] steps, so it stays bounded with hundreds of candidates.

/// Most consortia offered per request.
pub const MAX_CONSORTIA: usize = 3;
/// Fewest and most parts in a consortium.
pub const MIN_PARTS: usize = 2;
pub const MAX_PARTS: usize = 4;
/// Steps the search may take per request before it settles for what it found.
pub const MAX_SEARCH_NODES: usize = 250_000;

/// An eligible mandate that may take part, already in rank order (best first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub min_eur: u64,
    pub max_eur: u64,
    pub score_tenths: u32,
}

/// A consortium: indices into the candidates, with the amount each contributes.
pub type Parts = Vec<(usize, u64)>;

/// The best consortia for `amount_eur` from `candidates` (given best first).
pub fn search(amount_eur: u64, candidates: &[Candidate]) -> Vec<Parts> {
    let usable: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].min_eur <= candidates[i].max_eur && candidates[i].min_eur <= amount_eur)
        .collect();
    let mut suffix_max = vec![0u64; usable.len() + 1];
    for position in (0..usable.len()).rev() {
        suffix_max[position] = suffix_max[position + 1].max(candidates[usable[position]].max_eur);
    }
    let mut search =
        Search { amount_eur, candidates, usable: &usable, suffix_max: &suffix_max, nodes: 0, found: Vec::new() };
    let mut chosen = Vec::with_capacity(MAX_PARTS);
    for parts in MIN_PARTS..=MAX_PARTS {
        if search.found.len() >= MAX_CONSORTIA {
            break;
        }
        let before = search.found.len();
        let mut this_size: Vec<(u32, Vec<usize>)> = Vec::new();
        search.walk(parts, 0, 0, 0, 0, &mut chosen, &mut this_size, MAX_CONSORTIA - before);
        search.found.extend(this_size.into_iter().map(|(_, set)| set));
    }
    search.found.into_iter().map(|set| split(amount_eur, candidates, &set)).collect()
}

struct Search<'a> {
    amount_eur: u64,
    candidates: &'a [Candidate],
    usable: &'a [usize],
    suffix_max: &'a [u64],
    nodes: usize,
    found: Vec<Vec<usize>>,
}

impl Search<'_> {
    /// Chooses `parts - chosen.len()` more from `usable[from..]`; keeps the best `keep`
    /// complete sets in `best` (by score, then order found, which is rank order).
    #[allow(clippy::too_many_arguments)]
    fn walk(
        &mut self,
        parts: usize,
        from: usize,
        min_sum: u64,
        max_sum: u64,
        score: u32,
        chosen: &mut Vec<usize>,
        best: &mut Vec<(u32, Vec<usize>)>,
        keep: usize,
    ) {
        let remaining = parts - chosen.len();
        if remaining == 0 {
            if min_sum <= self.amount_eur && self.amount_eur <= max_sum {
                let position = best.iter().position(|(kept, _)| score > *kept).unwrap_or(best.len());
                best.insert(position, (score, chosen.clone()));
                best.truncate(keep);
            }
            return;
        }
        for position in from..self.usable.len() {
            if self.usable.len() - position < remaining {
                return;
            }
            self.nodes += 1;
            if self.nodes > MAX_SEARCH_NODES {
                return;
            }
            // The best score still reachable: this candidate and the next best ones.
            let reachable: u32 = score
                + self.usable[position..position + remaining]
                    .iter()
                    .map(|&i| self.candidates[i].score_tenths)
                    .sum::<u32>();
            if best.len() == keep && reachable <= best[keep - 1].0 {
                return;
            }
            // Even the largest maximums left cannot reach the amount.
            if max_sum.saturating_add(self.suffix_max[position].saturating_mul(remaining as u64)) < self.amount_eur {
                return;
            }
            let candidate = self.candidates[self.usable[position]];
            let next_min = min_sum + candidate.min_eur;
            if next_min > self.amount_eur {
                continue;
            }
            chosen.push(self.usable[position]);
            self.walk(
                parts,
                position + 1,
                next_min,
                max_sum + candidate.max_eur,
                score + candidate.score_tenths,
                chosen,
                best,
                keep,
            );
            chosen.pop();
        }
    }
}

/// Splits `amount_eur` over a feasible set: minimums first, the rest in rank order.
fn split(amount_eur: u64, candidates: &[Candidate], set: &[usize]) -> Parts {
    let mut rest = amount_eur - set.iter().map(|&i| candidates[i].min_eur).sum::<u64>();
    set.iter()
        .map(|&i| {
            let extra = rest.min(candidates[i].max_eur - candidates[i].min_eur);
            rest -= extra;
            (i, candidates[i].min_eur + extra)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(min_eur: u64, max_eur: u64, score_tenths: u32) -> Candidate {
        Candidate { min_eur, max_eur, score_tenths }
    }

    #[test]
    fn two_parts_before_three_and_amounts_add_up() {
        let candidates =
            [candidate(50, 100, 900), candidate(50, 100, 800), candidate(10, 60, 700), candidate(10, 60, 100)];
        let found = search(150, &candidates);
        assert_eq!(found[0], vec![(0, 100), (1, 50)]);
        for parts in &found {
            assert_eq!(parts.iter().map(|(_, amount)| amount).sum::<u64>(), 150);
            for &(index, amount) in parts {
                assert!((candidates[index].min_eur..=candidates[index].max_eur).contains(&amount));
            }
        }
        assert_eq!(found.len(), 3);
        assert!(found.iter().all(|parts| parts.len() == 2));
    }

    #[test]
    fn nothing_when_the_amount_is_out_of_reach() {
        let candidates = [candidate(10, 20, 10), candidate(10, 20, 10), candidate(10, 20, 10), candidate(10, 20, 10)];
        assert!(search(81, &candidates).is_empty());
        assert_eq!(search(80, &candidates).len(), 1);
        assert!(search(15, &candidates).is_empty(), "two minimums already exceed it");
    }

    #[test]
    fn two_hundred_candidates_stay_bounded() {
        let candidates: Vec<Candidate> =
            (0..200).map(|i| candidate(10_000 + i * 37, 40_000 + i * 53, 1000 - i as u32 * 3)).collect();
        let found = search(1_000_000, &candidates);
        assert!(found.is_empty(), "four parts of at most ~50k cannot make a million");
        let found = search(150_000, &candidates);
        assert_eq!(found.len(), 3);
        assert!(found.iter().all(|parts| parts.iter().map(|p| p.1).sum::<u64>() == 150_000));
    }
}
