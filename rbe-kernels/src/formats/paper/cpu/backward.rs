//! The backward of `y = x Wᵀ` given `G = dL/dy`, never forming `W` or `dW`
//! (docs/math.md §4).
//!
//! - `dL/dx`: `Q[n, K, i] = Σ_I G[n, I br + i] coef[I, K]`, then
//!   `dL/dx[n, J bc + j] = Σ_{cs, i} basis_cs(i, j) Q[n, 2J + cs, i]`, the forward's two
//!   products transposed.
//! - `dL/dcoef[I, K] = Σ_{i, n} G[n, I br + i] U[n, K, i]`: a product whose inner dimension
//!   is `(i, n)`, split across threads (split-K), each thread summing into its own partial.
//! - `dL/dr = ∂a/∂r da + ∂b/∂r db = A'(da cos − db sin)` and
//!   `dL/dθ = ∂a/∂θ da + ∂b/∂θ db = b da − a db`, with cos, sin of `θ + c`.

use rayon::prelude::*;

use super::forward::project;
use super::{Basis, Coefficients, basis, transitions};
use crate::cpu::gemm::{View, ViewMut, matmul, parts, split};
use crate::{BlockLayout, DecodeCache, Grads, KernelError};

/// The backward of [`super::forward`]: `dL/dx` when `want_grad_x`, `(dL/dr, dL/dθ)` per
/// seed and, with a threshold, the net transition counts `#{dW > t} - #{dW < -t}` per seed
/// and slot as the signal (`[n_blocks, 4]`). The coefficients come from `cache` when the
/// forward of the same seeds put them there.
///
/// # Shapes
/// - `coords`, `bits`: `[n_blocks, 2]` (see [`Coefficients::decode`])
/// - `x`: `[batch, layout.cols]`; `grad_y`: `[batch, layout.rows]`
#[allow(clippy::too_many_arguments)]
pub fn backward(
    layout: &BlockLayout,
    coords: &[f32],
    bits: &[i32],
    x: &[f32],
    grad_y: &[f32],
    batch: usize,
    want_grad_x: bool,
    threshold: Option<f32>,
    cache: &DecodeCache,
) -> Result<Grads<Vec<f32>>, KernelError> {
    KernelError::check_len("coords", coords.len(), 2 * layout.num_blocks())?;
    KernelError::check_len("x", x.len(), batch * layout.cols)?;
    KernelError::check_len("grad_y", grad_y.len(), batch * layout.rows)?;
    let coefficients = cache.get_or_decode(coords, bits, || Coefficients::decode(coords, bits))?;
    let basis = basis::basis(layout.block_rows, layout.block_cols);
    let grad_x = want_grad_x.then(|| grad_input(layout, &coefficients, &basis, grad_y, batch));
    let u = project(layout, &basis, x, batch);
    let d_coef = coefficient_grads(layout, &u, grad_y, batch);
    let coords = seed_grads(&coefficients, &d_coef);
    let transitions = threshold.map(|t| {
        let mut counts = vec![0.0; 4 * layout.num_blocks()];
        transitions::transition_counts_into(layout, x, grad_y, batch, t, &mut counts);
        counts
    });
    Ok(Grads {
        x: grad_x,
        coords,
        signal: transitions,
    })
}

