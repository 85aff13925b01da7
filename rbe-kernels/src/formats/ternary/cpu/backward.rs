//! The backward of a ternary `y = x Wᵀ` given `G = dL/dy` (docs/math.md §10), never
//! forming `W` or `dW` for the whole matrix.
//!
//! With `w = alpha·t` and `dW = Gᵀx`: `dL/dx = G W` and `dL/dalpha_s = Σ dW·t` over the
//! block's cells inside the matrix. A whole-layer `W` and `dW` would be two dense f32
//! matrices (128 MiB for 4096²) on top of what training already holds, so `dW` is formed one
//! tile at a time (a run of block rows by a run of column blocks, 128 KiB, `gemm`) and
//! reduced on the spot into `dL/dalpha` and, when asked for, the per-cell signal; `dL/dx`
//! multiplies decoded panels of the same size (`gemm`), unpacked from the 2-bit codes by the
//! forward's [`Stripe`].
//!
//! Work is split over runs of column blocks: each task owns its columns of `dL/dx` and its
//! blocks' gradients, written in place into the layer's buffers, so nothing is shared,
//! nothing needs a reduction and the result does not depend on the number of threads.

use std::ops::Range;

use rayon::prelude::*;

use super::forward::{Stripe, cell_masks, check_seeds, ternary};
use crate::cpu::gemm::{View, ViewMut, matmul, parts, split};
use crate::cpu::lanes::{KEEP, LANES, SIGNS, lanes, lanes_mut};
use crate::formats::ternary::TERNARY_CELLS;
use crate::{BlockLayout, DecodeCache, Grads, KernelError};

/// Floats in one `dW` tile or decoded panel of the backward: 128 KiB, so that a tile, its
/// codes and a row of `x` stay in L2 while they are reduced.
const TILE_FLOATS: usize = 1 << 15;

/// Columns of a tile (rounded to whole blocks). Tiles span several block rows rather than
/// one block row by many columns: `dL/dx` accumulates `G·panel` over the block rows, and a
/// panel only a block row tall makes each `gemm` re-read and re-write `[batch, width]` of
/// `dL/dx` for a handful of multiply-adds per element.
const TILE_COLS: usize = 512;

/// The backward of [`super::forward`]: `dL/dx = G W` (when `want_grad_x`),
/// `(dL/dalpha, 0)` per seed and, when `want_signal`, `dW = Gᵀx` per seed and cell,
/// `[n_blocks, 64]`, cell `(i, j)` at `i·block_cols + j`, 0 for cells cropped by the matrix
/// edge and beyond the block.
///
/// `cache` is the layer's, shared with [`super::forward`]; like the forward, the backward
/// neither reads nor fills it (it decodes the codes a tile at a time, which keeps a
/// whole-layer `W` out of memory), and takes it so that callers hand every kernel of the
/// layer the same arguments.
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
    let _ = cache;
    check_seeds(layout, coords, bits)?;
    KernelError::check_len("x", x.len(), batch * layout.cols)?;
    KernelError::check_len("grad_y", grad_y.len(), batch * layout.rows)?;
    let (cols, bc, nj) = (layout.cols, layout.block_cols, layout.col_blocks());
    let n_blocks = layout.num_blocks();
    let job = Job {
        layout,
        coords,
        bits,
        x,
        g: grad_y,
        batch,
        want_grad_x,
        want_signal,
    };
    let mut grads = Grads {
        x: want_grad_x.then(|| vec![0.0; batch * cols]),
        coords: vec![0.0; 2 * n_blocks],
        signal: want_signal.then(|| vec![0.0; n_blocks * TERNARY_CELLS]),
    };
    let tasks: Vec<_> = split(nj, parts(nj, batch * layout.rows * bc)).collect();
    // The seed gradients and the signal (as large as a dense W) are written in place, each
    // task into its own blocks; only dL/dx, the size of x, goes through a per-task buffer.
    let coords_out = carve(&mut grads.coords, 2, &tasks);
    let signal_out = match grads.signal.as_deref_mut() {
        Some(signal) => carve(signal, TERNARY_CELLS, &tasks),
        None => tasks.iter().map(|_| Vec::new()).collect(),
    };
    let pieces: Vec<_> = tasks
        .par_iter()
        .zip(coords_out)
        .zip(signal_out)
        .map(|((blocks, coords), signal)| {
            column_blocks(&job, blocks.clone(), Out { coords, signal })
        })
        .collect();
    if pieces.iter().any(Result::is_err) {
        // Each task saw only its own seeds: report the first bad seed of the layer, as
        // `decode` does.
        for s in 0..n_blocks {
            cell_masks::<false>(bits, s)?;
        }
    }
    for (blocks, gx_piece) in tasks.iter().zip(pieces) {
        let gx_piece = gx_piece?;
        if let Some(gx) = grads.x.as_mut() {
            let c0 = blocks.start * bc;
            let width = (blocks.end * bc).min(cols) - c0;
            for (dst, src) in gx.chunks_exact_mut(cols).zip(gx_piece.chunks_exact(width)) {
                dst[c0..c0 + width].copy_from_slice(src);
            }
        }
    }
    Ok(grads)
}

