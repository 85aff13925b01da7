//! The backward of a ternary `y = x W^T` given `G = dL/dy` (docs/math.md §10): one
//! launch, two with `dL/dx`.
//!
//! - `dL/dalpha = Σ dW t` over the block's cells inside the matrix and the per-cell signal
//!   `dW` share one launch: a cube of 64 threads per block, one per cell, forms its cell's
//!   `dW = Σ_n G[n, row] x[n, col]` over the batch, staging 16 rows of `G` and `x` at a time
//!   in shared memory, then a fixed binary tree sums `dW t` over the 64 threads
//!   (deterministic, no atomics).
//! - `dL/dx = G W` is the forward's tiled matmul with the weight tile transposed.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use super::forward::{assert_ternary_block, level_of, ternary_matmul};
use crate::cube::held_extent;
use crate::cube::launch::{KernelDtypes, arg, dims, empty, per_seed, to_u32};
use crate::formats::ternary::{TERNARY_BIT_WORDS, TERNARY_CELLS};
use crate::{BlockLayout, Grads};

/// Batch rows staged per round.
const TILE_BATCH: usize = 16;
/// Threads per cube: one per cell.
const CELLS: usize = TERNARY_CELLS;

/// One cube of [`CELLS`] threads per seed; thread `t` owns cell `t`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn ternary_seed_grads_kernel<F: Float, I: Int>(
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
    let held_rows = held_extent(row0, br, rows);
    let held_cols = held_extent(col0, bc, cols);
    let valid = i < held_rows && j < held_cols;

    // `G[n0.., row0..row0 + br]` as [n][i] and `x[n0.., col0..col0 + bc]` as [n][j].
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
    let mut sums = SharedMemory::<F>::new(comptime!(CELLS));
    sums[t] = dw * level_of::<F, I>(bits, s, t);
    sync_cube();
    #[unroll]
    for level in 0..comptime!(CELLS.trailing_zeros()) {
        let stride = comptime!(CELLS >> (level + 1));
        if t < stride {
            let da = sums[t + stride];
            sums[t] += da;
        }
        sync_cube();
    }
    if t == 0 {
        grad[s * 2] = sums[0];
        grad[s * 2 + 1] = F::new(0.0);
    }
}

/// The gradients of a ternary `y = x W^T` given `g = dL/dy`.
///
/// Launches: `dL/dalpha` together with the cell signal (1), and `dL/dx` (1 when `grad_x`).
///
/// Reference: [`crate::formats::ternary::reference::backward`].
///
/// # Shapes
/// - `x`: `[batch, layout.cols]`; `grad_y`: `[batch, layout.rows]`; `coords`:
///   `[n_blocks, 2]` = `(alpha, 0)`; `bits`: `[n_blocks, 4]`
/// - returns [`Grads`]: `x` `[batch, layout.cols]` when `grad_x`, `coords` `[n_blocks, 2]`
///   = `(dL/dalpha, 0)`, `signal` (`dW` per cell at `i * block_cols + j`) `[n_blocks, 64]`
///   when `cell_signal`
///
/// # Panics
/// When `layout.block_rows * layout.block_cols > 64`, or when a tensor is not contiguous
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
    assert_ternary_block(layout);
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
    ternary_seed_grads_kernel::launch::<R>(
        client,
        count,
        CubeDim::new_1d(to_u32("cells", CELLS)),
        arg(x, &[batch, layout.cols]),
        arg(grad_y, &[batch, layout.rows]),
        arg(bits, &[n, TERNARY_BIT_WORDS]),
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
    let grad_x = grad_x.then(|| ternary_matmul(client, dtypes, grad_y, coords, bits, layout, true));
    Grads {
        x: grad_x,
        coords: grad_coords,
        signal: cell_signal.then_some(signal),
    }
}
