//! The forward `y = x Wᵀ` of a sign-blueprint layer (docs/math.md §9), streaming the sign
//! bits instead of decoded weights.
//!
//! With `w = mu + alpha·s`, `s = ±1`, a block row `I` of the output is
//!
//! `y[n, I br + i] = Σ_c mu(c) x[n, c] + Σ_c (alpha(c) x[n, c])·s(i, c)`,
//!
//! where `alpha(c)`, `mu(c)` are those of the block holding column `c`. The first sum is
//! one dot product per block row and batch row; the second flips the sign bit of
//! `alpha(c) x[n, c]` per cell, eight columns at a time: the eight sign bits of a row of
//! cells index [`SIGNS`], a table of eight f32 sign masks, and an XOR applies them. At small
//! batch every weight costs one bit of memory traffic and an eighth of a vector XOR-add,
//! against 32 bits and a multiply-add for a dense f32 matrix.
//!
//! From [`LARGE_BATCH`] rows up the product is compute-bound, so block rows are decoded a
//! panel at a time into f32 (never the whole matrix) and multiplied with the strided `gemm`
//! helper.
//!
//! The pieces shared with the backward ([`Stripe`], [`SIGNS`], the seed checks) live here.

use std::ops::Range;

use rayon::prelude::*;

use crate::cpu::gemm::{View, ViewMut, matmul, pad_cols, parts, split};
use crate::formats::sign::check_block;
use crate::{BlockLayout, KernelError};

/// Columns per sign byte and per vector of the lane kernels.
pub(super) const LANES: usize = 8;

/// Eight f32 values, one chunk of eight columns.
pub(super) type Lane = [f32; LANES];

/// Batch rows from which the forward decodes f32 panels and calls `gemm`: below it, the
/// bit-streaming kernel, which moves 32 times less weight memory, is faster. Measured on
/// 4096² in 8×8 blocks, 2 threads: streaming wins at batch 16 (about 2.2× faster than the
/// panels), 32 (1.3×) and still slightly at 48.
pub(super) const LARGE_BATCH: usize = 48;

/// The same threshold for the backward, whose streaming pass is cheaper relative to its
/// `gemm` route (two products and a decode): streaming still measured 1.3× faster at 48.
pub(super) const LARGE_BATCH_BACKWARD: usize = 64;

/// f32 weights in one decoded panel: 1 MiB, a share of the L2 cache that `gemm`'s packing
/// reads several times.
pub(super) const PANEL_FLOATS: usize = 1 << 18;

/// `SIGNS[b][l]`: the f32 sign bit when bit `l` of `b` is clear (the cell's weight is
/// `mu - alpha`), else 0; XOR applies it.
pub(super) static SIGNS: [[u32; LANES]; 256] = sign_table();

const fn sign_table() -> [[u32; LANES]; 256] {
    let mut table = [[0; LANES]; 256];
    let mut b = 0;
    while b < 256 {
        let mut l = 0;
        while l < LANES {
            if (b >> l) & 1 == 0 {
                table[b][l] = 1 << 31;
            }
            l += 1;
        }
        b += 1;
    }
    table
}

/// `value · (±1)` for the sign mask of [`SIGNS`].
#[inline(always)]
pub(super) fn flip(value: f32, mask: u32) -> f32 {
    f32::from_bits(value.to_bits() ^ mask)
}

/// The checks every sign-blueprint kernel makes: blocks of at most 64 cells, and one
/// `(alpha, mu)` pair and one `(hi[63:32], hi[31:0])` pair per block.
pub(super) fn check_seeds(
    layout: &BlockLayout,
    coords: &[f32],
    bits: &[i32],
) -> Result<(), KernelError> {
    check_block(layout)?;
    KernelError::check_len("coords", coords.len(), 2 * layout.num_blocks())?;
    KernelError::check_len("bits", bits.len(), 2 * layout.num_blocks())
}

/// The 64 sign bits of seed `s`.
#[inline(always)]
pub(super) fn sign_bits(bits: &[i32], s: usize) -> u64 {
    (u64::from(bits[2 * s] as u32) << 32) | u64::from(bits[2 * s + 1] as u32)
}

