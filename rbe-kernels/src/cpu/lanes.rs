//! What the bit-streaming kernels of the sign and ternary formats share: chunks of eight
//! columns ("lanes"), the tables that turn a byte of cell bits into eight f32 masks, the
//! unpacking of per-block cell masks into bytes of eight columns, and the two parallel
//! drivers of a forward `y = x Wᵀ` (streaming tasks over block rows at small batch, decoded
//! panels fed to `gemm` at large batch).

use std::ops::Range;

use rayon::prelude::*;

use super::gemm::{View, ViewMut, matmul, parts, split};
use crate::{BlockLayout, KernelError};

/// Columns per byte of cell bits and per vector of the lane kernels.
pub(crate) const LANES: usize = 8;

/// Eight f32 values, one chunk of eight columns.
pub(crate) type Lane = [f32; LANES];

/// f32 weights in one decoded panel: 1 MiB, a share of the L2 cache that `gemm`'s packing
/// reads several times.
pub(crate) const PANEL_FLOATS: usize = 1 << 18;

/// `SIGNS[b][l]`: the f32 sign bit when bit `l` of `b` is clear, else 0; XOR applies it.
pub(crate) static SIGNS: [[u32; LANES]; 256] = mask_table(0, 1 << 31);

/// `KEEP[b][l]`: all ones when bit `l` of `b` is set, else 0; AND applies it.
pub(crate) static KEEP: [[u32; LANES]; 256] = mask_table(u32::MAX, 0);

/// The table whose entry `[b][l]` is `set` when bit `l` of `b` is set, else `clear`.
const fn mask_table(set: u32, clear: u32) -> [[u32; LANES]; 256] {
    let mut table = [[0; LANES]; 256];
    let mut b = 0;
    while b < 256 {
        let mut l = 0;
        while l < LANES {
            table[b][l] = if (b >> l) & 1 == 1 { set } else { clear };
            l += 1;
        }
        b += 1;
    }
    table
}

/// `value · (±1)` for the sign mask of [`SIGNS`].
#[inline(always)]
pub(crate) fn flip(value: f32, mask: u32) -> f32 {
    f32::from_bits(value.to_bits() ^ mask)
}

/// A slice of a multiple of 8 floats as lanes.
#[inline(always)]
pub(crate) fn lanes(v: &[f32]) -> &[Lane] {
    let (lanes, rest) = v.as_chunks::<LANES>();
    debug_assert!(rest.is_empty());
    lanes
}

/// Mutable [`lanes`].
#[inline(always)]
pub(crate) fn lanes_mut(v: &mut [f32]) -> &mut [Lane] {
    let (lanes, rest) = v.as_chunks_mut::<LANES>();
    debug_assert!(rest.is_empty());
    lanes
}

/// Whether the AVX2 + FMA kernels may run.
pub(crate) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the AVX-512 kernels may run: AVX-512 F, VL and DQ besides AVX2 and FMA.
pub(crate) fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_avx2()
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512dq")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Where one block row's stripe over a run of column blocks lies in the matrix.
#[derive(Default, Clone, Copy)]
pub(crate) struct Span {
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
}

impl Span {
    /// Block row `block_row`, column blocks `blocks`.
    pub fn of(layout: &BlockLayout, block_row: usize, blocks: &Range<usize>) -> Self {
        let (br, bc) = (layout.block_rows, layout.block_cols);
        let row0 = block_row * br;
        let col0 = blocks.start * bc;
        let width = (blocks.end * bc).min(layout.cols) - col0;
        Self {
            row0,
            rows: br.min(layout.rows - row0),
            col0,
            width,
            chunks: width.div_ceil(LANES),
        }
    }

    /// `values` (one per block of the run, in order) spread over the run's columns,
    /// `[chunks * 8]`, 0 past `width`, into `out` (which keeps its capacity).
    pub fn fill_columns(&self, bc: usize, values: impl Iterator<Item = f32>, out: &mut Vec<f32>) {
        out.clear();
        out.resize(self.chunks * LANES, 0.0);
        for (t, v) in values.enumerate() {
            out[t * bc..((t + 1) * bc).min(self.width)].fill(v);
        }
    }

