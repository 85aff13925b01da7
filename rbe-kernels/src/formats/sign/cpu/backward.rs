//! The backward of a sign-blueprint `y = x Wᵀ` given `G = dL/dy` (docs/math.md §9), never
//! forming `W` or `dW` for the whole matrix.
//!
//! With `w = mu + alpha·s` and `dW = Gᵀx`:
//!
//! - `dL/dx[n, c] = Σ_o G[n, o] w[o, c] = Σ_I (mu(c)·ΣG[n, I] + alpha(c)·v[n, I, c])` with
//!   `v[n, I, c] = Σ_i G[n, I br + i]·s(i, c)`, the forward's sign kernel transposed;
//! - `dL/dalpha_s = Σ dW·s` and `dL/dmu_s = Σ dW` over the block's cells inside the matrix.
//!   Summed over the block's rows first, these are column sums: per column
//!   `Σ_i dW[i, c] s(i, c) = Σ_n x[n, c]·v[n, I, c]` and `Σ_i dW[i, c] = Σ_n x[n, c]·ΣG[n, I]`,
//!   so at small batch `v` gives both gradients in one pass and `dW` is never needed.
//!
//! When the per-cell signal is asked for, or from [`LARGE_BATCH_BACKWARD`] rows up (where
//! `gemm` wins), `dW` is formed one tile at a time (a block row by a run of column blocks,
//! a few hundred KiB) and `dL/dx` multiplies decoded panels of the same size.
//!
//! Work is split over runs of column blocks: each task owns its columns of `dL/dx` and its
//! blocks' gradients, so nothing is shared and nothing needs a reduction.

use std::ops::Range;

use rayon::prelude::*;

use super::forward::{
    LANES, LARGE_BATCH_BACKWARD, Lane, SIGNS, Seeds, Stripe, check_seeds, flip, has_avx2, lanes,
    lanes_mut,
};
use crate::cpu::gemm::{View, ViewMut, matmul, parts, split};
use crate::formats::sign::SIGN_CELLS;
use crate::{BlockLayout, Grads, KernelError};

/// Floats in one `dW` tile or decoded panel of the backward: 128 KiB, so that a tile, the
/// signs and a row of `x` stay in L2 while they are reduced.
const TILE_FLOATS: usize = 1 << 15;

/// The backward of [`super::forward`]: `dL/dx = G W`, `(dL/dalpha, dL/dmu)` per seed
/// and, when `want_signal`, `dW = Gᵀx` per seed and cell, `[n_blocks, 64]`, cell `(i, j)` at
/// `i·block_cols + j`, 0 for cells cropped by the matrix edge and bits beyond the block.
///
/// # Shapes
/// - `coords`: `[n_blocks, 2]` `(alpha, mu)`; `bits`: `[n_blocks, 2]`
///   `(hi[63:32], hi[31:0])`
/// - `x`: `[batch, layout.cols]`; `grad_y`: `[batch, layout.rows]`
///
/// # Errors
/// Blocks of more than 64 cells and buffers of the wrong length.
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
) -> Result<Grads<Vec<f32>>, KernelError> {
    check_seeds(layout, coords, bits)?;
    KernelError::check_len("x", x.len(), batch * layout.cols)?;
    KernelError::check_len("grad_y", grad_y.len(), batch * layout.rows)?;
    let (cols, bc, ni, nj) = (
        layout.cols,
        layout.block_cols,
        layout.row_blocks(),
        layout.col_blocks(),
    );
    let n_blocks = layout.num_blocks();
    let mut grads = Grads {
        x: want_grad_x.then(|| vec![0.0; batch * cols]),
        coords: vec![0.0; 2 * n_blocks],
        signal: want_signal.then(|| vec![0.0; n_blocks * SIGN_CELLS]),
    };
    if batch == 0 {
        return Ok(grads);
    }
    let job = Job {
        layout,
        seeds: Seeds { coords, bits },
        x,
        g: grad_y,
        batch,
        want_grad_x,
        want_signal,
        avx2: has_avx2(),
    };
    let tasks: Vec<_> = split(nj, parts(nj, batch * layout.rows * bc)).collect();
    let pieces: Vec<_> = tasks
        .into_par_iter()
        .map(|blocks| (blocks.clone(), column_blocks(&job, blocks)))
        .collect();

    for (blocks, piece) in pieces {
        let c0 = blocks.start * bc;
        let width = (blocks.end * bc).min(cols) - c0;
        if let Some(gx) = grads.x.as_mut() {
            for (dst, src) in gx.chunks_exact_mut(cols).zip(piece.gx.chunks_exact(width)) {
                dst[c0..c0 + width].copy_from_slice(src);
            }
        }
        let run = blocks.len();
        for block_row in 0..ni {
            let (s0, local) = (block_row * nj + blocks.start, block_row * run);
            grads.coords[2 * s0..2 * (s0 + run)]
                .copy_from_slice(&piece.coords[2 * local..2 * (local + run)]);
            if let Some(signal) = grads.signal.as_mut() {
                signal[s0 * SIGN_CELLS..(s0 + run) * SIGN_CELLS]
                    .copy_from_slice(&piece.signal[local * SIGN_CELLS..(local + run) * SIGN_CELLS]);
            }
        }
    }
    Ok(grads)
}