/// One block row's seeds over a run of column blocks, unpacked for the lane kernels: the
/// sign bits as one bit row per matrix row, and `alpha`, `mu` per column.
///
/// Columns count from `col0`, the run's first column; chunk `k` is columns `8k..8k + 8`.
/// Built per block row and reused (the buffers keep their capacity).
#[derive(Default)]
pub(super) struct Stripe {
    /// First matrix row of the block row.
    pub row0: usize,
    /// Rows of the block row inside the matrix.
    pub rows: usize,
    /// First matrix column of the run.
    pub col0: usize,
    /// Columns of the run inside the matrix.
    pub width: usize,
    /// `width.div_ceil(8)`.
    pub chunks: usize,
    /// `[rows, chunks]`: bit `l` of byte `(r, k)` is the sign bit of cell
    /// `(row0 + r, col0 + 8k + l)`; bits past `width` are whatever the seeds hold.
    pub bytes: Vec<u8>,
    /// `[chunks * 8]`: `alpha` of each column's block, 0 past `width`.
    pub alpha: Vec<f32>,
    /// `[chunks * 8]`: `mu` of each column's block, 0 past `width`.
    pub mu: Vec<f32>,
}

impl Stripe {
    /// Unpacks block row `block_row`, column blocks `blocks`.
    pub fn load(
        &mut self,
        layout: &BlockLayout,
        coords: &[f32],
        bits: &[i32],
        block_row: usize,
        blocks: Range<usize>,
    ) {
        let (br, bc, nj) = (layout.block_rows, layout.block_cols, layout.col_blocks());
        self.row0 = block_row * br;
        self.rows = br.min(layout.rows - self.row0);
        self.col0 = blocks.start * bc;
        self.width = (blocks.end * bc).min(layout.cols) - self.col0;
        self.chunks = self.width.div_ceil(LANES);
        let (rows, chunks, width) = (self.rows, self.chunks, self.width);

        self.alpha.clear();
        self.alpha.resize(chunks * LANES, 0.0);
        self.mu.clear();
        self.mu.resize(chunks * LANES, 0.0);
        for (t, s) in (block_row * nj..)
            .skip(blocks.start)
            .take(blocks.len())
            .enumerate()
        {
            let cells = t * bc..((t + 1) * bc).min(width);
            self.alpha[cells.clone()].fill(coords[2 * s]);
            self.mu[cells].fill(coords[2 * s + 1]);
        }

        self.bytes.clear();
        self.bytes.resize(rows * chunks, 0);
        let seeds = block_row * nj + blocks.start..block_row * nj + blocks.end;
        if bc.is_multiple_of(LANES) {
            // A row of cells is whole bytes of `hi`: copy them.
            let per = bc / LANES;
            for (t, s) in seeds.enumerate() {
                let hi = sign_bits(bits, s);
                for r in 0..rows {
                    let row = hi >> (r * bc);
                    let dst = &mut self.bytes[r * chunks..(r + 1) * chunks];
                    for (q, byte) in dst.iter_mut().skip(t * per).take(per).enumerate() {
                        *byte = (row >> (LANES * q)) as u8;
                    }
                }
            }
        } else {
            // Concatenate the rows' `bc`-bit masks into a bit stream, a byte at a time.
            let row_mask = (1u64 << bc) - 1; // bc < 64 here
            for r in 0..rows {
                let dst = &mut self.bytes[r * chunks..(r + 1) * chunks];
                let (mut acc, mut held, mut k) = (0u128, 0, 0);
                for s in seeds.clone() {
                    let mask = (sign_bits(bits, s) >> (r * bc)) & row_mask;
                    acc |= u128::from(mask) << held;
                    held += bc;
                    while held >= LANES {
                        if k < chunks {
                            dst[k] = acc as u8;
                        }
                        (acc, held, k) = (acc >> LANES, held - LANES, k + 1);
                    }
                }
                if held > 0 && k < chunks {
                    dst[k] = acc as u8;
                }
            }
        }
    }

