//! `y = x W^T` for sign-blueprint seeds (docs/math.md §9), every weight
//! `mu + alpha * (2 * bit - 1)` unpacked from its seed in registers: **one launch**.
//!
//! One launch because the weight is a bit test and a multiply-add, far cheaper than the
//! memory traffic a separate decode would cost, so there is nothing to share between
//! launches and no `rows x cols` buffer is ever written.
//!
//! Up to [`MATVEC_MAX_BATCH`] rows, one thread per output walks its row of blocks
//! ([`sign_matvec_kernel`]): per block it loads the seed once and sums `x` and `±x` over the
//! block's cells, `mu * sum(x) + alpha * sum(±x)`; there is no staging, so no barrier.
//!
//! Above that, the shared 16 x 16 tiled matmul ([`crate::cube`]) with the sign weight
//! plugged in ([`SignWeight`]): each weight is unpacked once per 16 batch rows into shared
//! memory and never leaves the cube; each output is owned by one thread and summed in a
//! fixed order: no atomics, deterministic.
//!
//! The same tiled matmul, with the weight tile transposed, computes `dL/dx = G W` for
//! [`super::backward`].

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use super::weight::SignWeight;
use crate::BlockLayout;
use crate::cube::launch::{KernelDtypes, THREADS, arg, dims, empty, to_u32};
use crate::cube::{held_extent, tiled_matmul};
use crate::formats::sign::{SIGN_CELLS, check_block};

/// Batches up to this size take [`sign_matvec_kernel`]. The tiled kernel stages 16 batch
/// rows per cube: at batch 1, 15/16 of its multiply-adds are on zero padding, and its two
/// barriers per 16 weights dominated (4.3 s against dense's 135 ms for 4096x4096 on
/// lavapipe).
const MATVEC_MAX_BATCH: usize = 4;

/// `out = x W^T` for small batches: thread `CUBE_POS_X * CUBE_DIM_X + UNIT_POS_X` owns
/// output `o` of batch row `CUBE_POS_Y`, summed over its blocks in order (deterministic).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn sign_matvec_kernel<F: Float, I: Int>(
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
        // This output's first cell in each block, row-major within the block.
        let cell_row = (o % br) * bc;
        let x_row = n * cols;
        let mut acc = F::new(0.0);
        for j in 0..nj {
            let s = seed_row + j;
            let c0 = j * bc;
            let width = held_extent(c0, bc, cols);
            let low = u32::cast_from(bits[s * 2 + 1]);
            let high = u32::cast_from(bits[s * 2]);
            let mut total = F::new(0.0);
            let mut signed = F::new(0.0);
            for c in 0..width {
                let v = x[x_row + c0 + c];
                let k = cell_row + c;
                let mut word = low;
                if k >= 32 {
                    word = high;
                }
                let mut sv = -v;
                if (word >> ((k % 32) as u32)) & 1u32 == 1u32 {
                    sv = v;
                }
                total += v;
                signed += sv;
            }
            acc += coords[s * 2 + 1] * total + coords[s * 2] * signed;
        }
        out[n * rows + o] = acc;
    }
}

/// Asserts that the layout's blocks fit the 64 sign bits.
///
/// # Panics
/// When `block_rows * block_cols > 64`. Layers validate their layout with
/// [`check_block`] when they are built, so reaching this is a caller bug, not bad data.
pub(super) fn assert_sign_block(layout: &BlockLayout) {
    if let Err(e) = check_block(layout) {
        panic!("sign-blueprint kernels need blocks of at most {SIGN_CELLS} cells: {e}");
    }
}

/// `a W^T` (or `a W` with `transpose`) for sign-blueprint seeds: one launch.
///
/// # Shapes
/// - `a`: `[batch, layout.cols]`, or `[batch, layout.rows]` with `transpose`;
///   `coords`, `bits`: `[n_blocks, 2]`
/// - returns `[batch, layout.rows]`, or `[batch, layout.cols]` with `transpose`
pub(super) fn sign_matmul<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    a: &TensorHandle<R>,
    coords: &TensorHandle<R>,
    bits: &TensorHandle<R>,
    layout: &BlockLayout,
    transpose: bool,
) -> TensorHandle<R> {
    assert_sign_block(layout);
    let batch = a.shape()[0];
    if transpose || batch > MATVEC_MAX_BATCH {
        return tiled_matmul::<R, SignWeight>(
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
    let n = layout.num_blocks();
    let [rows, cols, br, bc, nj] = dims(layout);
    let y = empty(client, &[batch, layout.rows], dtypes.float);
    sign_matvec_kernel::launch::<R>(
        client,
        CubeCount::Static(rows.div_ceil(THREADS), to_u32("batch", batch).max(1), 1),
        CubeDim::new_1d(THREADS),
        arg(a, &[batch, layout.cols]),
        arg(coords, &[n, 2]),
        arg(bits, &[n, 2]),
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

/// `y = x W^T` for sign-blueprint seeds, `W[o, k] = mu + alpha * (2 * bit - 1)` unpacked in
/// registers: one launch, no weight-sized buffer.
///
/// Reference: [`crate::formats::sign::reference::forward`].
///
/// # Shapes
/// - `x`: `[batch, layout.cols]`; `coords`: `[n_blocks, 2]` = `(alpha, mu)`; `bits`:
///   `[n_blocks, 2]` = `(hi[63:32], hi[31:0])` as i32 bit patterns
/// - returns `[batch, layout.rows]`
///
/// # Panics
/// When `layout.block_rows * layout.block_cols > 64` (see
/// [`check_block`](crate::formats::sign::check_block)), or when a tensor is not contiguous
/// with the shape above.
pub fn forward<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    x: &TensorHandle<R>,
    coords: &TensorHandle<R>,
    bits: &TensorHandle<R>,
    layout: &BlockLayout,
) -> TensorHandle<R> {
    sign_matmul(client, dtypes, x, coords, bits, layout, false)
}