/// The inputs of one backward pass.
struct Job<'a> {
    layout: &'a BlockLayout,
    seeds: Seeds<'a>,
    x: &'a [f32],
    g: &'a [f32],
    batch: usize,
    want_grad_x: bool,
    want_signal: bool,
    /// Whether the AVX2 + FMA kernels may run.
    avx2: bool,
}

/// What one task computes for its column blocks `J0..J1` (`run` of them, `width` matrix
/// columns from `c0 = J0·bc`).
struct Piece {
    /// `dL/dx[:, c0..c0 + width]`, `[batch, width]`; empty when not asked for.
    gx: Vec<f32>,
    /// `(dL/dalpha, dL/dmu)`, `[nI, run, 2]`.
    coords: Vec<f32>,
    /// `dW` per cell, `[nI, run, 64]`; empty when not asked for.
    signal: Vec<f32>,
}

/// Every gradient that belongs to column blocks `blocks`, one block row by one tile-sized
/// run of column blocks at a time.
fn column_blocks(job: &Job, blocks: Range<usize>) -> Piece {
    let &Job {
        layout,
        seeds,
        x,
        g,
        batch,
        want_grad_x,
        want_signal,
        avx2,
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
    let run = blocks.len();
    let mut piece = Piece {
        gx: if want_grad_x {
            vec![0.0; batch * width]
        } else {
            Vec::new()
        },
        coords: vec![0.0; ni * run * 2],
        signal: if want_signal {
            vec![0.0; ni * run * SIGN_CELLS]
        } else {
            Vec::new()
        },
    };
    let large = batch >= LARGE_BATCH_BACKWARD;
    // dW per cell is needed for the signal; from LARGE_BATCH_BACKWARD up it is also the fast way to
    // the seed gradients.
    let tiled = want_signal || large;
    // Small batch without the signal, blocks whole bytes wide: the AVX2 kernel reads the
    // seeds directly.
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
    let direct = avx2 && !tiled && bc.is_multiple_of(LANES);
    let tile_blocks = (TILE_FLOATS / (br * bc)).max(1);

    let mut stripe = Stripe::default();
    let (mut tile, mut panel, mut v, mut col_alpha, mut col_mu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut start = blocks.start;
    while start < blocks.end {
        let end = (start + tile_blocks).min(blocks.end);
        for block_row in 0..ni {
            #[cfg(target_arch = "x86_64")]
            if direct {
                let local = 2 * (block_row * run + start - blocks.start);
                // SAFETY: AVX2 and FMA were detected; the blocks are whole bytes wide.
                unsafe {
                    avx2::block_row_grads(
                        job,
                        block_row,
                        start..end,
                        c0,
                        &mut piece.gx,
                        &mut piece.coords[local..local + 2 * (end - start)],
                    );
                }
                continue;
            }
            stripe.load(layout, seeds.coords, seeds.bits, block_row, start..end);
            let (o0, nr, w) = (stripe.row0, stripe.rows, stripe.width);
            let stride = stripe.chunks * LANES;
            let (col0, sc0) = (stripe.col0, stripe.col0 - c0);
            // Per column c: Σ_i dW[i, c]·s(i, c) and Σ_i dW[i, c].
            col_alpha.clear();
            col_alpha.resize(stride, 0.0);
            col_mu.clear();
            col_mu.resize(stride, 0.0);

            if tiled {
                tile.clear();
                tile.resize(nr * stride, 0.0);
                if large {
                    // SAFETY: the tile is [nr, stride] with stride >= w; g is read at
                    // rows o0..o0 + nr < rows, x at columns col0..col0 + w <= cols.
                    unsafe {
                        matmul(
                            nr,
                            w,
                            batch,
                            ViewMut::of(&mut tile, stride, 1),
                            false,
                            View::of(g, 1, rows).at(o0),
                            View::of(x, cols, 1).at(col0),
                        );
                    }
                } else {
                    for n in 0..batch {
                        let xs = &x[n * cols + col0..][..w];
                        for (r, dw) in tile.chunks_exact_mut(stride).enumerate() {
                            let gv = g[n * rows + o0 + r];
                            for (d, &xv) in dw.iter_mut().zip(xs) {
                                *d += gv * xv;
                            }
                        }
                    }
                }
                for (r, dw) in tile.chunks_exact(stride).enumerate() {
                    let bytes = stripe.row_bytes(r);
                    for (((d, a), m), &b) in lanes(dw)
                        .iter()
                        .zip(lanes_mut(&mut col_alpha))
                        .zip(lanes_mut(&mut col_mu))
                        .zip(bytes)
                    {
                        let signs = &SIGNS[usize::from(b)];
                        for l in 0..LANES {
                            a[l] += flip(d[l], signs[l]);
                            m[l] += d[l];
                        }
                    }
                }
            }

            if large && want_grad_x {
                panel.clear();
                panel.resize(nr * stride, 0.0);
                stripe.decode_into(&mut panel, stride);
                // SAFETY: this task alone owns piece.gx ([batch, width]); columns
                // sc0..sc0 + w <= width; g is read at rows o0..o0 + nr.
                unsafe {
                    matmul(
                        batch,
                        w,
                        nr,
                        ViewMut::of(&mut piece.gx, width, 1).at(sc0),
                        true,
                        View::of(g, rows, 1).at(o0),
                        View::of(&panel, stride, 1),
                    );
                }
            } else if !large && (want_grad_x || !tiled) {
                v.clear();
                v.resize(stride, 0.0);
                for n in 0..batch {
                    let gn = &g[n * rows + o0..][..nr];
                    let g_sum: f32 = gn.iter().sum();
                    signed_col_sums(&stripe, gn, lanes_mut(&mut v));
                    if want_grad_x {
                        let dst = &mut piece.gx[n * width + sc0..][..w];
                        for (c, d) in dst.iter_mut().enumerate() {
                            *d += stripe.alpha[c] * v[c] + stripe.mu[c] * g_sum;
                        }
                    }
                    if !tiled {
                        let xs = &x[n * cols + col0..][..w];
                        for (c, &xv) in xs.iter().enumerate() {
                            col_alpha[c] += xv * v[c];
                            col_mu[c] += xv * g_sum;
                        }
                    }
                }
            }

            for (t, block) in (start..end).enumerate() {
                let cells = t * bc..((t + 1) * bc).min(w);
                let local = block_row * run + block - blocks.start;
                piece.coords[2 * local] = col_alpha[cells.clone()].iter().sum();
                piece.coords[2 * local + 1] = col_mu[cells.clone()].iter().sum();
                if want_signal {
                    let dst = &mut piece.signal[local * SIGN_CELLS..(local + 1) * SIGN_CELLS];
                    for (r, dw) in tile.chunks_exact(stride).enumerate() {
                        dst[r * bc..r * bc + cells.len()].copy_from_slice(&dw[cells.clone()]);
                    }
                }
            }
        }
        start = end;
    }
    piece
}

/// `v[c] = Σ_r g[r]·s(r, c)` over the stripe's rows, `v` `[chunks]` lanes, overwritten.
///
/// Rows outer, columns inner: every chunk accumulates independently, so the adds pipeline
/// instead of waiting on one chain per chunk.
#[inline(always)]
fn signed_col_sums(stripe: &Stripe, g: &[f32], v: &mut [Lane]) {
    v.iter_mut().for_each(|lane| *lane = [0.0; LANES]);
    for (r, &gr) in g.iter().enumerate() {
        for (lane, &b) in v.iter_mut().zip(stripe.row_bytes(r)) {
            let signs = &SIGNS[usize::from(b)];
            for l in 0..LANES {
                lane[l] += flip(gr, signs[l]);
            }
        }
    }
}

/// The small-batch backward for blocks whole bytes wide, on AVX2.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::Job;
    use crate::formats::sign::cpu::forward::avx2::{hsum, signs};
    use crate::formats::sign::cpu::forward::{LANES, sign_bits};

    /// Up to 8 floats from `src`, zero-filled.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn load(src: &[f32]) -> __m256 {
        if src.len() >= LANES {
            // SAFETY: 8 floats are in bounds.
            unsafe { _mm256_loadu_ps(src.as_ptr()) }
        } else {
            let mut lanes = [0.0; LANES];
            lanes[..src.len()].copy_from_slice(src);
            // SAFETY: a local array of 8 floats.
            unsafe { _mm256_loadu_ps(lanes.as_ptr()) }
        }
    }

    /// `dst += v` for the first `dst.len() <= 8` lanes.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn add_to(dst: &mut [f32], v: __m256) {
        if dst.len() >= LANES {
            let p = dst.as_mut_ptr();
            // SAFETY: 8 floats are in bounds.
            unsafe { _mm256_storeu_ps(p, _mm256_add_ps(v, _mm256_loadu_ps(p))) };
            return;
        }
        let mut lanes = [0.0; LANES];
        // SAFETY: a local array of 8 floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), _mm256_add_ps(v, load(dst))) };
        let n = dst.len().min(LANES);
        dst[..n].copy_from_slice(&lanes[..n]);
    }

    /// For block row `block_row`, column blocks `blocks`: `dL/dx` added into `gx`
    /// (`[batch, width]` from column `c0`, or empty when not asked for) and `(dL/dalpha,
    /// dL/dmu)` of each block written to `coords` (`[blocks.len(), 2]`).
    ///
    /// Per chunk of 8 columns and batch row `n`: `v = Σ_i G[n, i]·s(i, c)` from the sign
    /// bytes, then `dL/dx += alpha v + mu ΣG` and the block's sums `Σ x v`, `Σ x ΣG`
    /// (the module docs' column sums).
    ///
    /// # Safety
    /// AVX2 and FMA; `block_cols % 8 == 0` (so at most 8 block rows).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn block_row_grads(
        job: &Job,
        block_row: usize,
        blocks: Range<usize>,
        c0: usize,
        gx: &mut [f32],
        coords: &mut [f32],
    ) {
        let &Job {
            layout,
            seeds,
            x,
            g,
            batch,
            want_grad_x,
            ..
        } = job;
        let (rows, cols, br, bc, nj) = (
            layout.rows,
            layout.cols,
            layout.block_rows,
            layout.block_cols,
            layout.col_blocks(),
        );
        assert!(bc.is_multiple_of(LANES) && br <= LANES);
        let width = if want_grad_x { gx.len() / batch } else { 0 };
        let row0 = block_row * br;
        let nr = br.min(rows - row0);
        // G[n, row0 + i], zero past the block row, and its sum.
        let mut g_rows = vec![[0.0f32; LANES]; batch];
        let mut g_sums = vec![0.0f32; batch];
        for n in 0..batch {
            let gn = &g[n * rows + row0..][..nr];
            g_rows[n][..nr].copy_from_slice(gn);
            g_sums[n] = gn.iter().sum();
        }
        for (t, block) in blocks.enumerate() {
            let s = block_row * nj + block;
            let hi = sign_bits(seeds.bits, s);
            let alpha = _mm256_set1_ps(seeds.coords[2 * s]);
            let mu = _mm256_set1_ps(seeds.coords[2 * s + 1]);
            let (mut d_alpha, mut d_mu) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            for q in 0..bc / LANES {
                let c = block * bc + q * LANES;
                if c >= cols {
                    break;
                }
                let valid = (cols - c).min(LANES);
                let m: [__m256; LANES] =
                    std::array::from_fn(|r| signs((hi >> ((r * bc + q * LANES) % 64)) as u8));
                for n in 0..batch {
                    let gr = &g_rows[n];
                    // A pairwise sum: four short chains instead of one of eight adds.
                    let t: [__m256; LANES] =
                        std::array::from_fn(|r| _mm256_xor_ps(_mm256_set1_ps(gr[r]), m[r]));
                    let v = _mm256_add_ps(
                        _mm256_add_ps(_mm256_add_ps(t[0], t[1]), _mm256_add_ps(t[2], t[3])),
                        _mm256_add_ps(_mm256_add_ps(t[4], t[5]), _mm256_add_ps(t[6], t[7])),
                    );
                    let gs = _mm256_set1_ps(g_sums[n]);
                    if want_grad_x {
                        let dst = &mut gx[n * width + c - c0..][..valid];
                        add_to(dst, _mm256_fmadd_ps(alpha, v, _mm256_mul_ps(mu, gs)));
                    }
                    let xv = load(&x[n * cols + c..][..valid]);
                    d_alpha = _mm256_fmadd_ps(xv, v, d_alpha);
                    d_mu = _mm256_fmadd_ps(xv, gs, d_mu);
                }
            }
            coords[2 * t] = hsum(d_alpha);
            coords[2 * t + 1] = hsum(d_mu);
        }
    }
}
