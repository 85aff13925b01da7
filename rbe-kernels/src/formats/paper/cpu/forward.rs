//! The forward `y = x Wᵀ` as two small products, never forming `W` (docs/math.md §3).
//!
//! With `K = 2J + cs` enumerating (column block, cosine/sine):
//!
//! 1. projection: `U[n, K, i] = Σ_j basis_cs(i, j) x[n, J bc + j]`, one GEMM
//!    `[batch nJ, bc] × [bc, 2 br]` against the stacked basis (2·br·d_input multiply-adds
//!    per row of `x`);
//! 2. combination: `y[n, I br + i] = Σ_K coef[I, K] U[n, K, i]` (2·nI·nJ·br per row).
//!
//! `U` is stored `[batch, 2 nJ, br]`, the projection's natural output, which the per-row
//! products of the combination read contiguously; `y` is written in the caller's
//! `[batch, d_output]` layout directly: no transposing copy, no padded output. Only `x` is
//! copied, zero-padded to whole column blocks, when `d_input % bc != 0`.

use rayon::prelude::*;

use super::{Basis, Coefficients, basis};
use crate::cpu::gemm::{View, ViewMut, matmul, pad_cols, parts, split};
use crate::{BlockLayout, DecodeCache, KernelError};

/// `y = x Wᵀ` for the layer whose seeds are `(coords, bits)`; the decoded coefficients come
/// from (and go to) the layer's `cache`.
///
/// # Shapes
/// - `coords`: `[n_blocks, 2]` `(r, θ)`; `bits`: `[n_blocks, 2]` (see
///   [`Coefficients::decode`])
/// - `x`: `[batch, layout.cols]`, row-major
/// - `y`: `[batch, layout.rows]`, row-major, overwritten
pub fn forward(
    layout: &BlockLayout,
    coords: &[f32],
    bits: &[i32],
    x: &[f32],
    batch: usize,
    y: &mut [f32],
    cache: &DecodeCache,
) -> Result<(), KernelError> {
    KernelError::check_len("coords", coords.len(), 2 * layout.num_blocks())?;
    let coefficients = cache.get_or_decode(coords, bits, || Coefficients::decode(coords, bits))?;
    forward_with(layout, &coefficients, x, batch, y)
}

/// [`forward`] with coefficients already decoded.
///
/// # Shapes
/// - `coefficients`: `layout.num_blocks()` seeds
/// - `x`: `[batch, layout.cols]`; `y`: `[batch, layout.rows]`, overwritten
pub fn forward_with(
    layout: &BlockLayout,
    coefficients: &Coefficients,
    x: &[f32],
    batch: usize,
    y: &mut [f32],
) -> Result<(), KernelError> {
    KernelError::check_len("seeds", coefficients.len(), layout.num_blocks())?;
    KernelError::check_len("x", x.len(), batch * layout.cols)?;
    KernelError::check_len("y", y.len(), batch * layout.rows)?;
    if batch == 0 {
        return Ok(());
    }
    let basis = basis::basis(layout.block_rows, layout.block_cols);
    let u = project(layout, &basis, x, batch);
    combine(layout, coefficients.ab(), &u, batch, y);
    Ok(())
}

/// The projections `U[n, K, i]`, `[batch, 2 nJ, br]` (see the module docs).
pub(super) fn project(layout: &BlockLayout, basis: &Basis, x: &[f32], batch: usize) -> Vec<f32> {
    let (br, bc, nj) = (layout.block_rows, layout.block_cols, layout.col_blocks());
    // Viewed as `[batch nJ, bc]`, x needs whole column blocks.
    let xp = pad_cols(x, batch, layout.cols, nj * bc);
    let mut u = vec![0.0; batch * nj * 2 * br];
    // Row r = (n, J) of U holds (cs, i); rhs[j, (cs, i)] = basis_cs(i, j).
    let (xv, uv) = (View::of(&xp, bc, 1), ViewMut::of(&mut u, 2 * br, 1));
    let rhs = View::of(basis.stacked(), 1, bc);
    let rows = batch * nj;
    let tasks: Vec<_> = split(rows, parts(rows, 2 * br * bc)).collect();
    tasks.into_par_iter().for_each(|r| {
        // SAFETY: rows r of xp ([rows, bc]) and of u ([rows, 2 br]) are in bounds, and the
        // tasks' row ranges are disjoint.
        unsafe {
            matmul(
                r.len(),
                2 * br,
                bc,
                uv.at(r.start * 2 * br),
                false,
                xv.at(r.start * bc),
                rhs,
            );
        }
    });
    u
}

/// `y[n, I br + i] = Σ_K coef[I, K] U[n, K, i]`, written straight into `y`: one
/// `[nI, 2nJ] × [2nJ, br]` product per row of `x` (split over block rows when the batch
/// is smaller than the thread count).
///
/// Measured on 4096², 32×32 blocks, 2 threads: this beats one `[batch, 2nJ] × [2nJ, nI]`
/// product per in-block row `i` (which reads the coefficients `br` times instead of
/// `batch` times) at every batch up to 256 (6 ms against 17 ms there), because the latter
/// writes `y` with a column stride of `br`.
pub(super) fn combine(layout: &BlockLayout, ab: &[f32], u: &[f32], batch: usize, y: &mut [f32]) {
    let (rows, br, ni) = (layout.rows, layout.block_rows, layout.row_blocks());
    let k2 = 2 * layout.col_blocks();
    let (yv, uv, lhs) = (
        ViewMut::of(y, br, 1),
        View::of(u, br, 1),
        View::of(ab, k2, 1),
    );
    // Per row n: y[n] as [I, i] = coef [nI, 2nJ] × U[n] ([2nJ, br]); the last block
    // row may be cropped.
    let chunks = parts(ni * batch, br * k2).div_ceil(batch).min(ni);
    let full = rows / br;
    let tiles: Vec<_> = (0..batch)
        .flat_map(|n| split(ni, chunks).map(move |r| (n, r)))
        .collect();
    tiles.into_par_iter().for_each(|(n, blocks)| {
        // SAFETY: tile (n, blocks) writes rows I in `blocks` of y[n] only; reads stay
        // inside ab ([nI, 2nJ]) and u ([batch, 2nJ, br]).
        unsafe {
            let whole = blocks.start..blocks.end.min(full);
            matmul(
                whole.len(),
                br,
                k2,
                yv.at(n * rows + whole.start * br),
                false,
                lhs.at(whole.start * k2),
                uv.at(n * k2 * br),
            );
            if blocks.end > full && full < ni {
                matmul(
                    1,
                    rows - full * br,
                    k2,
                    yv.at(n * rows + full * br),
                    false,
                    lhs.at(full * k2),
                    uv.at(n * k2 * br),
                );
            }
        }
    });
}
