//! The decode of ternary seeds into a dense f32 `W`, and the forward `y = x Wᵀ` on it
//! (docs/math.md §10).
//!
//! Unlike the sign blueprint's bit-streaming kernel, a ternary cell needs two bits and a
//! three-way select, so the forward decodes once per change of the seeds into the layer's
//! cache and then runs one strided `gemm` per task: the decode is paid once per training
//! step (the backward reuses it) and once per model for inference.

use rayon::prelude::*;

use crate::cpu::gemm::{View, ViewMut, matmul, parts, split};
use crate::formats::ternary::seed::{TERNARY_BIT_WORDS, level_of};
use crate::formats::ternary::{check_block, words_to_codes};
use crate::{BlockLayout, DecodeCache, KernelError};

/// A layer's decoded seeds: the dense weight and the level of every weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// `[rows, cols]`, row-major: `alpha * t`.
    pub w: Vec<f32>,
    /// `[rows, cols]`, row-major: `t`, the level (what `dL/dalpha` projects `dW` on).
    pub levels: Vec<i8>,
}

/// Checks the buffers of a layer's seeds.
pub(super) fn check_seeds(
    layout: &BlockLayout,
    coords: &[f32],
    bits: &[i32],
) -> Result<(), KernelError> {
    check_block(layout)?;
    KernelError::check_len("coords", coords.len(), 2 * layout.num_blocks())?;
    KernelError::check_len("bits", bits.len(), TERNARY_BIT_WORDS * layout.num_blocks())
}

/// Decodes the device form of a layer's seeds into [`Decoded`].
///
/// # Shapes
/// - `coords`: `[n_blocks, 2]` `(alpha, 0)`; `bits`: `[n_blocks, 4]`
///
/// # Errors
/// Blocks over 64 cells, buffers of the wrong length, or a code `11`
/// ([`KernelError::InvalidCode`]).
pub fn decode(layout: &BlockLayout, coords: &[f32], bits: &[i32]) -> Result<Decoded, KernelError> {
    check_seeds(layout, coords, bits)?;
    let (rows, cols) = (layout.rows, layout.cols);
    let (br, bc, nj) = (layout.block_rows, layout.block_cols, layout.col_blocks());
    let mut w = vec![0.0; rows * cols];
    let mut levels = vec![0i8; rows * cols];
    for s in 0..layout.num_blocks() {
        let words: Vec<i64> = bits[TERNARY_BIT_WORDS * s..TERNARY_BIT_WORDS * (s + 1)]
            .iter()
            .map(|&b| i64::from(b))
            .collect();
        let codes = words_to_codes(s, &words)?;
        let alpha = coords[2 * s];
        let (row0, col0) = ((s / nj) * br, (s % nj) * bc);
        for i in 0..br.min(rows - row0) {
            for j in 0..bc.min(cols - col0) {
                let t = level_of(codes[i * bc + j]);
                let at = (row0 + i) * cols + col0 + j;
                levels[at] = t;
                w[at] = alpha * f32::from(t);
            }
        }
    }
    Ok(Decoded { w, levels })
}

/// `y = x Wᵀ` for the layer whose seeds are `(coords, bits)`; the decoded weight comes from
/// (and goes to) the layer's `cache`.
///
/// # Shapes
/// - `coords`: `[n_blocks, 2]` `(alpha, 0)`; `bits`: `[n_blocks, 4]` (see [`decode`])
/// - `x`: `[batch, layout.cols]`, row-major
/// - `y`: `[batch, layout.rows]`, row-major, overwritten
///
/// # Errors
/// As [`decode`], and `x` or `y` of the wrong length.
pub fn forward(
    layout: &BlockLayout,
    coords: &[f32],
    bits: &[i32],
    x: &[f32],
    batch: usize,
    y: &mut [f32],
    cache: &DecodeCache,
) -> Result<(), KernelError> {
    check_seeds(layout, coords, bits)?;
    KernelError::check_len("x", x.len(), batch * layout.cols)?;
    KernelError::check_len("y", y.len(), batch * layout.rows)?;
    let decoded = cache.get_or_decode(coords, bits, || decode(layout, coords, bits))?;
    x_times_wt(layout, &decoded.w, x, batch, y);
    Ok(())
}

/// `y = x Wᵀ` on a decoded `W`, split over runs of output columns (rows of `W`), so that
/// every task reads all of `x` and its own rows of `W` once.
pub(super) fn x_times_wt(layout: &BlockLayout, w: &[f32], x: &[f32], batch: usize, y: &mut [f32]) {
    let (rows, cols) = (layout.rows, layout.cols);
    if batch == 0 {
        return;
    }
    let (yv, xv) = (ViewMut::of(y, rows, 1), View::of(x, cols, 1));
    // rhs[k, o] = W[o, k].
    let wt = View::of(w, 1, cols);
    let tasks: Vec<_> = split(rows, parts(rows, batch * cols)).collect();
    tasks.into_par_iter().for_each(|r| {
        // SAFETY: each task writes columns `r` of y ([batch, rows]) only and reads rows `r`
        // of W ([rows, cols]) and all of x ([batch, cols]), all in bounds.
        unsafe {
            matmul(
                batch,
                r.len(),
                cols,
                yv.at(r.start),
                false,
                xv,
                wt.at(r.start * cols),
            );
        }
    });
}
