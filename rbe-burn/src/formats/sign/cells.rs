//! The 64 sign bits of each seed as a `[n_blocks, 64]` tensor and back, with tensor ops, so
//! that straight-through training keeps its latent weights and bits on the device.
//!
//! On the device a seed's `hi` is two i32 bit patterns (`bits[:, 0] = hi[63:32]`,
//! `bits[:, 1] = hi[31:0]`); cell `k` is bit `k` of `hi`.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use rbe_kernels::BlockLayout;
use rbe_kernels::formats::sign::{SIGN_CELLS, valid_mask};

const HALF: usize = 32;

/// `1 << k` for `k` in `0..32` as i32 bit patterns (`1 << 31` is `i32::MIN`).
fn powers() -> Vec<i32> {
    (0..HALF).map(|k| (1u32 << k) as i32).collect()
}

/// Whether each cell's bit is set.
///
/// # Shapes
/// - `bits`: `[n_blocks, 2]`
/// - returns `[n_blocks, 64]`, cell `k` (bit `k` of `hi`) in column `k`
pub(crate) fn unpack<B: Backend>(bits: Tensor<B, 2, Int>) -> Tensor<B, 2, Bool> {
    let [n, _] = bits.dims();
    let powers = Tensor::<B, 1, Int>::from_data(TensorData::new(powers(), [HALF]), &bits.device())
        .reshape([1, 1, HALF]);
    // hi[31:0] holds cells 0..32, hi[63:32] cells 32..64.
    // Expanded, not broadcast: NdArray's int bitwise ops take equal shapes only.
    bits.flip([1])
        .reshape([n, 2, 1])
        .expand([n, 2, HALF])
        .bitwise_and(powers.expand([n, 2, HALF]))
        .not_equal_elem(0)
        .reshape([n, SIGN_CELLS])
}

/// Inverse of [`unpack`].
///
/// # Shapes
/// - `cells`: `[n_blocks, 64]`
/// - returns `[n_blocks, 2]`
pub(crate) fn pack<B: Backend>(cells: Tensor<B, 2, Bool>) -> Tensor<B, 2, Int> {
    // Words come out in cell order (cells 0..32 first); the device keeps `hi[63:32]` first.
    pack_words(cells.float(), 1).flip([1])
}

/// Packs small unsigned digits into i32 words: the `32 / digit_bits` consecutive cells of
/// each word, cell `k` at bits `k * digit_bits ..`, as i32 bit patterns.
///
/// A per-element packing (`sum(cell << k)`) runs as broadcast int ops, which CPU backends
/// take one slow element at a time. Here each word's four bytes come from one small
/// matmul (every partial sum is an integer of at most 255, exact in f32, f16 and bf16), and
/// only the bytes, a sixteenth of the cells, meet int ops.
///
/// # Shapes
/// - `digits`: `[n_blocks, words * 32 / digit_bits]`, each a float integer below
///   `2^digit_bits` (`digit_bits` divides 8)
/// - returns `[n_blocks, words]`
pub(crate) fn pack_words<B: Backend>(digits: Tensor<B, 2>, digit_bits: usize) -> Tensor<B, 2, Int> {
    const BYTES: usize = 4;
    let [n, width] = digits.dims();
    let per_word = 32 / digit_bits;
    let words = width / per_word;
    let mut weights = vec![0.0f32; per_word * BYTES];
    for k in 0..per_word {
        let bit = k * digit_bits;
        weights[k * BYTES + bit / 8] = (1u32 << (bit % 8)) as f32;
    }
    let weights = Tensor::<B, 2>::from_data(
        TensorData::new(weights, [per_word, BYTES]),
        &digits.device(),
    );
    let bytes = digits.reshape([n * words, per_word]).matmul(weights).int();
    let byte = |i: usize| bytes.clone().slice([0..n * words, i..i + 1]);
    // The top byte as a signed one, so that `top << 24` is the word's sign bit and fits i32.
    let top = byte(3);
    let top = top.clone() - top.greater_equal_elem(128).int().mul_scalar(256);
    (byte(0) + byte(1).mul_scalar(1 << 8) + byte(2).mul_scalar(1 << 16) + top.mul_scalar(1 << 24))
        .reshape([n, words])
}

