//! The two bit-training rules, as pure functions for an optimizer to drive
//! (docs/math.md §9). `alpha` and `mu` have exact gradients ([`super::backward`]) and are
//! trained like any other parameter; only the bits need a rule.

use super::seed::{SIGN_CELLS, SignBlueprint, SignParams, check_seeds, valid_mask};
use crate::{BlockLayout, KernelError, Packed128};

/// The latent weights that start straight-through training from `seeds`: each cell inside
/// the matrix holds its decoded weight, so [`latent_to_seeds`] gives the seeds back
/// (for `alpha != 0`). Cells outside the matrix hold 0 and are never read.
///
/// # Shapes
/// - `seeds`: `[layout.num_blocks()]`, block-row-major.
/// - returns `[layout.num_blocks()][64]`, cell `(i, j)` at index `i*block_cols + j`
///   (the layout of the signal of [`super::reference::backward`], one row per seed).
pub fn latent_from_seeds<S: Copy + Into<SignParams>>(
    seeds: &[S],
    layout: &BlockLayout,
) -> Result<Vec<[f64; SIGN_CELLS]>, KernelError> {
    let seeds = check_seeds(seeds, layout)?;
    Ok(seeds
        .iter()
        .enumerate()
        .map(|(s, p)| {
            let mask = valid_mask(layout, s);
            std::array::from_fn(|k| if mask >> k & 1 == 1 { p.weight(k) } else { 0.0 })
        })
        .collect())
}

/// Straight-through rule for one block: the bits are re-derived from a latent weight per
/// cell, `bit = latent >= mu` (for `alpha >= 0`; `latent <= mu` for a negative
/// `alpha`, so that the bit still picks the level nearer the latent weight), while `alpha`
/// and `mu` are passed through unchanged.
///
/// Why not re-encode the latent block: `alpha` and `mu` receive exact gradients, whereas the
/// latent weights follow the straight-through estimate `dL/dlatent := dL/dw`. Re-fitting
/// `alpha` and `mu` from the latent block would overwrite the exactly trained values with
/// ones derived from the approximation, and make them jump whenever a bit flips. Thresholding
/// at the trained `mu` keeps the two updates separate: a bit flips exactly when its latent
/// weight crosses the midpoint of the two levels, i.e. when the other level becomes nearer.
///
/// Bits outside `mask` (see [`super::valid_mask`]) are left zero.
///
/// # Errors
/// A non-finite `alpha` or `mu`.
pub fn latent_to_seed(
    latent: &[f64; SIGN_CELLS],
    mask: u64,
    alpha: f32,
    mu: f32,
) -> Result<Packed128, KernelError> {
    let mu64 = f64::from(mu);
    let bits = (0..SIGN_CELLS)
        .filter(|&k| mask >> k & 1 == 1)
        .filter(|&k| {
            if alpha >= 0.0 {
                latent[k] >= mu64
            } else {
                latent[k] <= mu64
            }
        })
        .fold(0u64, |b, k| b | 1 << k);
    Packed128::from_sign_parts(bits, alpha, mu)
}

/// [`latent_to_seed`] for every block, keeping each seed's `alpha` and `mu`.
///
/// # Shapes
/// - `latents`: `[layout.num_blocks()][64]`, cell `(i, j)` at index `i*block_cols + j`.
/// - `seeds`: `[layout.num_blocks()]`, block-row-major; returns the same shape.
pub fn latent_to_seeds(
    latents: &[[f64; SIGN_CELLS]],
    seeds: &[Packed128],
    layout: &BlockLayout,
) -> Result<Vec<Packed128>, KernelError> {
    check_seeds(seeds, layout)?;
    KernelError::check_len("latents", latents.len(), seeds.len())?;
    latents
        .iter()
        .zip(seeds)
        .enumerate()
        .map(|(s, (latent, seed))| {
            latent_to_seed(latent, valid_mask(layout, s), seed.alpha(), seed.mu())
        })
        .collect()
}

/// The hyper-parameters of the Bop flip rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BopConfig {
    /// Adaptivity `γ` in `[0, 1]`: the weight of the new signal in the moving average.
    pub gamma: f64,
    /// Threshold `τ >= 0`: a bit flips only when `|m| > τ`.
    pub tau: f64,
}

/// One Bop step (flips driven by a moving average of the cell signal) over every block.
///
/// Per cell inside the matrix: `m ← (1 − γ) m + γ g`; the bit flips when `|m| > τ` and
/// `sign(m) == sign(2 bit − 1)`. Descent moves a weight along `−g`, so a positive average
/// gradient on a cell at `+alpha` asks for the lower level, and a negative one on a cell at
/// `−alpha` for the upper. The `m` of a flipped cell is reset to 0, so that a bit must
/// gather fresh evidence before flipping back. A negative `alpha` swaps which bit is the
/// upper level, and the rule follows the level, not the bit.
///
/// `alpha` and `mu` are not touched. Returns the number of flipped bits.
///
/// # Shapes
/// - `seeds`: `[layout.num_blocks()]`, updated in place.
/// - `momentum`: `[layout.num_blocks()][64]`, updated in place; start from zeros.
/// - `signal`: `[layout.num_blocks()][64]`, e.g. the signal of
///   [`super::reference::backward`] in rows of 64.
pub fn bop_step(
    seeds: &mut [Packed128],
    momentum: &mut [[f64; SIGN_CELLS]],
    signal: &[[f64; SIGN_CELLS]],
    layout: &BlockLayout,
    config: BopConfig,
) -> Result<usize, KernelError> {
    check_seeds(seeds, layout)?;
    KernelError::check_len("momentum", momentum.len(), seeds.len())?;
    KernelError::check_len("signal", signal.len(), seeds.len())?;
    let mut flips = 0;
    for (s, seed) in seeds.iter_mut().enumerate() {
        let level = if seed.alpha() < 0.0 { -1.0 } else { 1.0 };
        flips += bop_block(
            &mut seed.hi,
            &mut momentum[s],
            &signal[s],
            valid_mask(layout, s),
            level,
            config,
        );
    }
    Ok(flips)
}

/// The rule of [`bop_step`] on one block's bits: cells outside `mask` are skipped; `level`
/// is `sign(alpha)` (`1.0` when bit 1 is the upper level). Returns the number of flips.
pub fn bop_block(
    bits: &mut u64,
    momentum: &mut [f64; SIGN_CELLS],
    signal: &[f64; SIGN_CELLS],
    mask: u64,
    level: f64,
    config: BopConfig,
) -> usize {
    let mut flips = 0;
    for k in (0..SIGN_CELLS).filter(|&k| mask >> k & 1 == 1) {
        let m = &mut momentum[k];
        *m = (1.0 - config.gamma) * *m + config.gamma * signal[k];
        let up = *bits >> k & 1 == 1;
        let cell_sign = if up { level } else { -level };
        if m.abs() > config.tau && m.signum() == cell_sign {
            *bits ^= 1 << k;
            *m = 0.0;
            flips += 1;
        }
    }
    flips
}
