//! The ternary levels of each seed as a `[n_blocks, 64]` tensor and back, in tensor ops, so
//! that straight-through training keeps its latent weights and codes on the device.
//!
//! On the device a seed's codes are four i32 words, cell `k` at bits `2 (k % 16)` of word
//! `k / 16`: `01` is +1, `10` is -1, `00` is 0.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use rbe_kernels::BlockLayout;
use rbe_kernels::formats::ternary::{ALPHA_MIN, TERNARY_BIT_WORDS, TERNARY_CELLS};

use crate::formats::sign::cells::inside;

/// Cells per device word.
const PER_WORD: usize = TERNARY_CELLS / TERNARY_BIT_WORDS;

/// The bit of code `+1` (`high == false`) or of code `-1` (`high == true`) of every cell,
/// as i32 bit patterns (`1 << 31` is `i32::MIN`), `[1, 64]`.
fn powers<B: Backend>(high: bool, device: &B::Device) -> Tensor<B, 2, Int> {
    let powers: Vec<i32> = (0..TERNARY_CELLS)
        .map(|k| (1u32 << (2 * (k % PER_WORD) + usize::from(high))) as i32)
        .collect();
    Tensor::from_data(TensorData::new(powers, [1, TERNARY_CELLS]), device)
}

/// Which cells are +1 and which -1.
///
/// # Shapes
/// - `bits`: `[n_blocks, 4]`; returns two `[n_blocks, 64]`
fn unpack<B: Backend>(bits: Tensor<B, 2, Int>) -> (Tensor<B, 2, Bool>, Tensor<B, 2, Bool>) {
    let [n, _] = bits.dims();
    let device = bits.device();
    // Word w repeated for its 16 cells, in cell order.
    let words = bits
        .unsqueeze_dim::<3>(2)
        .repeat_dim(2, PER_WORD)
        .reshape([n, TERNARY_CELLS]);
    let test = |high: bool| {
        words
            .clone()
            .bitwise_and(powers::<B>(high, &device).repeat_dim(0, n))
            .not_equal_elem(0)
    };
    (test(false), test(true))
}

/// `-1.0`, `0.0` or `1.0` per cell (a code `11` reads as 0: the stored form cannot hold it
/// and the seeds' checks refuse it).
///
/// # Shapes
/// - `bits`: `[n_blocks, 4]`; returns `[n_blocks, 64]`
pub(crate) fn levels<B: Backend>(bits: Tensor<B, 2, Int>) -> Tensor<B, 2> {
    let (plus, minus) = unpack(bits);
    let both = plus.clone().bool_and(minus.clone());
    plus.bool_and(both.clone().bool_not()).float() - minus.bool_and(both.bool_not()).float()
}

/// The device words of `+1` and `-1` masks.
///
/// # Shapes
/// - `plus`, `minus`: `[n_blocks, 64]`, disjoint; returns `[n_blocks, 4]`
pub(crate) fn pack<B: Backend>(
    plus: Tensor<B, 2, Bool>,
    minus: Tensor<B, 2, Bool>,
) -> Tensor<B, 2, Int> {
    let [n, _] = plus.dims();
    let device = plus.device();
    // Distinct powers of two add without carries, so the sum is the bitwise or, and
    // `i32::MIN + x` for `x < 2^31` cannot overflow.
    let bits = plus.int() * powers::<B>(false, &device).repeat_dim(0, n)
        + minus.int() * powers::<B>(true, &device).repeat_dim(0, n);
    bits.reshape([n, TERNARY_BIT_WORDS, PER_WORD])
        .sum_dim(2)
        .reshape([n, TERNARY_BIT_WORDS])
}

/// The weight of every cell, `alpha * t`, `[n_blocks, 64]` (cells outside the matrix
/// included: callers crop them).
pub(crate) fn cell_weights<B: Backend>(
    coords: Tensor<B, 2>,
    bits: Tensor<B, 2, Int>,
) -> Tensor<B, 2> {
    let n = coords.dims()[0];
    levels(bits) * coords.slice([0..n, 0..1])
}

/// The latent weights that start straight-through training: each cell at its decoded weight,
/// with `alpha` raised to the floor of the constraint, so that [`bits_from_latent`] gives
/// back exactly these levels even for a block whose stored `alpha` is 0.
///
/// # Shapes
/// - `coords`: `[n_blocks, 2]`, `bits`: `[n_blocks, 4]`; returns `[n_blocks, 64]`
pub(crate) fn latent_from_seeds<B: Backend>(
    coords: Tensor<B, 2>,
    bits: Tensor<B, 2, Int>,
) -> Tensor<B, 2> {
    let n = coords.dims()[0];
    levels(bits) * coords.slice([0..n, 0..1]).clamp_min(ALPHA_MIN)
}

/// The straight-through levels: the nearest level of each cell's latent weight for the
/// block's `alpha`, `round(clamp(latent / alpha, -1, 1))` written as comparisons with
/// `±alpha / 2` (no division, and a value exactly halfway is 0); cells outside the matrix
/// are 0.
///
/// # Shapes
/// - `latent`: `[n_blocks, 64]`, `coords`: `[n_blocks, 2]`; returns `[n_blocks, 4]`
pub(crate) fn bits_from_latent<B: Backend>(
    latent: Tensor<B, 2>,
    coords: Tensor<B, 2>,
    layout: &BlockLayout,
) -> Tensor<B, 2, Int> {
    let n = coords.dims()[0];
    let half = coords
        .slice([0..n, 0..1])
        .mul_scalar(0.5)
        .repeat_dim(1, TERNARY_CELLS);
    let device = latent.device();
    let inside = inside::<B>(layout, &device);
    let plus = latent
        .clone()
        .greater(half.clone())
        .bool_and(inside.clone());
    let minus = latent.lower(half.neg()).bool_and(inside);
    pack(plus, minus)
}