    /// The sign bytes of row `r`, `[chunks]`.
    #[inline(always)]
    pub fn row_bytes(&self, r: usize) -> &[u8] {
        &self.bytes[r * self.chunks..(r + 1) * self.chunks]
    }

    /// Writes the stripe's weights, `[rows, width]` with row stride `stride >= width`.
    pub fn decode_into(&self, out: &mut [f32], stride: usize) {
        let (alpha, mu) = (lanes(&self.alpha), lanes(&self.mu));
        for r in 0..self.rows {
            let row = &mut out[r * stride..r * stride + self.width];
            for (k, cells) in row.chunks_mut(LANES).enumerate() {
                let signs = &SIGNS[usize::from(self.bytes[r * self.chunks + k])];
                for (l, w) in cells.iter_mut().enumerate() {
                    *w = mu[k][l] + flip(alpha[k][l], signs[l]);
                }
            }
        }
    }
}

/// A slice of a multiple of 8 floats as lanes.
#[inline(always)]
pub(super) fn lanes(v: &[f32]) -> &[Lane] {
    let (lanes, rest) = v.as_chunks::<LANES>();
    debug_assert!(rest.is_empty());
    lanes
}

/// Mutable [`lanes`].
#[inline(always)]
pub(super) fn lanes_mut(v: &mut [f32]) -> &mut [Lane] {
    let (lanes, rest) = v.as_chunks_mut::<LANES>();
    debug_assert!(rest.is_empty());
    lanes
}

/// `y = x Wᵀ` for a sign-blueprint layer, `W` never formed.
///
/// # Shapes
/// - `coords`: `[n_blocks, 2]` `(alpha, mu)`; `bits`: `[n_blocks, 2]`
///   `(hi[63:32], hi[31:0])` as i32 bit patterns, cell `(i, j)` at bit `i·block_cols + j`
/// - `x`: `[batch, layout.cols]`, row-major
/// - `y`: `[batch, layout.rows]`, row-major, overwritten
///
/// # Errors
/// Blocks of more than 64 cells ([`check_block`]) and buffers of the wrong length.
pub fn forward(
    layout: &BlockLayout,
    coords: &[f32],
    bits: &[i32],
    x: &[f32],
    batch: usize,
    y: &mut [f32],
) -> Result<(), KernelError> {
    check_seeds(layout, coords, bits)?;
    KernelError::check_len("x", x.len(), batch * layout.cols)?;
    KernelError::check_len("y", y.len(), batch * layout.rows)?;
    if batch == 0 {
        return Ok(());
    }
    let seeds = Seeds { coords, bits };
    if batch >= LARGE_BATCH {
        forward_panels(layout, seeds, x, batch, y);
    } else {
        forward_streaming(layout, seeds, x, batch, y);
    }
    Ok(())
}

/// A layer's seeds as Burn stores them.
#[derive(Clone, Copy)]
pub(super) struct Seeds<'a> {
    pub coords: &'a [f32],
    pub bits: &'a [i32],
}

/// Small batch: each task owns a run of block rows and returns `y` for them,
/// `[batch, task rows]`, copied into place afterwards. Blocks whole bytes wide run the AVX2
/// kernel where the CPU has it; everything else the portable one.
fn forward_streaming(layout: &BlockLayout, seeds: Seeds, x: &[f32], batch: usize, y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if layout.block_cols.is_multiple_of(LANES) && has_avx2() {
        let x = pad_cols(
            x,
            batch,
            layout.cols,
            layout.col_blocks() * layout.block_cols,
        );
        return stream_in_tasks(layout, batch, y, |blocks| {
            // SAFETY: the CPU has AVX2 and FMA (checked at run time); the layout's blocks
            // are whole bytes wide and x is padded to whole blocks.
            unsafe { avx2::stream_rows(layout, seeds, &x, batch, blocks) }
        });
    }
    stream_in_tasks(layout, batch, y, |blocks| {
        stream_rows(layout, seeds, x, batch, blocks)
    });
}

