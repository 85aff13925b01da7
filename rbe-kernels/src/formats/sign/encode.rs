//! The closed-form sign-blueprint encoder (docs/math.md §9).

use super::reference::decode_checked;
use super::seed::{SignBlueprint, SignParams, check_block, valid_mask};
use crate::{BlockLayout, KernelError, Packed128};

/// How [`encode_dense`] fits `mu`, `alpha` and the bits of one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignFit {
    /// `mu` = mean of the block, `alpha` = mean `|w - mu|`, bit = `w - mu >= 0`.
    ///
    /// One pass and no sorting. `alpha` is the least-squares scale for these bits and this
    /// `mu`, but `mu` is only jointly optimal when a block has as many set bits as clear
    /// ones; a lopsided block (say 48 cells at `+1` and 16 at `-1`) is not recovered
    /// exactly, because the mean then sits off the midpoint of the two levels.
    #[default]
    Moments,
    /// The least-squares optimum over all bit patterns: the best split of the block's sorted
    /// values into a low and a high group (a 1-D two-means, exact by trying every split),
    /// then `mu` and `alpha` put the two levels at the two group means. Recovers every sign
    /// blueprint exactly; costs a sort of at most 64 values per block.
    TwoMeans,
}

/// How well an encoding reproduces its matrix, measured on the stored (f32) seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignEncodeReport {
    /// `‖W − decode(seeds)‖_F`.
    pub frobenius_error: f64,
    /// `‖W − decode(seeds)‖_F / ‖W‖_F`; for an all-zero `W` the absolute error (which the
    /// encoder makes zero) so that the figure stays finite.
    pub relative_error: f64,
}

/// Fits one sign-blueprint seed per block of a dense `[rows, cols]` row-major matrix, in
/// closed form (see [`SignFit`]). Only the cells inside the matrix take part; the bits of
/// cropped cells, and bits beyond the block, are left zero.
///
/// # Shapes
/// - `w`: `[layout.rows * layout.cols]`
/// - returns `[layout.num_blocks()]` seeds, block-row-major, and the error report.
///
/// # Errors
/// Blocks over 64 cells, a wrong `w` length, or a fitted `alpha`/`mu` that is not finite in
/// f32 (a non-finite or f32-overflowing `w`).
pub fn encode_dense(
    w: &[f64],
    layout: &BlockLayout,
    fit: SignFit,
) -> Result<(Vec<Packed128>, SignEncodeReport), KernelError> {
    check_block(layout)?;
    KernelError::check_len("w", w.len(), layout.rows * layout.cols)?;
    let (br, bc) = (layout.block_rows, layout.block_cols);
    let seeds = (0..layout.num_blocks())
        .map(|s| {
            let mask = valid_mask(layout, s);
            let (row0, col0) = (
                (s / layout.col_blocks()) * br,
                (s % layout.col_blocks()) * bc,
            );
            // (bit index, value) of every cell inside the matrix.
            let cells: Vec<(usize, f64)> = (0..br * bc)
                .filter(|&k| mask >> k & 1 == 1)
                .map(|k| (k, w[(row0 + k / bc) * layout.cols + col0 + k % bc]))
                .collect();
            let (alpha, mu, threshold) = match fit {
                SignFit::Moments => moments(&cells),
                SignFit::TwoMeans => two_means(&cells),
            };
            let bits = cells
                .iter()
                .filter(|&&(_, v)| v >= threshold)
                .fold(0u64, |b, &(k, _)| b | 1 << k);
            Packed128::from_sign_parts(bits, alpha as f32, mu as f32)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let report = report(w, &seeds, layout);
    Ok((seeds, report))
}

/// `(alpha, mu, threshold)` by the moments: mean, mean absolute deviation, threshold at `mu`.
fn moments(cells: &[(usize, f64)]) -> (f64, f64, f64) {
    let n = cells.len() as f64;
    let mu = cells.iter().map(|&(_, v)| v).sum::<f64>() / n;
    let alpha = cells.iter().map(|&(_, v)| (v - mu).abs()).sum::<f64>() / n;
    (alpha, mu, mu)
}

/// `(alpha, mu, threshold)` of the least-squares two-level fit: the cells at or above
/// `threshold` form the high group.
fn two_means(cells: &[(usize, f64)]) -> (f64, f64, f64) {
    let mut v: Vec<f64> = cells.iter().map(|&(_, v)| v).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let total: f64 = v.iter().sum();
    // For a split into v[..t] and v[t..] the squared error is
    // Σv² − S_low²/t − S_high²/(n−t), so the best split maximises the last two terms.
    // Only splits between distinct values count, so that "v >= threshold" names the groups.
    let mut best: Option<(f64, usize, f64)> = None;
    let mut low = 0.0;
    for t in 1..n {
        low += v[t - 1];
        if v[t - 1] == v[t] {
            continue;
        }
        let high = total - low;
        let score = low * low / t as f64 + high * high / (n - t) as f64;
        if best.is_none_or(|(b, _, _)| score > b) {
            best = Some((score, t, low));
        }
    }
    match best {
        Some((_, t, low)) => {
            let (m_low, m_high) = (low / t as f64, (total - low) / (n - t) as f64);
            ((m_high - m_low) / 2.0, (m_high + m_low) / 2.0, v[t])
        }
        // One distinct value: a constant block, all bits set and no spread.
        None => {
            let mu = total / n as f64;
            (0.0, mu, mu)
        }
    }
}

/// The error of the stored seeds against `w`.
fn report(w: &[f64], seeds: &[Packed128], layout: &BlockLayout) -> SignEncodeReport {
    let params: Vec<SignParams> = seeds.iter().map(SignParams::from).collect();
    let decoded = decode_checked(&params, layout);
    let err = w
        .iter()
        .zip(&decoded)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt();
    let norm = w.iter().map(|a| a * a).sum::<f64>().sqrt();
    SignEncodeReport {
        frobenius_error: err,
        relative_error: if norm > 0.0 { err / norm } else { err },
    }
}
