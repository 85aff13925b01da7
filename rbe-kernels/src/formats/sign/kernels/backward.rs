//! The backward pass of a sign-blueprint `y = x W^T` given `G = dL/dy` (docs/math.md §9):
//! **one launch, two with `dL/dx`**.
//!
//! - The seed gradients and the per-cell signal share one launch: both come from
//!   `dW = G^T x` restricted to a block, `dL/dalpha = Σ dW (2 bit - 1)`, `dL/dmu = Σ dW` over
//!   the cells inside the matrix. A cube of 64 threads per block, one thread per bit index
//!   `k = i * block_cols + j`, forms its cell's `dW` over the batch, staging
//!   [`TILE_BATCH`] rows of `G` and `x` at a time in shared memory; the two sums are a fixed
//!   binary tree over the 64 threads. `dW` stays in registers (and goes to `cell_signal`
//!   only when that is asked for), so no weight-sized buffer exists otherwise; every `dW`
//!   is summed over the batch in order and the tree is fixed, so the result is
//!   deterministic without atomics.
//! - `dL/dx = G W` is the forward kernel with the weight tile transposed
//!   ([`super::forward`]'s tiled matmul), which unpacks the weights in registers again. It needs no
//!   `dW`, so fusing it into the first launch would only serialise two independent
//!   reductions (over the batch and over the rows) in one cube.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use super::forward::{assert_sign_block, sign_matmul};
use super::weight::sign_of;
use crate::cube::held_extent;
use crate::cube::launch::{KernelDtypes, arg, dims, empty, per_seed, to_u32};
use crate::formats::sign::SIGN_CELLS;
use crate::{BlockLayout, Grads};

/// Batch rows staged per round.
const TILE_BATCH: usize = 16;
/// Threads per cube: one per sign bit.
const CELLS: usize = SIGN_CELLS;

/// One cube of [`CELLS`] threads per seed; thread `t` owns bit index `t`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn sign_seed_grads_kernel<F: Float, I: Int>(
    x: &Tensor<F>,
    g: &Tensor<F>,
    bits: &Tensor<I>,
    grad: &mut Tensor<F>,
    signal: &mut Tensor<F>,
    batch: u32,
    rows: u32,
    cols: u32,
    br: u32,
    bc: u32,
    nj: u32,
    cubes_x: u32,
    #[comptime] with_signal: bool,
    #[define(F, I)] _dtypes: [StorageType; 2],
) {
    let s = (CUBE_POS_Y * cubes_x + CUBE_POS_X) as usize;
    if s >= grad.shape(0) {
        terminate!();
    }
    let (batch, rows, cols) = (batch as usize, rows as usize, cols as usize);
    let (br, bc, nj) = (br as usize, bc as usize, nj as usize);
    let t = UNIT_POS_X as usize;
    let i = t / bc;
    let j = t % bc;
    let row0 = (s / nj) * br;
    let col0 = (s % nj) * bc;
    // The part of the block inside the matrix; edge blocks are cropped.
    let held_rows = held_extent(row0, br, rows);
    let held_cols = held_extent(col0, bc, cols);
    let valid = i < held_rows && j < held_cols;

    // `G[n0.., row0..row0 + br]` as [n][i] and `x[n0.., col0..col0 + bc]` as [n][j]; a
    // block side is at most 64, so 64 slots per staged row suffice.
    let mut gs = SharedMemory::<F>::new(comptime!(TILE_BATCH * CELLS));
    let mut xs = SharedMemory::<F>::new(comptime!(TILE_BATCH * CELLS));
    let mut dw = F::new(0.0);
    let mut n0 = 0usize;
    while n0 < batch {
        // Rows past the batch or the matrix stage as zeros, which add exactly nothing.
        let mut e = t;
        while e < TILE_BATCH * br {
            let n = n0 + e / br;
            let ii = e % br;
            let mut v = F::new(0.0);
            if n < batch && ii < held_rows {
                v = g[n * rows + row0 + ii];
            }
            gs[e] = v;
            e += CELLS;
        }
        let mut e = t;
        while e < TILE_BATCH * bc {
            let n = n0 + e / bc;
            let jj = e % bc;
            let mut v = F::new(0.0);
            if n < batch && jj < held_cols {
                v = x[n * cols + col0 + jj];
            }
            xs[e] = v;
            e += CELLS;
        }
        sync_cube();
        if valid {
            #[unroll]
            for nn in 0..TILE_BATCH {
                dw += gs[nn * br + i] * xs[nn * bc + j];
            }
        }
        sync_cube();
        n0 += TILE_BATCH;
    }
    if !valid {
        dw = F::new(0.0);
    }
    if comptime!(with_signal) {
        signal[s * CELLS + t] = dw;
    }

    // Invalid threads hold zero, so the tree needs no masking.
    let mut sums = SharedMemory::<F>::new(comptime!(2 * CELLS));
    sums[t] = dw * sign_of::<F, I>(bits, s, t);
    sums[CELLS + t] = dw;
    sync_cube();
    #[unroll]
    for level in 0..comptime!(CELLS.trailing_zeros()) {
        let stride = comptime!(CELLS >> (level + 1));
        if t < stride {
            let da = sums[t + stride];
            let dm = sums[CELLS + t + stride];
            sums[t] += da;
            sums[CELLS + t] += dm;
        }
        sync_cube();
    }
    if t == 0 {
        grad[s * 2] = sums[0];
        grad[s * 2 + 1] = sums[CELLS];
    }
}