/// The device words with every bit of the cells inside the matrix set, or `None` when every
/// cell of every block is inside (no mask needed). `word_bits` turns one block's
/// [`valid_mask`] into its words.
///
/// # Shapes
/// - returns `[n_blocks, words]`
pub(crate) fn inside_words<B: Backend, const WORDS: usize>(
    layout: &BlockLayout,
    word_bits: impl Fn(u64) -> [i32; WORDS],
    device: &B::Device,
) -> Option<Tensor<B, 2, Int>> {
    // Every mask is whole exactly when the blocks hold all 64 cells and tile the matrix.
    let whole = layout.block_rows * layout.block_cols == SIGN_CELLS
        && layout.rows.is_multiple_of(layout.block_rows)
        && layout.cols.is_multiple_of(layout.block_cols);
    if whole {
        return None;
    }
    let n = layout.num_blocks();
    let words: Vec<i32> = (0..n)
        .flat_map(|s| word_bits(valid_mask(layout, s)))
        .collect();
    Some(Tensor::from_data(
        TensorData::new(words, [n, WORDS]),
        device,
    ))
}

/// `±1` per cell: `2 * bit - 1`, `[n_blocks, 64]`.
pub(crate) fn signs<B: Backend>(bits: Tensor<B, 2, Int>) -> Tensor<B, 2> {
    unpack(bits).float() * 2.0 - 1.0
}

/// The weight of every cell, `mu + alpha * (2 * bit - 1)`, `[n_blocks, 64]` (cells outside
/// the matrix included: callers crop them).
pub(crate) fn cell_weights<B: Backend>(
    coords: Tensor<B, 2>,
    bits: Tensor<B, 2, Int>,
) -> Tensor<B, 2> {
    let n = coords.dims()[0];
    let alpha = coords.clone().slice([0..n, 0..1]);
    let mu = coords.slice([0..n, 1..2]);
    signs(bits) * alpha + mu
}

/// The latent weights that start straight-through training: each cell at its decoded weight,
/// moved off `mu` by at least a few ulps when `alpha` is (nearly) zero, so that
/// [`bits_from_latent`] gives back exactly these bits.
///
/// # Shapes
/// - `coords`: `[n_blocks, 2]`, `bits`: `[n_blocks, 2]`
/// - returns `[n_blocks, 64]`
pub(crate) fn latent_from_seeds<B: Backend>(
    coords: Tensor<B, 2>,
    bits: Tensor<B, 2, Int>,
) -> Tensor<B, 2> {
    let n = coords.dims()[0];
    let alpha = coords.clone().slice([0..n, 0..1]);
    let mu = coords.slice([0..n, 1..2]);
    // 2^-21 of |mu| is two f32 ulps: enough for `mu + step` to differ from `mu`.
    let step = alpha.max_pair(mu.clone().abs() * 2f32.powi(-21) + f32::MIN_POSITIVE);
    signs(bits) * step + mu
}

/// The straight-through bits: a cell inside the matrix is 1 when its latent weight is at or
/// above `mu` (the midpoint of the two levels for `alpha >= 0`); cells outside stay 0.
///
/// # Shapes
/// - `latent`: `[n_blocks, 64]`, `coords`: `[n_blocks, 2]`
/// - returns `[n_blocks, 2]`
pub(crate) fn bits_from_latent<B: Backend>(
    latent: Tensor<B, 2>,
    coords: Tensor<B, 2>,
    layout: &BlockLayout,
) -> Tensor<B, 2, Int> {
    let n = coords.dims()[0];
    let device = latent.device();
    let mu = coords.slice([0..n, 1..2]);
    let bits = pack(latent.greater_equal(mu));
    // hi[63:32] first, as on the device.
    let inside = inside_words::<B, 2>(layout, |m| [(m >> HALF) as i32, m as i32], &device);
    match inside {
        Some(inside) => bits.bitwise_and(inside),
        None => bits,
    }
}
