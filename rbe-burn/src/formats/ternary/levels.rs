//! The ternary levels of each seed as a `[n_blocks, 64]` tensor and back, in tensor ops, so
//! that straight-through training keeps its latent weights and codes on the device.
//!
//! On the device a seed's codes are four i32 words, cell `k` at bits `2 (k % 16)` of word
//! `k / 16`: `01` is +1, `10` is -1, `00` is 0.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use rbe_kernels::BlockLayout;
use rbe_kernels::formats::ternary::{ALPHA_MIN, TERNARY_BIT_WORDS, TERNARY_CELLS};

use crate::formats::sign::cells::{inside_words, pack_words};

/// Cells per device word.
const PER_WORD: usize = TERNARY_CELLS / TERNARY_BIT_WORDS;

/// The bit of code `+1` (`high == false`) or of code `-1` (`high == true`) of each of a
/// word's 16 cells, as i32 bit patterns (`1 << 31` is `i32::MIN`).
fn powers(high: bool) -> Vec<i32> {
    (0..PER_WORD)
        .map(|k| (1u32 << (2 * k + usize::from(high))) as i32)
        .collect()
}

/// Which cells are +1 and which -1.
///
/// # Shapes
/// - `bits`: `[n_blocks, 4]`; returns two `[n_blocks, 64]`
fn unpack<B: Backend>(bits: Tensor<B, 2, Int>) -> (Tensor<B, 2, Bool>, Tensor<B, 2, Bool>) {
    let [n, _] = bits.dims();
    let device = bits.device();
    let words = bits.reshape([n, TERNARY_BIT_WORDS, 1]);
    let test = |high: bool| {
        let powers =
            Tensor::<B, 1, Int>::from_data(TensorData::new(powers(high), [PER_WORD]), &device)
                .reshape([1, 1, PER_WORD]);
        // Expanded, not broadcast: NdArray's int bitwise ops take equal shapes only.
        let shape = [n, TERNARY_BIT_WORDS, PER_WORD];
        words
            .clone()
            .expand(shape)
            .bitwise_and(powers.expand(shape))
            .not_equal_elem(0)
            .reshape([n, TERNARY_CELLS])
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
    // Code `01` is +1 and `10` is -1: the cell's two-bit digit.
    pack_words(plus.float() + minus.float().mul_scalar(2.0), 2)
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
    let device = latent.device();
    let half = coords.slice([0..n, 0..1]).mul_scalar(0.5);
    let plus = latent.clone().greater(half.clone());
    let minus = latent.lower(half.neg());
    let bits = pack(plus, minus);
    match inside_words::<B, TERNARY_BIT_WORDS>(layout, word_masks, &device) {
        Some(inside) => bits.bitwise_and(inside),
        None => bits,
    }
}

/// Both code bits of every cell a block's [`rbe_kernels::formats::sign::valid_mask`] holds,
/// per device word.
fn word_masks(mask: u64) -> [i32; TERNARY_BIT_WORDS] {
    std::array::from_fn(|w| {
        (0..PER_WORD)
            .filter(|k| mask >> (w * PER_WORD + k) & 1 == 1)
            .fold(0u32, |word, k| word | 0b11 << (2 * k)) as i32
    })
}