    /// Unpacks the run's per-block cell masks (`masks[t]` for its `t`-th block, cell
    /// `(i, j)` at bit `i·bc + j`) into bytes of eight columns: bit `l` of byte `(r, k)`,
    /// stored at `bytes[r·rs + k·ks]`, is the bit of cell `(row0 + r, col0 + 8k + l)`; bits
    /// past `width` are whatever the masks hold there. `bytes` keeps its capacity.
    pub fn unpack_rows(
        &self,
        bc: usize,
        masks: &[u64],
        (rs, ks): (usize, usize),
        bytes: &mut Vec<u8>,
    ) {
        let (rows, chunks) = (self.rows, self.chunks);
        bytes.clear();
        bytes.resize(rows * chunks, 0);
        if bc == LANES && (rs, ks) == (1, rows) {
            // Chunk-major, one byte per row: a block's rows are its mask's low bytes.
            for (dst, mask) in bytes.chunks_exact_mut(rows).zip(masks) {
                dst.copy_from_slice(&mask.to_le_bytes()[..rows]);
            }
        } else if bc.is_multiple_of(LANES) {
            // A row of cells is whole bytes of the mask: copy them.
            let per = bc / LANES;
            for (t, &mask) in masks.iter().enumerate() {
                for r in 0..rows {
                    let row = mask >> (r * bc);
                    for q in 0..per.min(chunks.saturating_sub(t * per)) {
                        bytes[r * rs + (t * per + q) * ks] = (row >> (LANES * q)) as u8;
                    }
                }
            }
        } else {
            // Concatenate the rows' `bc`-bit masks into a bit stream, a byte at a time.
            let row_mask = (1u64 << bc) - 1; // bc < 64 here
            for r in 0..rows {
                let (mut acc, mut held, mut k) = (0u128, 0, 0);
                for &mask in masks {
                    acc |= u128::from((mask >> (r * bc)) & row_mask) << held;
                    held += bc;
                    while held >= LANES {
                        if k < chunks {
                            bytes[r * rs + k * ks] = acc as u8;
                        }
                        (acc, held, k) = (acc >> LANES, held - LANES, k + 1);
                    }
                }
                if held > 0 && k < chunks {
                    bytes[r * rs + k * ks] = acc as u8;
                }
            }
        }
    }
}

/// A kernel over groups of at most eight rows of a stripe, each group sized at compile
/// time so that its accumulators stay in registers.
pub(crate) trait RowGroups {
    /// Writes `out[..R]` for the stripe rows `r0..r0 + R`.
    fn group<const R: usize>(&self, r0: usize, out: &mut [f32]);
}

/// Runs `kernel` over `rows` rows, eight at a time, writing `out[..rows]`.
#[inline(always)]
pub(crate) fn by_row_groups(kernel: &impl RowGroups, rows: usize, out: &mut [f32]) {
    let mut r = 0;
    while r < rows {
        let n = (rows - r).min(8);
        let dst = &mut out[r..r + n];
        match n {
            8 => kernel.group::<8>(r, dst),
            7 => kernel.group::<7>(r, dst),
            6 => kernel.group::<6>(r, dst),
            5 => kernel.group::<5>(r, dst),
            4 => kernel.group::<4>(r, dst),
            3 => kernel.group::<3>(r, dst),
            2 => kernel.group::<2>(r, dst),
            _ => kernel.group::<1>(r, dst),
        }
        r += n;
    }
}

/// Small batch: runs `rows_of` on runs of block rows in parallel; each returns `y` for its
/// rows, `[batch, rows of the run]`, which is copied into place.
///
/// # Errors
/// The first error of a run, in block-row order.
pub(crate) fn stream_in_tasks<F>(
    layout: &BlockLayout,
    batch: usize,
    y: &mut [f32],
    rows_of: F,
) -> Result<(), KernelError>
where
    F: Fn(Range<usize>) -> Result<Vec<f32>, KernelError> + Sync,
{
    let (rows, br, ni) = (layout.rows, layout.block_rows, layout.row_blocks());
    let tasks: Vec<_> = split(ni, parts(ni, batch * br * layout.cols)).collect();
    let pieces: Vec<_> = tasks
        .into_par_iter()
        .map(|blocks| (blocks.clone(), rows_of(blocks)))
        .collect();
    for (blocks, piece) in pieces {
        let piece = piece?;
        let r0 = blocks.start * br;
        let n_rows = (blocks.end * br).min(rows) - r0;
        for (dst, src) in y.chunks_exact_mut(rows).zip(piece.chunks_exact(n_rows)) {
            dst[r0..r0 + n_rows].copy_from_slice(src);
        }
    }
    Ok(())
}

/// Large batch: each task decodes panels of its block rows and multiplies them with `gemm`,
/// writing its own columns of `y`. `decode(scratch, block_row, out, stride)` writes the
/// block row's weights (`[rows of the block row, cols]`, row stride `stride`) from the
/// start of `out`; `scratch` is one per task, reused across its block rows.
///
/// # Errors
/// The first error of `decode`, in block-row order.
pub(crate) fn forward_panels<S, D>(
    layout: &BlockLayout,
    x: &[f32],
    batch: usize,
    y: &mut [f32],
    decode: D,
) -> Result<(), KernelError>
where
    S: Default,
    D: Fn(&mut S, usize, &mut [f32], usize) -> Result<(), KernelError> + Sync,
{
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
    let done: Vec<Result<(), KernelError>> = tasks
        .into_par_iter()
        .map(|blocks| {
            let mut scratch = S::default();
            let mut panel = Vec::new();
            let mut start = blocks.start;
            while start < blocks.end {
                let end = (start + panel_blocks).min(blocks.end);
                let (r0, r1) = (start * br, (end * br).min(rows));
                panel.clear();
                panel.resize((r1 - r0) * stride, 0.0);
                for block_row in start..end {
                    let at = (block_row * br - r0) * stride;
                    decode(&mut scratch, block_row, &mut panel[at..], stride)?;
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
            Ok(())
        })
        .collect();
    done.into_iter().collect()
}
