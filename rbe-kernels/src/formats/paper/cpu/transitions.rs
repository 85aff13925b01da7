//! State transitions (docs/math.md §5): the net counts `#{dW > t} - #{dW < -t}` per seed
//! and 2-bit slot. Moving the bits by them is left to the caller.
//!
//! `dW = Gᵀ x` is needed cell by cell here, but never whole: each task forms one tile of a
//! block row, `[br, a few column blocks]` (`Gᵀ_I x_J`, at most [`TILE`] floats, so it stays
//! in cache), reduces it to slot counts at once and reuses the buffer for its next tile.

use rayon::prelude::*;

use crate::cpu::gemm::{View, ViewMut, matmul};
use crate::{BlockLayout, KernelError};

/// Floats in one task's `dW` tile.
const TILE: usize = 1 << 14;

/// Net transition counts per seed and slot, as floats.
///
/// # Shapes
/// - `x`: `[batch, layout.cols]`; `grad_y`: `[batch, layout.rows]`
/// - returns `[n_blocks, 4]`
pub fn transition_counts(
    layout: &BlockLayout,
    x: &[f32],
    grad_y: &[f32],
    batch: usize,
    threshold: f32,
) -> Result<Vec<f32>, KernelError> {
    KernelError::check_len("x", x.len(), batch * layout.cols)?;
    KernelError::check_len("grad_y", grad_y.len(), batch * layout.rows)?;
    let mut counts = vec![0.0; 4 * layout.num_blocks()];
    transition_counts_into(layout, x, grad_y, batch, threshold, &mut counts);
    Ok(counts)
}

/// [`transition_counts`] into `counts` (`[n_blocks, 4]`, overwritten), lengths checked.
pub(super) fn transition_counts_into(
    layout: &BlockLayout,
    x: &[f32],
    g: &[f32],
    batch: usize,
    threshold: f32,
    counts: &mut [f32],
) {
    let (rows, cols) = (layout.rows, layout.cols);
    let (br, bc, nj) = (layout.block_rows, layout.block_cols, layout.col_blocks());
    // Column blocks per tile.
    let per_tile = (TILE / (br * bc)).clamp(1, nj);
    let (gv, xv) = (View::of(g, 1, rows), View::of(x, cols, 1));
    counts
        .par_chunks_mut(4 * nj)
        .enumerate()
        .for_each(|(bi, counts_row)| {
            let valid_rows = br.min(rows - bi * br);
            counts_row
                .par_chunks_mut(4 * per_tile)
                .enumerate()
                .for_each_init(Vec::new, |tile, (chunk, out)| {
                    let first = chunk * per_tile;
                    let (c0, c1) = (first * bc, cols.min((first + per_tile) * bc));
                    let width = c1 - c0;
                    tile.resize(valid_rows * width, 0.0);
                    // SAFETY: tile is [valid_rows, width], this task's own; g is read at
                    // columns bi br + i < rows, x at columns c0..c1 <= cols.
                    unsafe {
                        matmul(
                            valid_rows,
                            width,
                            batch,
                            ViewMut::of(tile, width, 1),
                            false,
                            gv.at(bi * br),
                            xv.at(c0),
                        );
                    }
                    for (b, out) in out.chunks_exact_mut(4).enumerate() {
                        let start = b * bc;
                        let valid_cols = bc.min(width - start);
                        let mut slots = [0i32; 4];
                        for i in 0..valid_rows {
                            let row = &tile[i * width + start..][..valid_cols];
                            let lanes = signs_by_column_mod4(row, threshold);
                            // Slot (31 i + j) mod 4 = (3 i + j mod 4) mod 4.
                            for (q, lane) in lanes.into_iter().enumerate() {
                                slots[(3 * i + q) & 3] += lane;
                            }
                        }
                        for (o, s) in out.iter_mut().zip(slots) {
                            *o = s as f32;
                        }
                    }
                });
        });
}

/// `Σ_{j ≡ q mod 4} sign_t(row[j])` for `q = 0..4`, where `sign_t(v)` is `1` above `t`,
/// `-1` below `-t`, else 0. Four independent lanes, so the loop vectorises.
fn signs_by_column_mod4(row: &[f32], t: f32) -> [i32; 4] {
    let sign = |v: f32| i32::from(v > t) - i32::from(v < -t);
    let mut lanes = [0i32; 4];
    let mut quads = row.chunks_exact(4);
    for quad in &mut quads {
        for q in 0..4 {
            lanes[q] += sign(quad[q]);
        }
    }
    for (q, &v) in quads.remainder().iter().enumerate() {
        lanes[q] += sign(v);
    }
    lanes
}
