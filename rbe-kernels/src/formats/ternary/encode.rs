//! The least-squares ternary encoder (docs/math.md §10).

use super::reference::decode_checked;
use super::seed::{ALPHA_MAX, ALPHA_MIN, TERNARY_CELLS, TernaryParams, check_block, pack};
use crate::{BlockLayout, KernelError, Packed128};

/// How well an encoding reproduces its matrix, measured on the stored (f16-scaled) seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TernaryEncodeReport {
    /// `‖W − decode(seeds)‖_F`.
    pub frobenius_error: f64,
    /// `‖W − decode(seeds)‖_F / ‖W‖_F`; for an all-zero `W` the absolute error.
    pub relative_error: f64,
    /// Blocks whose fitted `alpha` lay below the smallest normal f16 and were raised to it.
    pub clamped_low: usize,
    /// Blocks whose fitted `alpha` lay above the largest f16 and were capped.
    pub clamped_high: usize,
}

/// The exact least-squares ternary fit of one block's values: `(alpha, levels)`.
///
/// For a fixed support of `k` non-zero cells the best levels are the signs and the best
/// `alpha` the mean of their `|w|`, which lowers the squared error by `(Σ |w|)² / k`; the
/// best support of each size is the `k` largest `|w|`. So sorting `|w|` and trying every
/// `k` is exact. Returns `alpha = 0` for an all-zero block.
pub fn fit_block(values: &[f64]) -> (f64, Vec<i8>) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].abs().total_cmp(&values[a].abs()));
    let (mut best, mut best_k, mut sum, mut best_sum) = (0.0, 0, 0.0, 0.0);
    for (k, &idx) in order.iter().enumerate() {
        sum += values[idx].abs();
        let gain = sum * sum / (k + 1) as f64;
        if gain > best {
            (best, best_k, best_sum) = (gain, k + 1, sum);
        }
    }
    let mut levels = vec![0i8; values.len()];
    if best_k == 0 {
        return (0.0, levels);
    }
    for &idx in &order[..best_k] {
        levels[idx] = if values[idx] < 0.0 { -1 } else { 1 };
    }
    (best_sum / best_k as f64, levels)
}

/// The nearest level of `w` for the scale `alpha`: `round(clamp(w / alpha, -1, 1))`, written
/// without the division so that `alpha = 0` gives 0; a value exactly halfway is 0.
pub fn nearest_level(w: f64, alpha: f64) -> i8 {
    let half = alpha / 2.0;
    if w > half {
        1
    } else if w < -half {
        -1
    } else {
        0
    }
}

/// Fits one ternary seed per block of a dense `[rows, cols]` row-major matrix: the exact
/// least-squares fit of each block ([`fit_block`]), then `alpha` rounded to f16 and clamped
/// into `[ALPHA_MIN, ALPHA_MAX]` (what training keeps it in), then every level re-chosen as
/// the nearest one for that stored `alpha`. Only the cells inside the matrix take part;
/// cropped cells and cells beyond the block are 0.
///
/// # Shapes
/// - `w`: `[layout.rows * layout.cols]`
/// - returns `[layout.num_blocks()]` seeds, block-row-major, and the error report.
///
/// # Errors
/// Blocks over 64 cells, a wrong `w` length, or a non-finite `w`
/// ([`KernelError::InvalidScale`] with the offending value).
pub fn encode_dense(
    w: &[f64],
    layout: &BlockLayout,
) -> Result<(Vec<Packed128>, TernaryEncodeReport), KernelError> {
    check_block(layout)?;
    KernelError::check_len("w", w.len(), layout.rows * layout.cols)?;
    if let Some(&bad) = w.iter().find(|v| !v.is_finite()) {
        return Err(KernelError::InvalidScale(bad as f32));
    }
    let (br, bc, nj) = (layout.block_rows, layout.block_cols, layout.col_blocks());
    let (mut clamped_low, mut clamped_high) = (0, 0);
    let mut seeds = Vec::with_capacity(layout.num_blocks());
    for s in 0..layout.num_blocks() {
        let (row0, col0) = ((s / nj) * br, (s % nj) * bc);
        let rows = br.min(layout.rows - row0);
        let cols = bc.min(layout.cols - col0);
        // (cell index, value) of every cell inside the matrix.
        let cells: Vec<(usize, f64)> = (0..rows)
            .flat_map(|i| (0..cols).map(move |j| (i, j)))
            .map(|(i, j)| (i * bc + j, w[(row0 + i) * layout.cols + col0 + j]))
            .collect();
        let values: Vec<f64> = cells.iter().map(|&(_, v)| v).collect();
        let (alpha, _) = fit_block(&values);
        let alpha32 = alpha as f32;
        if alpha32 < ALPHA_MIN {
            clamped_low += 1;
        } else if alpha32 > ALPHA_MAX {
            clamped_high += 1;
        }
        let stored = super::round_alpha(alpha32);
        let mut codes = [0u8; TERNARY_CELLS];
        for &(k, v) in &cells {
            codes[k] = match nearest_level(v, stored.into()) {
                1 => 1,
                -1 => 2,
                _ => 0,
            };
        }
        seeds.push(pack(&codes, stored)?);
    }
    let (frobenius_error, relative_error) = error_of(w, &seeds, layout)?;
    Ok((
        seeds,
        TernaryEncodeReport {
            frobenius_error,
            relative_error,
            clamped_low,
            clamped_high,
        },
    ))
}

/// `(‖W − decode‖_F, relative)` of stored seeds against `w`.
fn error_of(
    w: &[f64],
    seeds: &[Packed128],
    layout: &BlockLayout,
) -> Result<(f64, f64), KernelError> {
    let params = seeds
        .iter()
        .map(TernaryParams::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let decoded = decode_checked(&params, layout);
    let err = w
        .iter()
        .zip(&decoded)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt();
    let norm = w.iter().map(|a| a * a).sum::<f64>().sqrt();
    Ok((err, if norm > 0.0 { err / norm } else { err }))
}

/// The relative Frobenius errors `(sign, ternary)` of the best fits of each format to
/// `blocks`, each a block's values (at most 64): the sign blueprint's least-squares
/// two-level fit (`mu ± alpha`, [`SignFit::TwoMeans`](crate::formats::sign::SignFit)) and
/// the ternary least-squares fit with its f16 `alpha`. The numbers the ternary format was
/// chosen on (docs/math.md §10).
///
/// # Errors
/// A block over 64 values or a non-finite value.
pub fn compare_fits(blocks: &[Vec<f64>]) -> Result<(f64, f64), KernelError> {
    use crate::formats::sign::{self, SignFit};
    let (mut norm, mut sign_err, mut ternary_err) = (0.0, 0.0, 0.0);
    for block in blocks {
        let layout = BlockLayout::new(1, block.len(), 1, block.len())?;
        let (_, s) = sign::encode_dense(block, &layout, SignFit::TwoMeans)?;
        let (_, t) = encode_dense(block, &layout)?;
        norm += block.iter().map(|v| v * v).sum::<f64>();
        sign_err += s.frobenius_error * s.frobenius_error;
        ternary_err += t.frobenius_error * t.frobenius_error;
    }
    let norm = norm.sqrt().max(f64::MIN_POSITIVE);
    Ok((sign_err.sqrt() / norm, ternary_err.sqrt() / norm))
}