/// The portable streaming forward whatever the CPU, for the tests.
#[cfg(test)]
pub(super) fn sign_forward_portable(
    layout: &BlockLayout,
    coords: &[f32],
    bits: &[i32],
    x: &[f32],
    batch: usize,
    y: &mut [f32],
) {
    let seeds = Seeds { coords, bits };
    stream_in_tasks(layout, batch, y, |blocks| {
        stream_rows(layout, seeds, x, batch, blocks)
    });
}

/// Runs `rows_of` on runs of block rows in parallel; each returns `y` for its rows,
/// `[batch, rows of the run]`, which is copied into place.
fn stream_in_tasks<F>(layout: &BlockLayout, batch: usize, y: &mut [f32], rows_of: F)
where
    F: Fn(Range<usize>) -> Vec<f32> + Sync,
{
    let (rows, br, ni) = (layout.rows, layout.block_rows, layout.row_blocks());
    let tasks: Vec<_> = split(ni, parts(ni, batch * br * layout.cols)).collect();
    let pieces: Vec<_> = tasks
        .into_par_iter()
        .map(|blocks| (blocks.clone(), rows_of(blocks)))
        .collect();
    for (blocks, piece) in pieces {
        let r0 = blocks.start * br;
        let n_rows = (blocks.end * br).min(rows) - r0;
        for (dst, src) in y.chunks_exact_mut(rows).zip(piece.chunks_exact(n_rows)) {
            dst[r0..r0 + n_rows].copy_from_slice(src);
        }
    }
}

/// Whether the AVX2 + FMA kernels may run.
pub(super) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `y[:, rows of blocks]`, `[batch, rows]`, by the portable bit-streaming kernel: any block
/// shape, via [`Stripe`].
fn stream_rows(
    layout: &BlockLayout,
    seeds: Seeds,
    x: &[f32],
    batch: usize,
    blocks: Range<usize>,
) -> Vec<f32> {
    let (rows, cols, br) = (layout.rows, layout.cols, layout.block_rows);
    let r0 = blocks.start * br;
    let n_rows = (blocks.end * br).min(rows) - r0;
    let mut out = vec![0.0; batch * n_rows];
    let mut stripe = Stripe::default();
    let mut ax = Vec::new();
    for block_row in blocks {
        stripe.load(
            layout,
            seeds.coords,
            seeds.bits,
            block_row,
            0..layout.col_blocks(),
        );
        ax.clear();
        ax.resize(stripe.chunks * LANES, 0.0);
        for n in 0..batch {
            let xn = &x[n * cols..(n + 1) * cols];
            // ax = alpha(c) x[n, c] (0 past the matrix); the mu term is one dot product.
            let mut mx = [0.0; LANES];
            for (((a, xs), al), m) in lanes_mut(&mut ax)
                .iter_mut()
                .zip(xn.chunks(LANES))
                .zip(lanes(&stripe.alpha))
                .zip(lanes(&stripe.mu))
            {
                for (l, &xv) in xs.iter().enumerate() {
                    a[l] = al[l] * xv;
                    mx[l] += m[l] * xv;
                }
            }
            let mx: f32 = mx.iter().sum();
            let dst = &mut out[n * n_rows + stripe.row0 - r0..][..stripe.rows];
            signed_row_sums(&stripe, lanes(&ax), dst);
            dst.iter_mut().for_each(|v| *v += mx);
        }
    }
    out
}

/// `out[r] = Σ_c ax[c]·s(r, c)` for every row of the stripe, eight rows at a time so that
/// each chunk of `ax` is loaded once per eight rows.
#[inline(always)]
fn signed_row_sums(stripe: &Stripe, ax: &[Lane], out: &mut [f32]) {
    let mut r = 0;
    while r < stripe.rows {
        let n = (stripe.rows - r).min(8);
        let dst = &mut out[r..r + n];
        match n {
            8 => row_group::<8>(stripe, r, ax, dst),
            7 => row_group::<7>(stripe, r, ax, dst),
            6 => row_group::<6>(stripe, r, ax, dst),
            5 => row_group::<5>(stripe, r, ax, dst),
            4 => row_group::<4>(stripe, r, ax, dst),
            3 => row_group::<3>(stripe, r, ax, dst),
            2 => row_group::<2>(stripe, r, ax, dst),
            _ => row_group::<1>(stripe, r, ax, dst),
        }
        r += n;
    }
}

