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
//! against 32 bits and a multiply-add for a dense f32 matrix. For blocks eight columns
//! wide on CPUs with AVX-512, the sign bits are vector masks instead (module `avx512`).
//!
//! From [`LARGE_BATCH`] rows up the product is compute-bound, so block rows are decoded a
//! panel at a time into f32 (never the whole matrix) and multiplied with the strided `gemm`
//! helper.
//!
//! The pieces shared with the backward ([`Stripe`], the seed checks) live here; those
//! shared with the ternary format's kernels in [`crate::cpu::lanes`].

use std::ops::Range;

use crate::cpu::gemm::pad_cols;
pub(super) use crate::cpu::lanes::{
    LANES, Lane, SIGNS, flip, has_avx2, has_avx512, lanes, lanes_mut,
};
use crate::cpu::lanes::{RowGroups, Span, by_row_groups, forward_panels, stream_in_tasks};
use crate::formats::sign::check_block;
use crate::{BlockLayout, KernelError};

/// Batch rows from which the forward decodes f32 panels and calls `gemm`: below it, the
/// bit-streaming kernel, which moves 32 times less weight memory, is faster. Measured on
/// 4096² in 8×8 blocks, 2 threads: streaming wins at batch 16 (about 2.2× faster than the
/// panels), 32 (1.3×) and still slightly at 48.
pub(super) const LARGE_BATCH: usize = 48;

/// The same threshold for the backward, whose streaming pass is cheaper relative to its
/// `gemm` route (two products and a decode): streaming still measured 1.3× faster at 48.
pub(super) const LARGE_BATCH_BACKWARD: usize = 64;

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
    /// The run's sign masks, one per block.
    masks: Vec<u64>,
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
        let (bc, nj) = (layout.block_cols, layout.col_blocks());
        let span = Span::of(layout, block_row, &blocks);
        (self.row0, self.rows, self.col0, self.width, self.chunks) =
            (span.row0, span.rows, span.col0, span.width, span.chunks);
        let seeds = block_row * nj + blocks.start..block_row * nj + blocks.end;
        span.fill_columns(bc, seeds.clone().map(|s| coords[2 * s]), &mut self.alpha);
        span.fill_columns(bc, seeds.clone().map(|s| coords[2 * s + 1]), &mut self.mu);
        self.masks.clear();
        self.masks.extend(seeds.map(|s| sign_bits(bits, s)));
        span.unpack_rows(bc, &self.masks, (span.chunks, 1), &mut self.bytes);
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
    let route = if batch >= LARGE_BATCH {
        Route::Panels
    } else if layout.block_cols == LANES && has_avx512() {
        Route::Avx512
    } else {
        Route::Streaming { fast: has_avx2() }
    };
    forward_by(route, layout, coords, bits, x, batch, y)
}

/// How [`forward_by`] computes the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    /// Streaming the sign bits; `fast`: the AVX2 kernel where the blocks are whole bytes
    /// wide and the CPU has AVX2 and FMA, else the portable one.
    Streaming { fast: bool },
    /// Decoded panels and `gemm`.
    Panels,
    /// The AVX-512 kernel where the blocks are eight columns wide and the CPU has what
    /// [`has_avx512`] checks, else the portable streaming one.
    Avx512,
}

