//! The forward `y = x Wᵀ` of a ternary layer (docs/math.md §10), streaming the 2-bit codes
//! instead of decoded weights, and the decode of a whole layer into a dense f32 `W` (what
//! Burn's `decode` uses; the kernels here never form it).
//!
//! With `w = alpha·t`, `t ∈ {-1, 0, +1}`, a block row of the output is
//!
//! `y[n, I br + i] = Σ_c (alpha(c) x[n, c])·t(i, c)`,
//!
//! `alpha(c)` that of the block holding column `c`. Each code splits into two bits, "keep"
//! (`t ≠ 0`) and "sign" (`t ≠ -1`); eight cells of a row give a byte of each, which index
//! [`KEEP`] (AND masks that zero the dropped cells) and [`SIGNS`] (XOR masks that negate),
//! so a cell costs an AND, an XOR and an add, eight at a time, and never a multiply or a
//! decoded weight. At small batch every weight moves two bits of memory against 32 for a
//! dense f32 matrix.
//!
//! From [`LARGE_BATCH`] rows up the product is compute-bound, so block rows are decoded a
//! panel at a time into f32 (never the whole matrix) and multiplied with the strided `gemm`
//! helper, as the sign blueprint does.

use std::ops::Range;

use crate::cpu::gemm::pad_cols;
use crate::cpu::lanes::{
    KEEP, LANES, Lane, RowGroups, SIGNS, Span, by_row_groups, forward_panels, has_avx2, lanes,
    lanes_mut, stream_in_tasks,
};
use crate::formats::ternary::seed::{TERNARY_BIT_WORDS, level_of};
use crate::formats::ternary::{check_block, words_to_codes};
use crate::{BlockLayout, DecodeCache, KernelError};

/// Batch rows from which the forward decodes f32 panels and calls `gemm`; below it the
/// code-streaming kernel, which moves 16 times less weight memory, is faster. Measured on
/// 4096² in 8×8 blocks, 2 threads (AVX-512 kernel): streaming about 1.7× faster than the
/// panels at batch 16, even around 32, the panels 1.3× faster at 48.
pub(super) const LARGE_BATCH: usize = 40;

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

/// `y = x Wᵀ` for the layer whose seeds are `(coords, bits)`, `W` never formed.
///
/// `cache` is the layer's, shared with [`super::backward`]; the forward neither reads nor
/// fills it (streaming the codes is cheaper than reading a decoded `W`), and takes it so
/// that callers hand every kernel of the layer the same arguments.
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
    let _ = cache;
    let route = if batch >= LARGE_BATCH {
        Route::Panels
    } else if layout.block_cols == LANES && has_avx512() {
        Route::Avx512
    } else {
        Route::Streaming { fast: has_fast() }
    };
    forward_by(route, layout, coords, bits, x, batch, y)
}

/// How [`forward_by`] computes the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    /// Streaming the codes; `fast`: the AVX2 + BMI2 build of the kernel (the caller has
    /// checked [`has_fast`]), else the portable one.
    Streaming { fast: bool },
    /// Decoded panels and `gemm`.
    Panels,
    /// The AVX-512 code-streaming kernel for blocks eight columns wide (the caller has
    /// checked [`has_avx512`]).
    Avx512,
}

/// [`forward`] by the given route, whatever the batch.
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
    match route {
        Route::Panels => forward_panels(
            layout,
            x,
            batch,
            y,
            |stripe: &mut Stripe, r, out, stride| {
                stripe.load::<false>(layout, coords, bits, r, 0..layout.col_blocks())?;
                stripe.decode_into(out, stride);
                Ok(())
            },
        ),
        #[cfg(target_arch = "x86_64")]
        Route::Streaming { fast: true } => stream_in_tasks(layout, batch, y, |blocks| {
            // SAFETY: `fast` is only set where the CPU has AVX2, FMA and BMI2.
            unsafe { stream_rows_fast(layout, coords, bits, x, batch, blocks) }
        }),
        #[cfg(target_arch = "x86_64")]
        Route::Avx512 if layout.block_cols == LANES => {
            let x = pad_cols(x, batch, layout.cols, layout.col_blocks() * LANES);
            stream_in_tasks(layout, batch, y, |blocks| {
                // SAFETY: `Avx512` is only chosen where the CPU has what `has_avx512`
                // checks; the blocks are 8 columns wide and x is padded to whole blocks.
                unsafe { avx512::stream_rows(layout, coords, bits, &x, batch, blocks) }
            })
        }
        Route::Streaming { .. } | Route::Avx512 => stream_in_tasks(layout, batch, y, |blocks| {
            stream_rows::<false>(layout, coords, bits, x, batch, blocks)
        }),
    }
}