/// [`signed_row_sums`] for rows `r0..r0 + R`, one vector accumulator per row.
#[inline(always)]
fn row_group<const R: usize>(stripe: &Stripe, r0: usize, ax: &[Lane], out: &mut [f32]) {
    let bytes: [&[u8]; R] = std::array::from_fn(|r| &stripe.row_bytes(r0 + r)[..ax.len()]);
    let mut acc = [[0.0f32; LANES]; R];
    for (k, a) in ax.iter().enumerate() {
        for r in 0..R {
            let signs = &SIGNS[usize::from(bytes[r][k])];
            for l in 0..LANES {
                acc[r][l] += flip(a[l], signs[l]);
            }
        }
    }
    for (o, a) in out.iter_mut().zip(&acc) {
        *o = a.iter().sum();
    }
}

/// Large batch: each task decodes panels of its block rows and multiplies them with
/// `gemm`, writing its own columns of `y`.
fn forward_panels(layout: &BlockLayout, seeds: Seeds, x: &[f32], batch: usize, y: &mut [f32]) {
    let (rows, cols, br, ni) = (
        layout.rows,
        layout.cols,
        layout.block_rows,
        layout.row_blocks(),
    );
    let stride = cols.div_ceil(LANES) * LANES;
    let panel_blocks = (PANEL_FLOATS / (br * stride)).max(1);
    let tasks: Vec<_> = split(ni, parts(ni, batch * br * cols)).collect();
    let (yv, xv) = (ViewMut::of(y, rows, 1), View::of(x, cols, 1));
    tasks.into_par_iter().for_each(|blocks| {
        let mut stripe = Stripe::default();
        let mut panel = Vec::new();
        let mut start = blocks.start;
        while start < blocks.end {
            let end = (start + panel_blocks).min(blocks.end);
            let (r0, r1) = (start * br, (end * br).min(rows));
            panel.clear();
            panel.resize((r1 - r0) * stride, 0.0);
            for block_row in start..end {
                stripe.load(
                    layout,
                    seeds.coords,
                    seeds.bits,
                    block_row,
                    0..layout.col_blocks(),
                );
                stripe.decode_into(&mut panel[(stripe.row0 - r0) * stride..], stride);
            }
            // SAFETY: this task alone writes y[:, r0..r1]; x is [batch, cols] and the
            // panel [r1 - r0, stride] with stride >= cols.
            unsafe {
                matmul(
                    batch,
                    r1 - r0,
                    cols,
                    yv.at(r0),
                    false,
                    xv,
                    View::of(&panel, 1, stride),
                );
            }
            start = end;
        }
    });
}

