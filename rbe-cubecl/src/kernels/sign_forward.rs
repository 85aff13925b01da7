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
//! Above that, a 16 x 16 cube computes a 16 x 16
//! tile of the output; for each 16-wide slice of the reduced dimension it stages the
//! activation tile in shared memory and unpacks the matching 16 x 16 tile of `W` into shared
//! memory, one weight per thread, so each weight is unpacked once per 16 batch rows and
//! never leaves the cube. Each output is owned by one thread and summed in a fixed order:
//! no atomics, deterministic.
//!
//! The same kernel, with the weight tile transposed, computes `dL/dx = G W` for
//! [`super::sign_backward`].

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use super::launch::{KernelDtypes, THREADS, arg, dims, empty, to_u32};
use crate::BlockLayout;
use crate::sign_blueprint::{SIGN_CELLS, check_block};

/// Side of the square output tile, and the slice of the reduced dimension per round.
const TILE: u32 = 16;

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
            let mut width = bc;
            if c0 + bc > cols {
                width = cols - c0;
            }
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

/// `±1` for the sign bit at index `k` of seed `s`: cell `k < 32` is bit `k` of the low word
/// `bits[s, 1]`, cell `k >= 32` bit `k - 32` of the high word `bits[s, 0]`. The words are
/// i32 bit patterns, possibly widened to i64; the cast to u32 keeps their low 32 bits.
#[cube]
pub(super) fn sign_of<F: Float, I: Int>(bits: &Tensor<I>, s: usize, k: usize) -> F {
    let mut word = s * 2 + 1;
    if k >= 32 {
        word = s * 2;
    }
    let shift = (k % 32) as u32;
    let mut sign = F::new(-1.0);
    if (u32::cast_from(bits[word]) >> shift) & 1u32 == 1u32 {
        sign = F::new(1.0);
    }
    sign
}

/// `out = a W^T` (`transpose == false`, `a: [batch, cols]`, `out: [batch, rows]`) or
/// `out = a W` (`transpose == true`, `a: [batch, rows]`, `out: [batch, cols]`). The cube at
/// `(CUBE_POS_X, CUBE_POS_Y)` owns outputs `CUBE_POS_X*16..` of batch rows `CUBE_POS_Y*16..`;
/// thread `(tx, ty)` owns output `tx` of batch row `ty`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn sign_matmul_kernel<F: Float, I: Int>(
    a: &Tensor<F>,
    coords: &Tensor<F>,
    bits: &Tensor<I>,
    out: &mut Tensor<F>,
    batch: u32,
    rows: u32,
    cols: u32,
    br: u32,
    bc: u32,
    nj: u32,
    #[comptime] transpose: bool,
    #[define(F, I)] _dtypes: [StorageType; 2],
) {
    let tile = 16usize;
    let tx = UNIT_POS_X as usize;
    let ty = UNIT_POS_Y as usize;
    let out0 = CUBE_POS_X as usize * tile;
    let n0 = CUBE_POS_Y as usize * tile;
    let (batch, rows, cols) = (batch as usize, rows as usize, cols as usize);
    let (br, bc, nj) = (br as usize, bc as usize, nj as usize);
    // The reduced and the output dimension of the product.
    let mut reduced = cols;
    let mut outputs = rows;
    if comptime!(transpose) {
        reduced = rows;
        outputs = cols;
    }

    let mut a_tile = SharedMemory::<F>::new(256usize);
    let mut w_tile = SharedMemory::<F>::new(256usize);
    let mut acc = F::new(0.0);

    let rounds = reduced.div_ceil(tile);
    for t in 0..rounds {
        let red = t * tile + tx;
        // Activation tile, [n][red]; past the batch or the reduced dimension it is zero.
        let n = n0 + ty;
        let mut av = F::new(0.0);
        if n < batch && red < reduced {
            av = a[n * reduced + red];
        }
        a_tile[ty * tile + tx] = av;
        // Weight tile, [output][red]: thread (tx, ty) unpacks the weight of output
        // `out0 + ty` against `red`, i.e. W[out, red], or W[red, out] when transposed.
        let o = out0 + ty;
        let mut wv = F::new(0.0);
        if o < outputs && red < reduced {
            let mut row = o;
            let mut col = red;
            if comptime!(transpose) {
                row = red;
                col = o;
            }
            let s = (row / br) * nj + col / bc;
            let k = (row % br) * bc + col % bc;
            wv = coords[s * 2 + 1] + coords[s * 2] * sign_of::<F, I>(bits, s, k);
        }
        w_tile[ty * tile + tx] = wv;
        sync_cube();
        for kk in 0..tile {
            acc += a_tile[ty * tile + kk] * w_tile[tx * tile + kk];
        }
        sync_cube();
    }
    let n = n0 + ty;
    let o = out0 + tx;
    if n < batch && o < outputs {
        out[n * outputs + o] = acc;
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
    let n = layout.num_blocks();
    let [rows, cols, br, bc, nj] = dims(layout);
    let (reduced, outputs) = if transpose {
        (layout.rows, layout.cols)
    } else {
        (layout.cols, layout.rows)
    };
    let out = empty(client, &[batch, outputs], dtypes.float);
    if !transpose && batch <= MATVEC_MAX_BATCH {
        sign_matvec_kernel::launch::<R>(
            client,
            CubeCount::Static(rows.div_ceil(THREADS), to_u32("batch", batch).max(1), 1),
            CubeDim::new_1d(THREADS),
            arg(a, &[batch, reduced]),
            arg(coords, &[n, 2]),
            arg(bits, &[n, 2]),
            arg(&out, &[batch, outputs]),
            to_u32("batch", batch),
            rows,
            cols,
            br,
            bc,
            nj,
            dtypes.both(),
        );
        return out;
    }
    sign_matmul_kernel::launch::<R>(
        client,
        CubeCount::Static(
            to_u32("outputs", outputs).div_ceil(TILE),
            to_u32("batch", batch).div_ceil(TILE),
            1,
        ),
        CubeDim::new_2d(TILE, TILE),
        arg(a, &[batch, reduced]),
        arg(coords, &[n, 2]),
        arg(bits, &[n, 2]),
        arg(&out, &[batch, outputs]),
        to_u32("batch", batch),
        rows,
        cols,
        br,
        bc,
        nj,
        transpose,
        dtypes.both(),
    );
    out
}

/// `y = x W^T` for sign-blueprint seeds, `W[o, k] = mu + alpha * (2 * bit - 1)` unpacked in
/// registers: one launch, no weight-sized buffer.
///
/// Reference: [`crate::sign_blueprint::forward`].
///
/// # Shapes
/// - `x`: `[batch, layout.cols]`; `coords`: `[n_blocks, 2]` = `(alpha, mu)`; `bits`:
///   `[n_blocks, 2]` = `(hi[63:32], hi[31:0])` as i32 bit patterns
/// - returns `[batch, layout.rows]`
///
/// # Panics
/// When `layout.block_rows * layout.block_cols > 64` (see
/// [`check_block`](crate::sign_blueprint::check_block)), or when a tensor is not contiguous
/// with the shape above.
pub fn sign_forward<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    x: &TensorHandle<R>,
    coords: &TensorHandle<R>,
    bits: &TensorHandle<R>,
    layout: &BlockLayout,
) -> TensorHandle<R> {
    sign_matmul(client, dtypes, x, coords, bits, layout, false)
}