/// [`forward`] by the given route, whatever the batch. A route the layout or the CPU
/// cannot take falls back to the portable streaming kernel.
pub(super) fn forward_by(
    route: Route,
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
    match route {
        Route::Panels => forward_panels(
            layout,
            x,
            batch,
            y,
            |stripe: &mut Stripe, block_row, out, stride| {
                stripe.load(layout, coords, bits, block_row, 0..layout.col_blocks());
                stripe.decode_into(out, stride);
                Ok(())
            },
        ),
        #[cfg(target_arch = "x86_64")]
        Route::Avx512 if layout.block_cols == LANES && has_avx512() => {
            let x = pad_cols(
                x,
                batch,
                layout.cols,
                layout.col_blocks() * layout.block_cols,
            );
            stream_in_tasks(layout, batch, y, |blocks| {
                // SAFETY: the CPU has what `has_avx512` checks (checked at run time); the
                // blocks are 8 columns wide and x is padded to whole blocks.
                Ok(unsafe { avx512::stream_rows(layout, seeds, &x, batch, blocks) })
            })
        }
        #[cfg(target_arch = "x86_64")]
        Route::Streaming { fast: true }
            if layout.block_cols.is_multiple_of(LANES) && has_avx2() =>
        {
            let x = pad_cols(
                x,
                batch,
                layout.cols,
                layout.col_blocks() * layout.block_cols,
            );
            stream_in_tasks(layout, batch, y, |blocks| {
                // SAFETY: the CPU has AVX2 and FMA (checked at run time); the layout's
                // blocks are whole bytes wide and x is padded to whole blocks.
                Ok(unsafe { avx2::stream_rows(layout, seeds, &x, batch, blocks) })
            })
        }
        Route::Streaming { .. } | Route::Avx512 => stream_in_tasks(layout, batch, y, |blocks| {
            Ok(stream_rows(layout, seeds, x, batch, blocks))
        }),
    }
}

/// A layer's seeds as Burn stores them.
#[derive(Clone, Copy)]
pub(super) struct Seeds<'a> {
    pub coords: &'a [f32],
    pub bits: &'a [i32],
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
            let sums = SignedRowSums {
                stripe: &stripe,
                ax: lanes(&ax),
            };
            by_row_groups(&sums, stripe.rows, dst);
            dst.iter_mut().for_each(|v| *v += mx);
        }
    }
    out
}

/// `out[r] = Σ_c ax[c]·s(r, c)` for the rows of the stripe, a group of rows at a time so
/// that each chunk of `ax` is loaded once per group.
struct SignedRowSums<'a> {
    stripe: &'a Stripe,
    ax: &'a [Lane],
}

