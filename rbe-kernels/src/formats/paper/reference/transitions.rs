//! State-transition differentiation (docs/math.md §5).

/// The 2-bit slot `(i*31 + j) & 3` that in-block position `(i, j)` drives; the slot's state
/// lives in `hi[2*slot+1 : 2*slot]`.
pub fn transition_slot(i: usize, j: usize) -> usize {
    (i * 31 + j) & 3
}

/// The order-free form: per slot, `#{g > threshold} - #{g < -threshold}` over the block.
///
/// `signal(i, j)` is read for every in-block position of a `rows x cols` block; positions a
/// cropped edge block does not hold should be skipped by returning 0.
pub fn transition_counts(
    rows: usize,
    cols: usize,
    threshold: f64,
    mut signal: impl FnMut(usize, usize) -> f64,
) -> [i32; 4] {
    let mut counts = [0i32; 4];
    for i in 0..rows {
        for j in 0..cols {
            let g = signal(i, j);
            let slot = transition_slot(i, j);
            if g > threshold {
                counts[slot] += 1;
            } else if g < -threshold {
                counts[slot] -= 1;
            }
        }
    }
    counts
}

/// Moves each slot's 2-bit state by its net count, modulo 4. Bits above 7 are untouched.
pub fn apply_transition_counts(hi: u64, counts: [i32; 4]) -> u64 {
    let mut hi = hi;
    for (slot, &count) in counts.iter().enumerate() {
        let shift = 2 * slot as u32;
        let state = ((hi >> shift) & 3) as i64;
        let next = (state + i64::from(count)).rem_euclid(4) as u64;
        hi = (hi & !(3 << shift)) | (next << shift);
    }
    hi
}

/// The paper's sequential loop: one +1/-1 step per position, in row-major order.
pub fn sequential_transitions(
    hi: u64,
    rows: usize,
    cols: usize,
    threshold: f64,
    mut signal: impl FnMut(usize, usize) -> f64,
) -> u64 {
    let mut hi = hi;
    for i in 0..rows {
        for j in 0..cols {
            let g = signal(i, j);
            let step = if g > threshold {
                1
            } else if g < -threshold {
                3
            } else {
                continue;
            };
            let shift = 2 * transition_slot(i, j) as u32;
            let next = (((hi >> shift) & 3) + step) & 3;
            hi = (hi & !(3 << shift)) | (next << shift);
        }
    }
    hi
}