/// `buf`, `[nI, nJ, per]`, cut along the tasks' runs of column blocks: per task, one slice
/// `[run, per]` per block row.
fn carve<'a>(buf: &'a mut [f32], per: usize, tasks: &[Range<usize>]) -> Vec<Vec<&'a mut [f32]>> {
    let mut out: Vec<Vec<&mut [f32]>> = tasks.iter().map(|_| Vec::new()).collect();
    let row_len = tasks.last().map_or(0, |t| t.end) * per;
    if row_len == 0 {
        return out;
    }
    for mut rest in buf.chunks_exact_mut(row_len) {
        for (dst, blocks) in out.iter_mut().zip(tasks) {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(blocks.len() * per);
            dst.push(head);
            rest = tail;
        }
    }
    out
}

/// The inputs of one backward pass.
struct Job<'a> {
    layout: &'a BlockLayout,
    coords: &'a [f32],
    bits: &'a [i32],
    x: &'a [f32],
    g: &'a [f32],
    batch: usize,
    want_grad_x: bool,
    want_signal: bool,
}

/// Where one task writes the gradients of its column blocks `J0..J1`: per block row, the
/// task's blocks of the layer's buffers.
struct Out<'a> {
    /// `(dL/dalpha, 0)`, `[nI][run, 2]`.
    coords: Vec<&'a mut [f32]>,
    /// `dW` per cell, `[nI][run, 64]`; empty when not asked for.
    signal: Vec<&'a mut [f32]>,
}