/// The AVX2 kernels for blocks whole bytes wide (`block_cols` a multiple of 8, so at most 8
/// block rows): the sign bytes are read straight from the seeds, nothing is unpacked.
#[cfg(target_arch = "x86_64")]
pub(super) mod avx2 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{LANES, SIGNS, Seeds, sign_bits};
    use crate::BlockLayout;

    /// The sign masks of byte `b` as a vector.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(in crate::formats::sign::cpu) fn signs(b: u8) -> __m256 {
        // SAFETY: SIGNS[b] is 8 u32, read unaligned.
        unsafe { _mm256_loadu_ps(SIGNS[usize::from(b)].as_ptr().cast()) }
    }

    /// The sum of the eight lanes.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(in crate::formats::sign::cpu) fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
    }

    /// `y[:, rows of blocks]`, `[batch, rows]`.
    ///
    /// # Safety
    /// AVX2 and FMA; `layout.block_cols % 8 == 0`; `x` is `[batch, col_blocks·block_cols]`.
    #[target_feature(enable = "avx2,fma")]
    pub(in crate::formats::sign::cpu) unsafe fn stream_rows(
        layout: &BlockLayout,
        seeds: Seeds,
        x: &[f32],
        batch: usize,
        blocks: Range<usize>,
    ) -> Vec<f32> {
        let (rows, br, nj) = (layout.rows, layout.block_rows, layout.col_blocks());
        let padded = nj * layout.block_cols;
        assert!(layout.block_cols.is_multiple_of(LANES) && x.len() == batch * padded);
        let r0 = blocks.start * br;
        let n_rows = (blocks.end * br).min(rows) - r0;
        let mut out = vec![0.0; batch * n_rows];
        let mut sums = [0.0; 8];
        for block_row in blocks {
            let row0 = block_row * br;
            let nr = br.min(rows - row0);
            for n in 0..batch {
                let xn = &x[n * padded..(n + 1) * padded];
                let s0 = block_row * nj;
                let sums = &mut sums;
                // 8 columns, the common case, with every shift a constant.
                match (br, layout.block_cols == LANES) {
                    (8, true) => row_sums::<8, LANES>(layout, seeds, s0, xn, sums),
                    (7, true) => row_sums::<7, LANES>(layout, seeds, s0, xn, sums),
                    (6, true) => row_sums::<6, LANES>(layout, seeds, s0, xn, sums),
                    (5, true) => row_sums::<5, LANES>(layout, seeds, s0, xn, sums),
                    (4, true) => row_sums::<4, LANES>(layout, seeds, s0, xn, sums),
                    (3, true) => row_sums::<3, LANES>(layout, seeds, s0, xn, sums),
                    (2, true) => row_sums::<2, LANES>(layout, seeds, s0, xn, sums),
                    (1, true) => row_sums::<1, LANES>(layout, seeds, s0, xn, sums),
                    (4, false) => row_sums::<4, 0>(layout, seeds, s0, xn, sums),
                    (3, false) => row_sums::<3, 0>(layout, seeds, s0, xn, sums),
                    (2, false) => row_sums::<2, 0>(layout, seeds, s0, xn, sums),
                    _ => row_sums::<1, 0>(layout, seeds, s0, xn, sums),
                }
                out[n * n_rows + row0 - r0..][..nr].copy_from_slice(&sums[..nr]);
            }
        }
        out
    }

    /// `out[r] = Σ_c (mu(c) + alpha(c)·s(r, c)) x[c]` for the `R` rows of the block row
    /// whose first seed is `s0`: one accumulator per row, each chunk of `x` loaded and
    /// scaled once per block for all rows. `BC` is `block_cols` when known at compile time,
    /// else 0.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn row_sums<const R: usize, const BC: usize>(
        layout: &BlockLayout,
        seeds: Seeds,
        s0: usize,
        x: &[f32],
        out: &mut [f32; 8],
    ) {
        let nj = layout.col_blocks();
        let bc = if BC == 0 { layout.block_cols } else { BC };
        let per = bc / LANES;
        let coords = &seeds.coords[2 * s0..2 * (s0 + nj)];
        let mut acc = [_mm256_setzero_ps(); R];
        let mut mx = _mm256_setzero_ps();
        for (j, am) in coords.chunks_exact(2).enumerate() {
            let hi = sign_bits(seeds.bits, s0 + j);
            let (alpha, mu) = (_mm256_set1_ps(am[0]), _mm256_set1_ps(am[1]));
            let xj = &x[j * bc..(j + 1) * bc];
            for q in 0..per {
                // SAFETY: xj holds bc = 8·per floats.
                let xv = unsafe { _mm256_loadu_ps(xj.as_ptr().add(q * LANES)) };
                let ax = _mm256_mul_ps(alpha, xv);
                mx = _mm256_fmadd_ps(mu, xv, mx);
                for (r, a) in acc.iter_mut().enumerate() {
                    let m = signs((hi >> (r * bc + q * LANES)) as u8);
                    *a = _mm256_add_ps(*a, _mm256_xor_ps(ax, m));
                }
            }
        }
        let mx = hsum(mx);
        for (o, a) in out.iter_mut().zip(acc) {
            *o = hsum(a) + mx;
        }
    }
}
