use super::{SeedParams, closed_form_weight, cordic_weight};
use crate::{BlockLayout, KernelError};

/// Decodes a seed grid into the dense `[rows, cols]` matrix (row-major), with the paper's
/// CORDIC loop per weight. Edge blocks are cropped.
///
/// # Shapes
/// - `seeds`: `[layout.num_blocks()]`, block-row-major.
/// - returns `[layout.rows * layout.cols]`.
pub fn decode_dense(seeds: &[SeedParams], layout: &BlockLayout) -> Result<Vec<f64>, KernelError> {
    decode_with(seeds, layout, cordic_weight)
}

pub(super) fn check_seeds(seeds: &[SeedParams], layout: &BlockLayout) -> Result<(), KernelError> {
    KernelError::check_len("seeds", seeds.len(), layout.num_blocks())
}

/// [`decode_dense`] through the closed form `A(r) cos(psi + theta + c)` instead of the
/// CORDIC loop; equal to it up to rounding, and faster.
///
/// # Shapes
/// - `seeds`: `[layout.num_blocks()]`, block-row-major.
/// - returns `[layout.rows * layout.cols]`.
pub fn decode_closed_form(
    seeds: &[SeedParams],
    layout: &BlockLayout,
) -> Result<Vec<f64>, KernelError> {
    decode_with(seeds, layout, closed_form_weight)
}

/// The per-weight formula `(seed, i, j, block_rows, block_cols) -> w`.
type WeightFn = fn(SeedParams, usize, usize, usize, usize) -> f64;

/// Evaluates `weight` at every position of the matrix, cropping edge blocks.
fn decode_with(
    seeds: &[SeedParams],
    layout: &BlockLayout,
    weight: WeightFn,
) -> Result<Vec<f64>, KernelError> {
    check_seeds(seeds, layout)?;
    let mut w = vec![0.0; layout.rows * layout.cols];
    for row in 0..layout.rows {
        for col in 0..layout.cols {
            let (seed, i, j) = layout.locate(row, col);
            w[row * layout.cols + col] =
                weight(seeds[seed], i, j, layout.block_rows, layout.block_cols);
        }
    }
    Ok(w)
}