/// Whether the AVX2 + BMI2 build of the streaming kernel may run.
pub(super) fn has_fast() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_avx2() && std::arch::is_x86_feature_detected!("bmi2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the AVX-512 kernel may run (it also uses BMI2).
pub(super) fn has_avx512() -> bool {
    has_fast() && crate::cpu::lanes::has_avx512()
}

/// The even bits of `v` packed into the low 32 bits: bit `2l` goes to bit `l`. `FAST`: by
/// BMI2's `pext` (the caller runs with BMI2), else by shifts and masks.
#[inline(always)]
fn even_bits<const FAST: bool>(v: u64) -> u64 {
    const EVEN: u64 = 0x5555_5555_5555_5555;
    #[cfg(target_arch = "x86_64")]
    if FAST {
        // SAFETY: FAST is only set in code running with BMI2.
        return unsafe { std::arch::x86_64::_pext_u64(v, EVEN) };
    }
    let mut v = v & EVEN;
    v = (v | (v >> 1)) & 0x3333_3333_3333_3333;
    v = (v | (v >> 2)) & 0x0f0f_0f0f_0f0f_0f0f;
    v = (v | (v >> 4)) & 0x00ff_00ff_00ff_00ff;
    v = (v | (v >> 8)) & 0x0000_ffff_0000_ffff;
    (v | (v >> 16)) & 0xffff_ffff
}

/// The `(plus, minus)` masks of seed `s`, cell `k` at bit `k`: set where `t = +1`, and
/// where `t = -1`; and whether any of its codes, beyond the block too, is `11` (then the
/// masks mean nothing).
#[inline(always)]
fn raw_masks<const FAST: bool>(bits: &[i32], s: usize) -> ([u64; 2], bool) {
    let w = &bits[TERNARY_BIT_WORDS * s..TERNARY_BIT_WORDS * (s + 1)];
    let word = |i: usize| u64::from(w[i] as u32);
    let (lo, hi) = (word(0) | (word(1) << 32), word(2) | (word(3) << 32));
    let bad = ((lo & (lo >> 1)) | (hi & (hi >> 1))) & 0x5555_5555_5555_5555 != 0;
    let plus = even_bits::<FAST>(lo) | (even_bits::<FAST>(hi) << 32);
    let minus = even_bits::<FAST>(lo >> 1) | (even_bits::<FAST>(hi >> 1) << 32);
    ([plus, minus], bad)
}

/// [`raw_masks`] of a valid seed.
///
/// # Errors
/// [`KernelError::InvalidCode`] for a code `11` anywhere in the seed, beyond the block too,
/// as [`decode`] reports it.
#[inline(always)]
pub(super) fn cell_masks<const FAST: bool>(
    bits: &[i32],
    s: usize,
) -> Result<(u64, u64), KernelError> {
    let ([plus, minus], bad) = raw_masks::<FAST>(bits, s);
    if bad {
        let words: Vec<i64> = bits[TERNARY_BIT_WORDS * s..TERNARY_BIT_WORDS * (s + 1)]
            .iter()
            .map(|&b| i64::from(b))
            .collect();
        return Err(words_to_codes(s, &words).expect_err("a code 11 was seen"));
    }
    Ok((plus, minus))
}

/// One block row's seeds over a run of column blocks, unpacked for the lane kernels: per
/// chunk of eight columns and row, a keep byte and a sign byte, and `alpha` per column.
/// Built per block row and reused (the buffers keep their capacity).
#[derive(Default)]
pub(super) struct Stripe {
    /// Where the stripe lies in the matrix.
    pub(super) span: Span,
    /// `[chunks, rows]`, chunk-major so that a group of rows reads adjacent bytes: bit `l`
    /// of byte `(k, r)` is set where cell `(row0 + r, col0 + 8k + l)` is not 0.
    keep: Vec<u8>,
    /// `[chunks, rows]`: bit `l` is clear where the cell is -1.
    signs: Vec<u8>,
    /// `[chunks * 8]`: `alpha` of each column's block, 0 past the matrix.
    alpha: Vec<f32>,
    keep_masks: Vec<u64>,
    sign_masks: Vec<u64>,
}

impl Stripe {
    /// Unpacks block row `block_row`, column blocks `blocks`.
    ///
    /// # Errors
    /// As [`cell_masks`], for the first bad seed of the run.
    #[inline(always)]
    pub(super) fn load<const FAST: bool>(
        &mut self,
        layout: &BlockLayout,
        coords: &[f32],
        bits: &[i32],
        block_row: usize,
        blocks: Range<usize>,
    ) -> Result<(), KernelError> {
        let (bc, nj) = (layout.block_cols, layout.col_blocks());
        let span = Span::of(layout, block_row, &blocks);
        self.span = span;
        let seeds = block_row * nj + blocks.start..block_row * nj + blocks.end;
        span.fill_columns(bc, seeds.clone().map(|s| coords[2 * s]), &mut self.alpha);
        self.keep_masks.clear();
        self.sign_masks.clear();
        for s in seeds {
            let (plus, minus) = cell_masks::<FAST>(bits, s)?;
            self.keep_masks.push(plus | minus);
            self.sign_masks.push(!minus);
        }
        let strides = (1, span.rows);
        span.unpack_rows(bc, &self.keep_masks, strides, &mut self.keep);
        span.unpack_rows(bc, &self.sign_masks, strides, &mut self.signs);
        Ok(())
    }

    /// `(keep, sign)` bytes of chunk `k`, rows `r0..r0 + R`.
    #[inline(always)]
    pub(super) fn bytes<const R: usize>(&self, k: usize, r0: usize) -> (&[u8; R], &[u8; R]) {
        let at = k * self.span.rows + r0;
        let keep = self.keep[at..at + R].try_into().expect("R bytes");
        let signs = self.signs[at..at + R].try_into().expect("R bytes");
        (keep, signs)
    }

    /// Writes the stripe's weights, `[rows, cols]` with row stride `stride >= cols`.
    pub(super) fn decode_into(&self, out: &mut [f32], stride: usize) {
        let (rows, width) = (self.span.rows, self.span.width);
        for (k, alpha) in lanes(&self.alpha).iter().enumerate() {
            let cells = (width - k * LANES).min(LANES);
            for r in 0..rows {
                let at = k * rows + r;
                let (keep, sign) = (
                    &KEEP[usize::from(self.keep[at])],
                    &SIGNS[usize::from(self.signs[at])],
                );
                let dst = &mut out[r * stride + k * LANES..][..cells];
                for (l, w) in dst.iter_mut().enumerate() {
                    *w = ternary(alpha[l], keep[l], sign[l]);
                }
            }
        }
    }
}

/// `value · t` for the masks of [`KEEP`] and [`SIGNS`].
#[inline(always)]
pub(super) fn ternary(value: f32, keep: u32, sign: u32) -> f32 {
    f32::from_bits((value.to_bits() & keep) ^ sign)
}

/// [`stream_rows`] built for AVX2 + BMI2, so that the lane loops become vector code and
/// the code bits split with `pext`.
///
/// # Safety
/// The CPU has AVX2, FMA and BMI2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,bmi2")]
unsafe fn stream_rows_fast(
    layout: &BlockLayout,
    coords: &[f32],
    bits: &[i32],
    x: &[f32],
    batch: usize,
    blocks: Range<usize>,
) -> Result<Vec<f32>, KernelError> {
    stream_rows::<true>(layout, coords, bits, x, batch, blocks)
}

/// `y[:, rows of blocks]`, `[batch, rows]`, by the code-streaming kernel: any block shape.
///
/// # Errors
/// As [`Stripe::load`].
#[inline(always)]
fn stream_rows<const FAST: bool>(
    layout: &BlockLayout,
    coords: &[f32],
    bits: &[i32],
    x: &[f32],
    batch: usize,
    blocks: Range<usize>,
) -> Result<Vec<f32>, KernelError> {
    let (rows, cols, br) = (layout.rows, layout.cols, layout.block_rows);
    let r0 = blocks.start * br;
    let n_rows = (blocks.end * br).min(rows) - r0;
    let mut out = vec![0.0; batch * n_rows];
    let mut stripe = Stripe::default();
    let mut ax = Vec::new();
    for block_row in blocks {
        stripe.load::<FAST>(layout, coords, bits, block_row, 0..layout.col_blocks())?;
        let span = stripe.span;
        ax.clear();
        ax.resize(span.chunks * LANES, 0.0);
        for n in 0..batch {
            let xn = &x[n * cols..(n + 1) * cols];
            for ((a, xs), al) in lanes_mut(&mut ax)
                .iter_mut()
                .zip(xn.chunks(LANES))
                .zip(lanes(&stripe.alpha))
            {
                match <&Lane>::try_from(xs) {
                    // Whole chunks as one vector product; only the last may be partial.
                    Ok(xs) => (0..LANES).for_each(|l| a[l] = al[l] * xs[l]),
                    Err(_) => xs.iter().enumerate().for_each(|(l, &xv)| a[l] = al[l] * xv),
                }
            }
            let dst = &mut out[n * n_rows + span.row0 - r0..][..span.rows];
            let sums = TernaryRowSums {
                stripe: &stripe,
                ax: lanes(&ax),
            };
            by_row_groups(&sums, span.rows, dst);
        }
    }
    Ok(out)
}

/// `out[r] = Σ_c ax[c]·t(r, c)` for the rows of the stripe, a group of rows at a time so
/// that each chunk of `ax` is loaded once per group.
struct TernaryRowSums<'a> {
    stripe: &'a Stripe,
    ax: &'a [Lane],
}