/// The gradients of a sign-blueprint `y = x W^T` given `g = dL/dy`.
///
/// Launches: the seed gradients together with the cell signal (1), and `dL/dx` (1 when
/// `grad_x`): 1 or 2. Without `cell_signal` no buffer grows with `rows x cols`; the cell
/// signal itself is `64 / (block_rows * block_cols)` times the weight's size.
///
/// Reference: [`crate::formats::sign::reference::backward`].
///
/// # Shapes
/// - `x`: `[batch, layout.cols]`; `grad_y`: `[batch, layout.rows]`; `coords`: `[n_blocks, 2]`
///   = `(alpha, mu)`; `bits`: `[n_blocks, 2]` = `(hi[63:32], hi[31:0])` as i32 bit patterns
/// - returns [`Grads`]: `x` `[batch, layout.cols]` when `grad_x`, `coords`
///   `[n_blocks, 2]` = `dL/d(alpha, mu)`, `signal` (`dW` per cell at bit index
///   `i * block_cols + j`) `[n_blocks, 64]` when `cell_signal`
///
/// # Panics
/// When `layout.block_rows * layout.block_cols > 64` (see
/// [`check_block`](crate::formats::sign::check_block)), or when a tensor is not contiguous
/// with the shape above.
#[allow(clippy::too_many_arguments)]
pub fn backward<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    x: &TensorHandle<R>,
    grad_y: &TensorHandle<R>,
    coords: &TensorHandle<R>,
    bits: &TensorHandle<R>,
    layout: &BlockLayout,
    grad_x: bool,
    cell_signal: bool,
) -> Grads<TensorHandle<R>> {
    assert_sign_block(layout);
    let batch = x.shape()[0];
    let n = layout.num_blocks();
    let [rows, cols, br, bc, nj] = dims(layout);
    let grad_coords = empty(client, &[n, 2], dtypes.float);
    // Without the signal it is never written; a one-element buffer fills the binding.
    let signal_len = [n, CELLS];
    let signal = empty(
        client,
        if cell_signal { &signal_len[..] } else { &[1] },
        dtypes.float,
    );
    let signal_shape = signal.shape().to_vec();
    let (count, cubes_x) = per_seed(layout);
    sign_seed_grads_kernel::launch::<R>(
        client,
        count,
        CubeDim::new_1d(to_u32("cells", CELLS)),
        arg(x, &[batch, layout.cols]),
        arg(grad_y, &[batch, layout.rows]),
        arg(bits, &[n, 2]),
        arg(&grad_coords, &[n, 2]),
        arg(&signal, &signal_shape),
        to_u32("batch", batch),
        rows,
        cols,
        br,
        bc,
        nj,
        cubes_x,
        cell_signal,
        dtypes.both(),
    );
    let grad_x = grad_x.then(|| sign_matmul(client, dtypes, grad_y, coords, bits, layout, true));
    Grads {
        x: grad_x,
        coords: grad_coords,
        signal: cell_signal.then_some(signal),
    }
}
