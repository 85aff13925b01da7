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

/// `1 << k` for `k` in `0..32` as i32 bit patterns (`1 << 31` is `i32::MIN`), `[1, 32]`.
fn powers<B: Backend>(device: &B::Device) -> Tensor<B, 2, Int> {
    let powers: Vec<i32> = (0..HALF).map(|k| (1u32 << k) as i32).collect();
    Tensor::from_data(TensorData::new(powers, [1, HALF]), device)
}

/// Whether each cell's bit is set.
///
/// # Shapes
/// - `bits`: `[n_blocks, 2]`
/// - returns `[n_blocks, 64]`, cell `k` (bit `k` of `hi`) in column `k`
pub(crate) fn unpack<B: Backend>(bits: Tensor<B, 2, Int>) -> Tensor<B, 2, Bool> {
    let [n, _] = bits.dims();
    let powers = powers::<B>(&bits.device()).repeat_dim(0, n);
    let half = |col: usize| {
        bits.clone()
            .slice([0..n, col..col + 1])
            .repeat_dim(1, HALF)
            .bitwise_and(powers.clone())
            .not_equal_elem(0)
    };
    // hi[31:0] holds cells 0..32, hi[63:32] cells 32..64.
    Tensor::cat(vec![half(1), half(0)], 1)
}

/// Inverse of [`unpack`].
///
/// # Shapes
/// - `cells`: `[n_blocks, 64]`
/// - returns `[n_blocks, 2]`
pub(crate) fn pack<B: Backend>(cells: Tensor<B, 2, Bool>) -> Tensor<B, 2, Int> {
    let [n, _] = cells.dims();
    let powers = powers::<B>(&cells.device()).repeat_dim(0, n);
    let cells = cells.int();
    // Distinct powers of two add without carries, so the sum is the bitwise or, and
    // `i32::MIN + x` for `x < 2^31` cannot overflow.
    let half = |cols: std::ops::Range<usize>| {
        (cells.clone().slice([0..n, cols]) * powers.clone()).sum_dim(1)
    };
    Tensor::cat(vec![half(HALF..SIGN_CELLS), half(0..HALF)], 1)
}

/// Which cells of each block lie inside the matrix (see
/// [`rbe_kernels::formats::sign::valid_mask`]), `[n_blocks, 64]`.
pub(crate) fn inside<B: Backend>(layout: &BlockLayout, device: &B::Device) -> Tensor<B, 2, Bool> {
    let n = layout.num_blocks();
    let mask: Vec<bool> = (0..n)
        .flat_map(|s| {
            let m = valid_mask(layout, s);
            (0..SIGN_CELLS).map(move |k| m >> k & 1 == 1)
        })
        .collect();
    Tensor::from_data(TensorData::new(mask, [n, SIGN_CELLS]), device)
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
    let mu = coords.slice([0..n, 1..2]).repeat_dim(1, SIGN_CELLS);
    let device = latent.device();
    pack(latent.greater_equal(mu).bool_and(inside(layout, &device)))
}