impl RowGroups for TernaryRowSums<'_> {
    /// One vector accumulator per row.
    #[inline(always)]
    fn group<const R: usize>(&self, r0: usize, out: &mut [f32]) {
        let mut acc = [[0.0f32; LANES]; R];
        for (k, a) in self.ax.iter().enumerate() {
            let (keep, signs) = self.stripe.bytes::<R>(k, r0);
            for r in 0..R {
                let (keep, sign) = (&KEEP[usize::from(keep[r])], &SIGNS[usize::from(signs[r])]);
                for l in 0..LANES {
                    acc[r][l] += ternary(a[l], keep[l], sign[l]);
                }
            }
        }
        for (o, a) in out.iter_mut().zip(&acc) {
            *o = a.iter().sum();
        }
    }
}

/// The kernel for blocks eight columns wide (so at most eight rows): a block's row `i` is
/// byte `i` of its `plus` and `minus` masks, so two rows are 16 bits, the mask of a
/// 16-lane vector holding `alpha·x` of the block's columns twice. A cell then costs half a
/// masked add and half a masked subtract, with no table and no unpacking.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{LANES, cell_masks, raw_masks};
    use crate::{BlockLayout, KernelError};

    /// `y[:, rows of blocks]`, `[batch, rows]`.
    ///
    /// # Safety
    /// AVX-512 F, VL and DQ, AVX2, FMA and BMI2; `layout.block_cols == 8`; `x` is
    /// `[batch, col_blocks·8]`.
    ///
    /// # Errors
    /// As [`cell_masks`], for the first bad seed in block-row order.
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma,bmi2")]
    pub(super) unsafe fn stream_rows(
        layout: &BlockLayout,
        coords: &[f32],
        bits: &[i32],
        x: &[f32],
        batch: usize,
        blocks: Range<usize>,
    ) -> Result<Vec<f32>, KernelError> {
        let (rows, br, nj) = (layout.rows, layout.block_rows, layout.col_blocks());
        let padded = nj * LANES;
        assert!(layout.block_cols == LANES && x.len() == batch * padded);
        let r0 = blocks.start * br;
        let n_rows = (blocks.end * br).min(rows) - r0;
        let mut out = vec![0.0; batch * n_rows];
        // Per block of the block row: `[plus, minus]`, read as 16-bit vector masks.
        let mut masks = vec![[0u64; 2]; nj];
        let mut sums = [0.0; 8];
        for block_row in blocks {
            let row0 = block_row * br;
            let nr = br.min(rows - row0);
            let s0 = block_row * nj;
            let alpha = &coords[2 * s0..2 * (s0 + nj)];
            if batch == 1 {
                // Each mask is used once: split the codes where they are used, check them
                // after the block row.
                let mut bad = false;
                let fused = |j| {
                    let (m, b) = raw_masks::<true>(bits, s0 + j);
                    bad |= b;
                    m
                };
                block_row_sums(br, fused, alpha, x, &mut sums);
                if bad {
                    (s0..s0 + nj).try_for_each(|s| cell_masks::<true>(bits, s).map(|_| ()))?;
                }
                out[row0 - r0..][..nr].copy_from_slice(&sums[..nr]);
                continue;
            }
            for (j, m) in masks.iter_mut().enumerate() {
                let (plus, minus) = cell_masks::<true>(bits, s0 + j)?;
                *m = [plus, minus];
            }
            for n in 0..batch {
                let xn = &x[n * padded..(n + 1) * padded];
                block_row_sums(br, |j| masks[j], alpha, xn, &mut sums);
                out[n * n_rows + row0 - r0..][..nr].copy_from_slice(&sums[..nr]);
            }
        }
        Ok(out)
    }

    /// [`row_sums`] for a block row of `br` rows; `masks(j)` gives block `j`'s.
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma,bmi2")]
    #[inline]
    fn block_row_sums(
        br: usize,
        masks: impl FnMut(usize) -> [u64; 2],
        alpha: &[f32],
        x: &[f32],
        out: &mut [f32; 8],
    ) {
        match br.div_ceil(2) {
            4 => row_sums::<4>(masks, alpha, x, out),
            3 => row_sums::<3>(masks, alpha, x, out),
            2 => row_sums::<2>(masks, alpha, x, out),
            _ => row_sums::<1>(masks, alpha, x, out),
        }
    }

    /// `out[r] = Σ_c alpha(c) x[c] t(r, c)` for rows `0..2P` of a block row (rows past the
    /// block sum whatever the cells beyond it hold, and are not read).
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma,bmi2")]
    #[inline]
    fn row_sums<const P: usize>(
        mut masks: impl FnMut(usize) -> [u64; 2],
        alpha: &[f32],
        x: &[f32],
        out: &mut [f32; 8],
    ) {
        // Separate sums of the +1 and the -1 cells: two dependency chains per row pair.
        let (mut pos, mut neg) = ([_mm512_setzero_ps(); P], [_mm512_setzero_ps(); P]);
        for (j, (a, xs)) in alpha.chunks_exact(2).zip(x.chunks_exact(LANES)).enumerate() {
            let m = masks(j);
            // SAFETY: xs holds 8 floats.
            let xv = unsafe { _mm256_loadu_ps(xs.as_ptr()) };
            let ax = _mm512_broadcast_f32x8(_mm256_mul_ps(_mm256_set1_ps(a[0]), xv));
            for p in 0..P {
                let plus = (m[0] >> (16 * p)) as u16;
                let minus = (m[1] >> (16 * p)) as u16;
                pos[p] = _mm512_mask_add_ps(pos[p], plus, pos[p], ax);
                neg[p] = _mm512_mask_add_ps(neg[p], minus, neg[p], ax);
            }
        }
        for p in 0..P {
            let mut lanes = [0.0f32; 16];
            // SAFETY: lanes holds 16 floats.
            unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), _mm512_sub_ps(pos[p], neg[p])) };
            out[2 * p] = lanes[..LANES].iter().sum();
            out[2 * p + 1] = lanes[LANES..].iter().sum();
        }
    }
}