impl RowGroups for SignedRowSums<'_> {
    /// One vector accumulator per row.
    #[inline(always)]
    fn group<const R: usize>(&self, r0: usize, out: &mut [f32]) {
        let ax = self.ax;
        let bytes: [&[u8]; R] = std::array::from_fn(|r| &self.stripe.row_bytes(r0 + r)[..ax.len()]);
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

/// The kernel for blocks eight columns wide (so at most eight rows): a block's row `i` is
/// byte `i` of its sign bits, so two rows are 16 bits, the mask of a 16-lane vector holding
/// the block's eight columns twice. With `s = 2b - 1` for the bit `b`,
///
/// `Σ_c (mu + alpha·s) x = Σ_{b = 1} 2 alpha x + Σ_c (mu - alpha) x`:
///
/// a masked add of `2 alpha x` per row pair and block, and one multiply-add per block for
/// the second sum, which every row of the block row shares. A cell costs half a masked
/// add, with no table and no unpacking.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::avx2::hsum;
    use super::{LANES, Seeds};
    use crate::BlockLayout;

    /// `y[:, rows of blocks]`, `[batch, rows]`.
    ///
    /// # Safety
    /// AVX-512 F, VL and DQ, AVX2 and FMA; `layout.block_cols == 8`; `x` is
    /// `[batch, col_blocks·8]`, zero past `layout.cols` (so that the bits of cropped
    /// columns, whatever they hold, add nothing).
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
    pub(super) unsafe fn stream_rows(
        layout: &BlockLayout,
        seeds: Seeds,
        x: &[f32],
        batch: usize,
        blocks: Range<usize>,
    ) -> Vec<f32> {
        let (rows, br, nj) = (layout.rows, layout.block_rows, layout.col_blocks());
        let padded = nj * LANES;
        assert!(layout.block_cols == LANES && x.len() == batch * padded);
        let r0 = blocks.start * br;
        let n_rows = (blocks.end * br).min(rows) - r0;
        let mut out = vec![0.0; batch * n_rows];
        let mut sums = [0.0; 8];
        for block_row in blocks {
            let row0 = block_row * br;
            let nr = br.min(rows - row0);
            let s0 = block_row * nj;
            let coords = &seeds.coords[2 * s0..2 * (s0 + nj)];
            let bits = &seeds.bits[2 * s0..2 * (s0 + nj)];
            for n in 0..batch {
                let xn = &x[n * padded..(n + 1) * padded];
                let sums = &mut sums;
                match br.div_ceil(2) {
                    4 => row_sums::<4>(coords, bits, xn, sums),
                    3 => row_sums::<3>(coords, bits, xn, sums),
                    2 => row_sums::<2>(coords, bits, xn, sums),
                    _ => row_sums::<1>(coords, bits, xn, sums),
                }
                out[n * n_rows + row0 - r0..][..nr].copy_from_slice(&sums[..nr]);
            }
        }
        out
    }

    /// `out[r] = Σ_c (mu(c) + alpha(c)·s(r, c)) x[c]` for rows `0..2P` of a block row
    /// whose seeds are `coords`, `bits` (rows past the block sum whatever the bits beyond
    /// it hold, and are not read).
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
    #[inline]
    fn row_sums<const P: usize>(coords: &[f32], bits: &[i32], x: &[f32], out: &mut [f32; 8]) {
        // Even and odd blocks into separate sums: two dependency chains per row pair, which
        // a block row of one or two rows needs to keep the adds busy.
        let mut acc = [[_mm512_setzero_ps(); P]; 2];
        let mut base = [_mm256_setzero_ps(); 2];
        let (am, _) = coords.as_chunks::<2>();
        let (hi, _) = bits.as_chunks::<2>();
        let (xs, _) = x.as_chunks::<LANES>();
        let mut blocks = am.iter().zip(hi).zip(xs);
        while let Some(((am, hi), xs)) = blocks.next() {
            block(&mut acc[0], &mut base[0], am, hi, xs);
            let Some(((am, hi), xs)) = blocks.next() else {
                break;
            };
            block(&mut acc[1], &mut base[1], am, hi, xs);
        }
        let base = hsum(_mm256_add_ps(base[0], base[1]));
        for p in 0..P {
            let v = _mm512_add_ps(acc[0][p], acc[1][p]);
            out[2 * p] = hsum(_mm512_castps512_ps256(v)) + base;
            out[2 * p + 1] = hsum(_mm512_extractf32x8_ps::<1>(v)) + base;
        }
    }

    /// Adds one block's terms: `acc[p]` lanes `8q + l` gain `2 alpha x[l]` where the sign
    /// bit of cell `(2p + q, l)` is set; `base` gains `(mu - alpha) x`.
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
    #[inline]
    fn block<const P: usize>(
        acc: &mut [__m512; P],
        base: &mut __m256,
        am: &[f32; 2],
        hi: &[i32; 2],
        x: &[f32; LANES],
    ) {
        let [alpha, mu] = *am;
        // SAFETY: x holds 8 floats.
        let xv = unsafe { _mm256_loadu_ps(x.as_ptr()) };
        *base = _mm256_fmadd_ps(_mm256_set1_ps(mu - alpha), xv, *base);
        let ax2 = _mm512_broadcast_f32x8(_mm256_mul_ps(_mm256_set1_ps(2.0 * alpha), xv));
        // Cell bits 0..32 (rows 0..4) are the second word, 32..64 the first.
        let words = [hi[1] as u32, hi[0] as u32];
        for (p, a) in acc.iter_mut().enumerate() {
            let mask = (words[p / 2] >> (16 * (p % 2))) as u16;
            *a = _mm512_mask_add_ps(*a, mask, *a, ax2);
        }
    }
}
