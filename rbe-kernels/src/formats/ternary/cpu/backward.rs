//! The backward of a ternary `y = x Wᵀ` given `G = dL/dy` (docs/math.md §10), on the
//! decoded weight of the layer's cache: `dL/dx = G W` and `dW = Gᵀ x` are two `gemm`
//! products, then one pass over `dW` per block gives `dL/dalpha = Σ dW·t` and the per-cell
//! signal.

use rayon::prelude::*;

use super::forward::{Decoded, check_seeds, decode};
use crate::cpu::gemm::{View, ViewMut, matmul, parts, split};
use crate::formats::ternary::TERNARY_CELLS;
use crate::{BlockLayout, DecodeCache, Grads, KernelError};

/// The backward of [`super::forward`]: `dL/dx = G W` (when `want_grad_x`),
/// `(dL/dalpha, 0)` per seed and, when `want_signal`, `dW = Gᵀx` per seed and cell,
/// `[n_blocks, 64]`, cell `(i, j)` at `i·block_cols + j`, 0 for cells cropped by the matrix
/// edge and beyond the block.
///
/// # Shapes
/// - `coords`: `[n_blocks, 2]` `(alpha, 0)`; `bits`: `[n_blocks, 4]`
/// - `x`: `[batch, layout.cols]`; `grad_y`: `[batch, layout.rows]`
///
/// # Errors
/// As [`super::decode`], and buffers of the wrong length.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    layout: &BlockLayout,
    coords: &[f32],
    bits: &[i32],
    x: &[f32],
    grad_y: &[f32],
    batch: usize,
    want_grad_x: bool,
    want_signal: bool,
    cache: &DecodeCache,
) -> Result<Grads<Vec<f32>>, KernelError> {
    check_seeds(layout, coords, bits)?;
    KernelError::check_len("x", x.len(), batch * layout.cols)?;
    KernelError::check_len("grad_y", grad_y.len(), batch * layout.rows)?;
    let decoded = cache.get_or_decode(coords, bits, || decode(layout, coords, bits))?;
    let grad_x = want_grad_x.then(|| g_times_w(layout, &decoded.w, grad_y, batch));
    let dw = weight_grad(layout, x, grad_y, batch);
    let (grad_coords, signal) = reduce(layout, &decoded, &dw, want_signal);
    Ok(Grads {
        x: grad_x,
        coords: grad_coords,
        signal,
    })
}

/// `G W`, `[batch, cols]`, split over runs of columns.
fn g_times_w(layout: &BlockLayout, w: &[f32], g: &[f32], batch: usize) -> Vec<f32> {
    let (rows, cols) = (layout.rows, layout.cols);
    let mut out = vec![0.0; batch * cols];
    if batch == 0 {
        return out;
    }
    let (ov, gv, wv) = (
        ViewMut::of(&mut out, cols, 1),
        View::of(g, rows, 1),
        View::of(w, cols, 1),
    );
    let tasks: Vec<_> = split(cols, parts(cols, batch * rows)).collect();
    tasks.into_par_iter().for_each(|c| {
        // SAFETY: each task writes columns `c` of out ([batch, cols]) only; reads stay in g
        // ([batch, rows]) and columns `c` of W ([rows, cols]).
        unsafe {
            matmul(
                batch,
                c.len(),
                rows,
                ov.at(c.start),
                false,
                gv,
                wv.at(c.start),
            )
        };
    });
    out
}

/// `dW = Gᵀ x`, `[rows, cols]`, split over runs of rows.
fn weight_grad(layout: &BlockLayout, x: &[f32], g: &[f32], batch: usize) -> Vec<f32> {
    let (rows, cols) = (layout.rows, layout.cols);
    let mut dw = vec![0.0; rows * cols];
    let (dv, gt, xv) = (
        ViewMut::of(&mut dw, cols, 1),
        // lhs[o, n] = G[n, o].
        View::of(g, 1, rows),
        View::of(x, cols, 1),
    );
    let tasks: Vec<_> = split(rows, parts(rows, batch * cols)).collect();
    tasks.into_par_iter().for_each(|r| {
        // SAFETY: each task writes rows `r` of dW only; reads stay in g and x.
        unsafe {
            matmul(
                r.len(),
                cols,
                batch,
                dv.at(r.start * cols),
                false,
                gt.at(r.start),
                xv,
            );
        }
    });
    dw
}

/// Per seed `(Σ dW·t, 0)` and, when asked for, `dW` per cell.
fn reduce(
    layout: &BlockLayout,
    decoded: &Decoded,
    dw: &[f32],
    want_signal: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let n = layout.num_blocks();
    let (rows, cols) = (layout.rows, layout.cols);
    let (br, bc, nj) = (layout.block_rows, layout.block_cols, layout.col_blocks());
    let per_seed: Vec<(f32, Vec<f32>)> = (0..n)
        .into_par_iter()
        .map(|s| {
            let (row0, col0) = ((s / nj) * br, (s % nj) * bc);
            let mut cells = if want_signal {
                vec![0.0; TERNARY_CELLS]
            } else {
                Vec::new()
            };
            // Accumulated in f64: a block sums up to 64 products of similar size, and the
            // tests hold the f32 result to the f64 reference.
            let mut d_alpha = 0.0f64;
            for i in 0..br.min(rows - row0) {
                for j in 0..bc.min(cols - col0) {
                    let at = (row0 + i) * cols + col0 + j;
                    d_alpha += f64::from(dw[at]) * f64::from(decoded.levels[at]);
                    if want_signal {
                        cells[i * bc + j] = dw[at];
                    }
                }
            }
            (d_alpha as f32, cells)
        })
        .collect();
    let mut coords = vec![0.0; 2 * n];
    let mut signal = want_signal.then(|| Vec::with_capacity(TERNARY_CELLS * n));
    for (s, (d_alpha, cells)) in per_seed.into_iter().enumerate() {
        coords[2 * s] = d_alpha;
        if let Some(signal) = signal.as_mut() {
            signal.extend(cells);
        }
    }
    (coords, signal)
}
