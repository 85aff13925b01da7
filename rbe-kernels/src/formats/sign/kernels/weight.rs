//! The sign blueprint's weight as a device function (docs/math.md §9):
//! `w = mu + alpha * (2 * bit - 1)`, the bit read from the seed in registers.

use cubecl::prelude::*;

use crate::cube::WeightSource;

/// `±1` for the sign bit at index `k` of seed `s`: cell `k < 32` is bit `k` of the low word
/// `bits[s, 1]`, cell `k >= 32` bit `k - 32` of the high word `bits[s, 0]`. The words are
/// i32 bit patterns, possibly widened to i64; the cast to u32 keeps their low 32 bits.
#[cube]
pub(super) fn sign_of<F: Float, I: Int>(bits: &Tensor<I>, s: usize, k: usize) -> F {
    let mut word = s * 2 + 1;
    if k >= 32 {
        word = s * 2;
    }
    let shift = (k % 32) as u32;
    let mut sign = F::new(-1.0);
    if (u32::cast_from(bits[word]) >> shift) & 1u32 == 1u32 {
        sign = F::new(1.0);
    }
    sign
}

/// The sign blueprint's weight as the tiled matmul's [`WeightSource`]: cell `(i, j)` is
/// bit `i * bc + j`, `coords[s] = (alpha, mu)`. It needs no comptime configuration.
pub(super) struct SignWeight;

#[cube]
impl WeightSource for SignWeight {
    type Config = ();

    fn weight<F: Float, I: Int>(
        coords: &Tensor<F>,
        bits: &Tensor<I>,
        s: usize,
        i: usize,
        j: usize,
        _br: usize,
        bc: usize,
        #[comptime] _config: (),
    ) -> F {
        coords[s * 2 + 1] + coords[s * 2] * sign_of::<F, I>(bits, s, i * bc + j)
    }
}
