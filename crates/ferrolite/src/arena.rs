//! The arena memory plan: one buffer for all intermediate tensors.
//!
//! Each tensor is alive from the step that first writes it to the step that
//! last reads it. Tensors whose lifetimes do not overlap may share bytes.
//! Placement is greedy by size, largest first, each at the lowest offset
//! that does not collide with an already placed tensor alive at the same
//! time (the strategy TFLite's "greedy by size" planner uses): simple, and
//! close to optimal on the chain-like graphs of vision models.

/// Offsets are rounded up to this so every element type (and SIMD loads)
/// can view a tensor in place.
pub const ARENA_ALIGNMENT: usize = 64;

/// One tensor's request: bytes and the inclusive range of steps it lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArenaRequest {
    pub size: usize,
    pub first_use: usize,
    pub last_use: usize,
}

/// Where each request was placed, and the arena size that needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArenaPlan {
    pub offsets: Vec<usize>,
    pub size: usize,
}

fn align_up(x: usize) -> usize {
    x.div_ceil(ARENA_ALIGNMENT).saturating_mul(ARENA_ALIGNMENT)
}

impl ArenaPlan {
    /// Plan the requests. `None` if the total would overflow `usize`.
    pub fn greedy_by_size(requests: &[ArenaRequest]) -> Option<ArenaPlan> {
        let mut order: Vec<usize> = (0..requests.len()).collect();
        // Largest first; ties by first use keeps the plan deterministic.
        order.sort_by(|&a, &b| {
            requests[b]
                .size
                .cmp(&requests[a].size)
                .then(requests[a].first_use.cmp(&requests[b].first_use))
                .then(a.cmp(&b))
        });
        let mut offsets = vec![0usize; requests.len()];
        // Placed tensors as (offset, end, index), kept sorted by offset.
        let mut placed: Vec<(usize, usize, usize)> = Vec::with_capacity(requests.len());
        let mut size = 0usize;
        for &i in &order {
            let r = requests[i];
            let need = align_up(r.size);
            let mut candidate = 0usize;
            for &(off, end, j) in &placed {
                let o = requests[j];
                let overlaps_in_time = o.first_use <= r.last_use && r.first_use <= o.last_use;
                if !overlaps_in_time {
                    continue;
                }
                if candidate.checked_add(need)? <= off {
                    break; // fits in the gap before this one
                }
                candidate = candidate.max(align_up(end));
            }
            offsets[i] = candidate;
            let end = candidate.checked_add(r.size)?;
            size = size.max(align_up(end));
            let pos = placed.partition_point(|&(off, _, _)| off <= candidate);
            placed.insert(pos, (candidate, end, i));
        }
        Some(ArenaPlan { offsets, size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(size: usize, first_use: usize, last_use: usize) -> ArenaRequest {
        ArenaRequest { size, first_use, last_use }
    }

    /// No two tensors alive at the same step may share a byte.
    fn assert_valid(reqs: &[ArenaRequest], plan: &ArenaPlan) {
        for i in 0..reqs.len() {
            assert_eq!(plan.offsets[i] % ARENA_ALIGNMENT, 0);
            assert!(plan.offsets[i] + reqs[i].size <= plan.size);
            for j in 0..i {
                let (a, b) = (reqs[i], reqs[j]);
                let time = a.first_use <= b.last_use && b.first_use <= a.last_use;
                let space = plan.offsets[i] < plan.offsets[j] + b.size && plan.offsets[j] < plan.offsets[i] + a.size;
                assert!(!(time && space && a.size > 0 && b.size > 0), "{i} and {j} collide");
            }
        }
    }

    #[test]
    fn chain_reuses_memory() {
        // a -> b -> c -> d: each lives two steps, so two slots suffice.
        let reqs = [req(1000, 0, 1), req(1000, 1, 2), req(1000, 2, 3), req(1000, 3, 4)];
        let plan = ArenaPlan::greedy_by_size(&reqs).unwrap();
        assert_valid(&reqs, &plan);
        assert_eq!(plan.size, 2 * align_up(1000));
    }

    #[test]
    fn all_alive_needs_the_sum() {
        let reqs = [req(100, 0, 5), req(200, 0, 5), req(300, 0, 5)];
        let plan = ArenaPlan::greedy_by_size(&reqs).unwrap();
        assert_valid(&reqs, &plan);
        assert_eq!(plan.size, align_up(100) + align_up(200) + align_up(300));
    }

    #[test]
    fn small_tensor_fills_a_gap() {
        // Big tensors at 0..2 and 3..5; a small one alive at 2..3 can reuse
        // the start of the arena once the first big one is dead.
        let reqs = [req(4096, 0, 1), req(4096, 2, 5), req(64, 4, 6), req(4096, 0, 6)];
        let plan = ArenaPlan::greedy_by_size(&reqs).unwrap();
        assert_valid(&reqs, &plan);
        assert!(plan.size <= 3 * 4096);
    }

    #[test]
    fn random_plans_are_valid() {
        // A small LCG: deterministic, no dependency.
        let mut s = 12345u64;
        let mut next = |m: usize| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 33) as usize) % m
        };
        for _ in 0..200 {
            let n = 1 + next(20);
            let reqs: Vec<_> = (0..n)
                .map(|_| {
                    let a = next(10);
                    let b = a + next(5);
                    req(next(5000), a, b)
                })
                .collect();
            let plan = ArenaPlan::greedy_by_size(&reqs).unwrap();
            assert_valid(&reqs, &plan);
        }
    }
}
