//! `y = x W^T` for ternary seeds (docs/math.md §10), every weight `alpha * t` decoded
//! from its 2-bit code in registers: one launch.
//!
//! Up to [`MATVEC_MAX_BATCH`] rows, one thread per output walks its row of blocks
//! ([`ternary_matvec_kernel`]) and sums `alpha * Σ t x` per block; above that, the shared
//! 16 x 16 tiled matmul with [`TernaryWeight`] plugged in. Both sum in a fixed order: no
//! atomics, deterministic.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use crate::BlockLayout;
use crate::cube::launch::{KernelDtypes, THREADS, arg, dims, empty, to_u32};
use crate::cube::{WeightSource, held_extent, tiled_matmul};
use crate::formats::ternary::{TERNARY_BIT_WORDS, TERNARY_CELLS, check_block};

/// Batches up to this size take [`ternary_matvec_kernel`] (as for the sign blueprint: the
/// tiled kernel wastes 15/16 of its staging at batch 1).
const MATVEC_MAX_BATCH: usize = 4;

/// The level of cell `k` of seed `s`: code `(bits[s, k / 16] >> 2 (k % 16)) & 3`, `01`
/// +1, `10` -1, anything else 0 (`11` never reaches a kernel: the seeds' checks reject
/// it). The words are i32 bit patterns, possibly widened; the cast to u32 keeps the low
/// 32 bits.
#[cube]
pub(super) fn level_of<F: Float, I: Int>(bits: &Tensor<I>, s: usize, k: usize) -> F {
    let word = u32::cast_from(bits[s * 4 + k / 16]);
    let code = (word >> ((2 * (k % 16)) as u32)) & 3u32;
    let mut t = F::new(0.0);
    if code == 1u32 {
        t = F::new(1.0);
    }
    if code == 2u32 {
        t = F::new(-1.0);
    }
    t
}

/// The ternary weight as the tiled matmul's [`WeightSource`]: cell `(i, j)` is cell
/// `i * bc + j`, `coords[s, 0] = alpha`.
pub(super) struct TernaryWeight;

#[cube]
impl WeightSource for TernaryWeight {
    type Config = ();

    fn weight<F: Float, I: Int>(
        coords: &Tensor<F>,
        bits: &Tensor<I>,
        s: usize,
        i: usize,
        j: usize,
        _br: usize,
        bc: usize,
        #[comptime] _config: (),
    ) -> F {
        coords[s * 2] * level_of::<F, I>(bits, s, i * bc + j)
    }
}

/// `out = x W^T` for small batches: thread `CUBE_POS_X * CUBE_DIM_X + UNIT_POS_X` owns
/// output `o` of batch row `CUBE_POS_Y`, summed over its blocks in order.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn ternary_matvec_kernel<F: Float, I: Int>(
    x: &Tensor<F>,
    coords: &Tensor<F>,
    bits: &Tensor<I>,
    out: &mut Tensor<F>,
    batch: u32,
    rows: u32,
    cols: u32,
    br: u32,
    bc: u32,
    nj: u32,
    #[define(F, I)] _dtypes: [StorageType; 2],
) {
    let o = (CUBE_POS_X * CUBE_DIM_X + UNIT_POS_X) as usize;
    let n = CUBE_POS_Y as usize;
    let (batch, rows, cols) = (batch as usize, rows as usize, cols as usize);
    let (br, bc, nj) = (br as usize, bc as usize, nj as usize);
    if o < rows && n < batch {
        let seed_row = (o / br) * nj;
        let cell_row = (o % br) * bc;
        let x_row = n * cols;
        let mut acc = F::new(0.0);
        for j in 0..nj {
            let s = seed_row + j;
            let c0 = j * bc;
            let width = held_extent(c0, bc, cols);
            let mut signed = F::new(0.0);
            for c in 0..width {
                signed += x[x_row + c0 + c] * level_of::<F, I>(bits, s, cell_row + c);
            }
            acc += coords[s * 2] * signed;
        }
        out[n * rows + o] = acc;
    }
}

/// Asserts that the layout's blocks fit the 64 trits.
///
/// # Panics
/// When `block_rows * block_cols > 64`: layers validate their layout with [`check_block`]
/// when they are built, so reaching this is a caller bug, not bad data.
pub(super) fn assert_ternary_block(layout: &BlockLayout) {
    if let Err(e) = check_block(layout) {
        panic!("ternary kernels need blocks of at most {TERNARY_CELLS} cells: {e}");
    }
}

/// `a W^T` (or `a W` with `transpose`) for ternary seeds: one launch.
///
/// # Shapes
/// - `a`: `[batch, layout.cols]`, or `[batch, layout.rows]` with `transpose`;
///   `coords`: `[n_blocks, 2]`; `bits`: `[n_blocks, 4]`
/// - returns `[batch, layout.rows]`, or `[batch, layout.cols]` with `transpose`
pub(super) fn ternary_matmul<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    a: &TensorHandle<R>,
    coords: &TensorHandle<R>,
    bits: &TensorHandle<R>,
    layout: &BlockLayout,
    transpose: bool,
) -> TensorHandle<R> {
    assert_ternary_block(layout);
    let n = layout.num_blocks();
    // Checked here, not only in the tiled matmul: the matvec path indexes 4 words a seed.
    arg(bits, &[n, TERNARY_BIT_WORDS]);
    let batch = a.shape()[0];
    if transpose || batch > MATVEC_MAX_BATCH {
        return tiled_matmul::<R, TernaryWeight>(
            client,
            dtypes,
            a,
            coords,
            bits,
            layout,
            transpose,
            (),
        );
    }
    let [rows, cols, br, bc, nj] = dims(layout);
    let y = empty(client, &[batch, layout.rows], dtypes.float);
    ternary_matvec_kernel::launch::<R>(
        client,
        CubeCount::Static(rows.div_ceil(THREADS), to_u32("batch", batch).max(1), 1),
        CubeDim::new_1d(THREADS),
        arg(a, &[batch, layout.cols]),
        arg(coords, &[n, 2]),
        arg(bits, &[n, TERNARY_BIT_WORDS]),
        arg(&y, &[batch, layout.rows]),
        to_u32("batch", batch),
        rows,
        cols,
        br,
        bc,
        nj,
        dtypes.both(),
    );
    y
}

/// `y = x W^T` for ternary seeds, `W[o, k] = alpha * t` decoded in registers: one launch,
/// no weight-sized buffer.
///
/// Reference: [`crate::formats::ternary::reference::forward`].
///
/// # Shapes
/// - `x`: `[batch, layout.cols]`; `coords`: `[n_blocks, 2]` = `(alpha, 0)`; `bits`:
///   `[n_blocks, 4]`, 2-bit codes, cell `k` at bits `2 (k % 16)` of word `k / 16`
/// - returns `[batch, layout.rows]`
///
/// # Panics
/// When `layout.block_rows * layout.block_cols > 64` (see
/// [`check_block`](crate::formats::ternary::check_block)), or when a tensor is not
/// contiguous with the shape above.
pub fn forward<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    x: &TensorHandle<R>,
    coords: &TensorHandle<R>,
    bits: &TensorHandle<R>,
    layout: &BlockLayout,
) -> TensorHandle<R> {
    ternary_matmul(client, dtypes, x, coords, bits, layout, false)
}