/// Every gradient that belongs to column blocks `blocks`, one tile (a run of block rows by
/// a run of column blocks) at a time: the seed gradients and the signal into `out`, and
/// `dL/dx[:, c0..c0 + width]` returned, `[batch, width]` (`c0 = J0·bc`; empty when not
/// asked for).
///
/// # Errors
/// As [`Stripe::load`].
fn column_blocks(job: &Job, blocks: Range<usize>, mut out: Out) -> Result<Vec<f32>, KernelError> {
    let &Job {
        layout,
        coords,
        bits,
        x,
        g,
        batch,
        want_grad_x,
        want_signal,
    } = job;
    let (rows, cols, br, bc, ni) = (
        layout.rows,
        layout.cols,
        layout.block_rows,
        layout.block_cols,
        layout.row_blocks(),
    );
    let c0 = blocks.start * bc;
    let width = (blocks.end * bc).min(cols) - c0;
    let mut gx = if want_grad_x {
        vec![0.0; batch * width]
    } else {
        Vec::new()
    };
    if batch == 0 {
        // dW = 0 and dL/dx is empty, but a bad code is still an error.
        for block_row in 0..ni {
            let s0 = block_row * layout.col_blocks();
            for s in s0 + blocks.start..s0 + blocks.end {
                cell_masks::<false>(bits, s)?;
            }
        }
        return Ok(gx);
    }
    // Tiles about TILE_COLS wide (whole blocks) and as many whole block rows tall as fill
    // TILE_FLOATS.
    let tile_blocks = (TILE_COLS / bc).max(1);
    let group = (TILE_FLOATS / (tile_blocks * bc * br)).max(1);
    let (gt, gv, xv) = (
        // lhs[o, n] = G[n, o].
        View::of(g, 1, rows),
        View::of(g, rows, 1),
        View::of(x, cols, 1),
    );

    let mut stripe = Stripe::default();
    let (mut tile, mut panel, mut col_alpha) = (Vec::new(), Vec::new(), Vec::new());
    let mut start = blocks.start;
    while start < blocks.end {
        let end = (start + tile_blocks).min(blocks.end);
        let col0 = start * bc;
        let w = (end * bc).min(cols) - col0;
        let stride = w.div_ceil(LANES) * LANES;
        let mut first = 0;
        while first < ni {
            let last = (first + group).min(ni);
            let (o0, o1) = (first * br, (last * br).min(rows));
            let nr = o1 - o0;

            // The tile of dW, [nr, stride]; columns past w stay 0.
            tile.clear();
            tile.resize(nr * stride, 0.0);
            // SAFETY: the tile is [nr, stride] with stride >= w; g is read at rows
            // o0..o1 <= rows, x at columns col0..col0 + w <= cols.
            unsafe {
                matmul(
                    nr,
                    w,
                    batch,
                    ViewMut::of(&mut tile, stride, 1),
                    false,
                    gt.at(o0),
                    xv.at(col0),
                );
            }
            if want_grad_x {
                panel.clear();
                panel.resize(nr * stride, 0.0);
            }

            for block_row in first..last {
                stripe.load::<false>(layout, coords, bits, block_row, start..end)?;
                let span = stripe.span;
                debug_assert!(span.col0 == col0 && span.width == w);
                let at = (span.row0 - o0) * stride;
                let tile = &tile[at..at + span.rows * stride];
                // Per column c: Σ_i dW[i, c]·t(i, c) (at most 8 terms, in f32).
                col_alpha.clear();
                col_alpha.resize(stride, 0.0);
                for (r, dw) in tile.chunks_exact(stride).enumerate() {
                    for (k, (d, a)) in lanes(dw).iter().zip(lanes_mut(&mut col_alpha)).enumerate() {
                        let (keep, sign) = stripe.bytes::<1>(k, r);
                        let (keep, sign) =
                            (&KEEP[usize::from(keep[0])], &SIGNS[usize::from(sign[0])]);
                        for l in 0..LANES {
                            a[l] += ternary(d[l], keep[l], sign[l]);
                        }
                    }
                }
                for (t, block) in (start..end).enumerate() {
                    let cells = t * bc..((t + 1) * bc).min(w);
                    let local = block - blocks.start;
                    // The block's up to 64 column sums in f64: the tests hold the f32
                    // result to the f64 reference.
                    let d_alpha: f64 = col_alpha[cells.clone()].iter().map(|&v| f64::from(v)).sum();
                    out.coords[block_row][2 * local] = d_alpha as f32;
                    if want_signal {
                        let dst =
                            &mut out.signal[block_row][local * TERNARY_CELLS..][..TERNARY_CELLS];
                        for (r, dw) in tile.chunks_exact(stride).enumerate() {
                            dst[r * bc..r * bc + cells.len()].copy_from_slice(&dw[cells.clone()]);
                        }
                    }
                }
                if want_grad_x {
                    stripe.decode_into(&mut panel[at..], stride);
                }
            }

            if want_grad_x {
                // SAFETY: this task alone owns gx ([batch, width]); columns
                // col0 - c0..col0 - c0 + w <= width; g is read at rows o0..o1; the panel is
                // [nr, stride].
                unsafe {
                    matmul(
                        batch,
                        w,
                        nr,
                        ViewMut::of(&mut gx, width, 1).at(col0 - c0),
                        true,
                        gv.at(o0),
                        View::of(&panel, stride, 1),
                    );
                }
            }
            first = last;
        }
        start = end;
    }
    Ok(gx)
}