/// `dL/dx = G W`, `[batch, cols]`.
fn grad_input(
    layout: &BlockLayout,
    coefficients: &Coefficients,
    basis: &Basis,
    g: &[f32],
    batch: usize,
) -> Vec<f32> {
    let (rows, cols) = (layout.rows, layout.cols);
    let (br, bc, ni, nj) = (
        layout.block_rows,
        layout.block_cols,
        layout.row_blocks(),
        layout.col_blocks(),
    );
    let k2 = 2 * nj;
    if batch == 0 {
        return Vec::new();
    }

    // Q[n, K, i], [batch, 2nJ, br]: per row n, Q[n] = coefᵀ [2nJ, nI] × G[n] [nI, br],
    // the last block row possibly cropped; tiles split K when the batch is small.
    let mut q = vec![0.0; batch * k2 * br];
    let qv = ViewMut::of(&mut q, br, 1);
    let (gv, abt) = (View::of(g, br, 1), View::of(coefficients.ab(), 1, k2));
    let full = rows / br;
    let chunks = parts(k2 * batch, ni * br).div_ceil(batch).min(k2);
    let tiles: Vec<_> = (0..batch)
        .flat_map(|n| split(k2, chunks).map(move |k| (n, k)))
        .collect();
    tiles.into_par_iter().for_each(|(n, ks)| {
        // SAFETY: tile (n, ks) writes Q[n, ks, :] only; coef is read at rows I < nI and g
        // at row n, columns < rows.
        unsafe {
            let dst = qv.at(n * k2 * br + ks.start * br);
            matmul(
                ks.len(),
                br,
                full,
                dst,
                false,
                abt.at(ks.start),
                gv.at(n * rows),
            );
            if full < ni {
                matmul(
                    ks.len(),
                    rows - full * br,
                    1,
                    dst,
                    true,
                    abt.at(ks.start + full * k2),
                    gv.at(n * rows + full * br),
                );
            }
        }
    });

    // dL/dx as [(n, J), j] = Q [(n, J), (cs, i)] × [C; S] [(cs, i), j], padded to nJ bc.
    let padded = nj * bc;
    let mut gx = vec![0.0; batch * padded];
    let gxv = ViewMut::of(&mut gx, bc, 1);
    let (qv, stacked) = (View::of(&q, 2 * br, 1), View::of(basis.stacked(), bc, 1));
    let r_all = batch * nj;
    let tasks: Vec<_> = split(r_all, parts(r_all, 2 * br * bc)).collect();
    tasks.into_par_iter().for_each(|r| {
        // SAFETY: rows r of gx ([batch nJ, bc]) belong to this task; q is read in bounds.
        unsafe {
            matmul(
                r.len(),
                bc,
                2 * br,
                gxv.at(r.start * bc),
                false,
                qv.at(r.start * 2 * br),
                stacked,
            );
        }
    });
    if padded == cols {
        return gx;
    }
    gx.chunks_exact(padded)
        .flat_map(|row| &row[..cols])
        .copied()
        .collect()
}

/// `dL/dcoef[I, K] = Σ_{i, n} G[n, I br + i] U[n, K, i]`, `[nI, 2nJ]`, split over `(i, n)`.
fn coefficient_grads(layout: &BlockLayout, u: &[f32], g: &[f32], batch: usize) -> Vec<f32> {
    let (rows, br, ni) = (layout.rows, layout.block_rows, layout.row_blocks());
    let k2 = 2 * layout.col_blocks();
    let inner = br * batch;
    let (gv, uv) = (View::of(g, br, 1), View::of(u, 1, br));
    let (full, rem) = (rows / br, rows % br);
    // Each part owns an [nI, 2nJ] partial: the only extra memory is one per thread.
    let partial = |range: std::ops::Range<usize>| {
        let mut out = vec![0.0; ni * k2];
        let ov = ViewMut::of(&mut out, k2, 1);
        let mut p = range.start;
        while p < range.end {
            // The flat inner index p = n br + i: per row n, G[n] ([nI, br], cropped last
            // block row) × U[n]ᵀ ([br, 2nJ]) over the part's in-block rows i0..i1.
            let (n, i0) = (p / br, p % br);
            let i1 = br.min(i0 + range.end - p);
            // SAFETY: out is this closure's own; g is read at row n, columns I br + i <
            // rows; u at U[n, :, i0..i1].
            unsafe {
                matmul(
                    full,
                    k2,
                    i1 - i0,
                    ov,
                    true,
                    gv.at(n * rows + i0),
                    uv.at(n * k2 * br + i0),
                );
                if rem > i0 {
                    matmul(
                        1,
                        k2,
                        rem.min(i1) - i0,
                        ov.at(full * k2),
                        true,
                        gv.at(n * rows + full * br + i0),
                        uv.at(n * k2 * br + i0),
                    );
                }
            }
            p += i1 - i0;
        }
        out
    };
    let ranges: Vec<_> = split(inner, parts(inner, ni * k2)).collect();
    if ranges.len() == 1 {
        return partial(0..inner);
    }
    ranges
        .into_par_iter()
        .map(partial)
        .reduce_with(|mut a, b| {
            a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
            a
        })
        .unwrap_or_else(|| vec![0.0; ni * k2])
}

/// `(dL/dr, dL/dθ)` per seed from `dL/d(a, b)`, `[n_blocks, 2]`.
fn seed_grads(coefficients: &Coefficients, d_coef: &[f32]) -> Vec<f32> {
    coefficients
        .ab()
        .chunks_exact(2)
        .zip(coefficients.ab_dr().chunks_exact(2))
        .zip(d_coef.chunks_exact(2))
        .flat_map(|((ab, dr), d)| [d[0] * dr[0] + d[1] * dr[1], d[0] * ab[1] - d[1] * ab[0]])
        .collect()
}
