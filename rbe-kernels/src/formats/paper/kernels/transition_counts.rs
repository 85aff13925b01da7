//! Net state-transition counts per seed and 2-bit slot (docs/math.md §5):
//! `#{dW(i, j) > t} - #{dW(i, j) < -t}` over the positions `(i, j)` with
//! `(i*31 + j) & 3 == slot`, where `dW = G^T x` restricted to the block.
//!
//! A cube per block forms the block's `dW` tile by tile, a tiled matmul over the batch:
//! `TILE_BATCH` rows of `G` and `x` at a time are staged in shared memory and every thread
//! accumulates one `dW` element of the current `ti x tj` tile in a register. Only its sign
//! against `t` is kept, in four per-thread counters, so the weight gradient is never stored.
//! The counts are integers summed in a fixed tree, so the result is deterministic; each
//! `dW` is summed over the batch in order, as the reference does.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use crate::BlockLayout;
use crate::cube::held_extent;
use crate::cube::launch::{KernelDtypes, arg, dims, empty, per_seed, to_u32};

/// Batch rows staged per round.
const TILE_BATCH: usize = 16;
/// Threads per cube at most.
const MAX_THREADS: usize = 256;
/// The longest side of a thread tile: keeps the staged tiles, `TILE_BATCH * (ti + tj)`
/// values, and the `4 * ti * tj` counters within WebGPU's guaranteed 16 KiB of workgroup
/// memory.
const MAX_SIDE: usize = 64;

/// The thread tile `(ti, tj)` for `br x bc` blocks: powers of two (the count reduction is a
/// binary tree), at most [`MAX_THREADS`], no larger than the block needs, so thin blocks get
/// long thin tiles instead of idle threads.
fn thread_tile(br: usize, bc: usize) -> (usize, usize) {
    let tj = bc.next_power_of_two().min(16);
    let ti = br.next_power_of_two().min(MAX_THREADS / tj).min(MAX_SIDE);
    let tj = bc.next_power_of_two().min(MAX_THREADS / ti).min(MAX_SIDE);
    (ti, tj)
}

#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn transition_counts_kernel<F: Float>(
    x: &Tensor<F>,
    g: &Tensor<F>,
    counts: &mut Tensor<F>,
    threshold: InputScalar,
    batch: u32,
    rows: u32,
    cols: u32,
    br: u32,
    bc: u32,
    nj: u32,
    cubes_x: u32,
    #[comptime] ti: usize,
    #[comptime] tj: usize,
    #[define(F)] _dtype: StorageType,
) {
    let s = (CUBE_POS_Y * cubes_x + CUBE_POS_X) as usize;
    if s >= counts.shape(0) {
        terminate!();
    }
    let (batch, rows, cols) = (batch as usize, rows as usize, cols as usize);
    let (br, bc, nj) = (br as usize, bc as usize, nj as usize);
    let threads = comptime!(ti * tj);
    let tx = UNIT_POS_X as usize;
    let ty = UNIT_POS_Y as usize;
    let t = ty * tj + tx;
    let threshold = threshold.get::<F>();
    let row0 = (s / nj) * br;
    let col0 = (s % nj) * bc;
    // The part of the block inside the matrix; edge blocks are cropped.
    let held_rows = held_extent(row0, br, rows);
    let held_cols = held_extent(col0, bc, cols);

    let mut gs = SharedMemory::<F>::new(comptime!(TILE_BATCH * ti));
    let mut xs = SharedMemory::<F>::new(comptime!(TILE_BATCH * tj));
    let mut c0 = 0i32;
    let mut c1 = 0i32;
    let mut c2 = 0i32;
    let mut c3 = 0i32;

    let mut i0 = 0usize;
    while i0 < held_rows {
        let mut j0 = 0usize;
        while j0 < held_cols {
            let mut dw = F::new(0.0);
            let mut n0 = 0usize;
            while n0 < batch {
                // Rows past the batch or the block stage as zeros, which add exactly nothing.
                let mut e = t;
                while e < comptime!(TILE_BATCH * ti) {
                    let n = n0 + e / ti;
                    let i = i0 + e % ti;
                    let mut v = F::new(0.0);
                    if n < batch && i < held_rows {
                        v = g[n * rows + row0 + i];
                    }
                    gs[e] = v;
                    e += threads;
                }
                let mut e = t;
                while e < comptime!(TILE_BATCH * tj) {
                    let n = n0 + e / tj;
                    let j = j0 + e % tj;
                    let mut v = F::new(0.0);
                    if n < batch && j < held_cols {
                        v = x[n * cols + col0 + j];
                    }
                    xs[e] = v;
                    e += threads;
                }
                sync_cube();
                #[unroll]
                for k in 0..TILE_BATCH {
                    dw += gs[k * ti + ty] * xs[k * tj + tx];
                }
                sync_cube();
                n0 += TILE_BATCH;
            }
            let i = i0 + ty;
            let j = j0 + tx;
            if i < held_rows && j < held_cols {
                let mut step = 0i32;
                if dw > threshold {
                    step = 1i32;
                }
                if dw < -threshold {
                    step = -1i32;
                }
                let slot = (i * 31 + j) % 4;
                if slot == 0 {
                    c0 += step;
                } else if slot == 1 {
                    c1 += step;
                } else if slot == 2 {
                    c2 += step;
                } else {
                    c3 += step;
                }
            }
            j0 += tj;
        }
        i0 += ti;
    }

    let mut shared = SharedMemory::<i32>::new(comptime!(4 * ti * tj));
    shared[t] = c0;
    shared[threads + t] = c1;
    shared[2 * threads + t] = c2;
    shared[3 * threads + t] = c3;
    sync_cube();
    // A fixed tree over the per-thread counts, unrolled: `threads` is a power of two.
    #[unroll]
    for level in 0..comptime!(threads.trailing_zeros()) {
        let stride = comptime!(threads >> (level + 1));
        if t < stride {
            for slot in 0..4usize {
                let here = slot * threads + t;
                shared[here] += shared[here + stride];
            }
        }
        sync_cube();
    }
    // One writer: a one-cell block has a single thread.
    if t == 0 {
        #[unroll]
        for slot in 0..4usize {
            let out = s * 4 + slot;
            counts[out] = F::cast_from(shared[slot * threads]);
        }
    }
}

/// Net transition counts, `[n_blocks, 4]`, as floats (small integers, exact): one launch.
///
/// Reference: [`crate::formats::paper::reference::transition_counts`] over
/// `dW = G^T x`; `signal` of [`crate::formats::paper::reference::layer_backward`].
///
/// # Shapes
/// - `x`: `[batch, layout.cols]`; `g`: `[batch, layout.rows]`
/// - returns `[n_blocks, 4]`
pub fn transition_counts<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    x: &TensorHandle<R>,
    g: &TensorHandle<R>,
    threshold: f32,
    layout: &BlockLayout,
) -> TensorHandle<R> {
    let batch = x.shape()[0];
    let n = layout.num_blocks();
    let [rows, cols, br, bc, nj] = dims(layout);
    let counts = empty(client, &[n, 4], dtypes.float);
    let (count, cubes_x) = per_seed(layout);
    let (ti, tj) = thread_tile(layout.block_rows, layout.block_cols);
    transition_counts_kernel::launch::<R>(
        client,
        count,
        CubeDim::new_2d(to_u32("tile", tj), to_u32("tile", ti)),
        arg(x, &[batch, layout.cols]),
        arg(g, &[batch, layout.rows]),
        arg(&counts, &[n, 4]),
        InputScalar::new(threshold, dtypes.float),
        to_u32("batch", batch),
        rows,
        cols,
        br,
        bc,
        nj,
        cubes_x,
        ti,
        tj,
        dtypes.float,
    );
    counts
}

#[cfg(all(test, feature = "wgpu"))]
mod tests {
    use super::*;
    use rand::Rng;

    use crate::cube::test_utils::{TestEnv, paper_cases};
    use crate::formats::paper::reference::{
        apply_transition_counts, layer_backward, sequential_transitions,
    };
    use crate::testing::{PaperSeeds, grid_values, rng};

    #[test]
    fn thread_tiles() {
        assert_eq!(thread_tile(32, 32), (16, 16));
        assert_eq!(thread_tile(1, 37), (1, 64));
        assert_eq!(thread_tile(29, 1), (32, 1));
        assert_eq!(thread_tile(300, 1), (64, 1));
        assert_eq!(thread_tile(1, 1), (1, 1));
        assert_eq!(thread_tile(5, 3), (8, 4));
        assert_eq!(thread_tile(1000, 1000), (16, 16));
        assert_eq!(thread_tile(1, 5000), (1, 64));
    }

    /// Inputs on a 1/8 grid make every `dW` a multiple of 1/64 that f32 sums exactly in any
    /// order, and 0.1 is not such a multiple: the kernel must then agree exactly.
    #[test]
    fn equals_sequential_paper_loop() {
        let Some(env) = TestEnv::new() else { return };
        let mut rng = rng(108);
        let mut all = paper_cases(&mut rng);
        // Blocks larger than the thread tile, cropped in both directions, a batch past
        // several staged rounds, and one tall and one wide single-line block.
        all.extend([
            (BlockLayout::new(45, 50, 40, 20).unwrap(), 33),
            (BlockLayout::new(300, 2, 300, 1).unwrap(), 3),
            (BlockLayout::new(2, 600, 1, 520).unwrap(), 17),
        ]);
        for (layout, batch) in all {
            let seeds = PaperSeeds::random(&mut rng, layout.num_blocks());
            let (_, x) = grid_values(&mut rng, batch * layout.cols);
            let (_, g) = grid_values(&mut rng, batch * layout.rows);
            let got = env.read(&transition_counts(
                &env.client,
                env.dtypes,
                &env.floats(&x, &[batch, layout.cols]),
                &env.floats(&g, &[batch, layout.rows]),
                0.1,
                &layout,
            ));
            let want = layer_backward(&seeds.params, &layout, &x, &g, batch, 0.1).unwrap();
            let want = want.signal.expect("transition counts");
            assert_eq!(got.len(), want.len(), "{layout:?}");
            let (br, bc) = (layout.block_rows, layout.block_cols);
            for (s, (chunk, want)) in got.chunks_exact(4).zip(want.chunks_exact(4)).enumerate() {
                assert_eq!(chunk, want, "{layout:?} seed {s}");
                let counts = [0, 1, 2, 3].map(|k| chunk[k] as i32);
                // And the state they produce equals the paper's sequential loop over dW.
                let (bi, bj) = (s / layout.col_blocks(), s % layout.col_blocks());
                let hi = rng.random::<u64>();
                let sequential = sequential_transitions(hi, br, bc, 0.1, |i, j| {
                    let (row, col) = (bi * br + i, bj * bc + j);
                    if row < layout.rows && col < layout.cols {
                        (0..batch)
                            .map(|n| g[n * layout.rows + row] * x[n * layout.cols + col])
                            .sum()
                    } else {
                        0.0
                    }
                });
                assert_eq!(apply_transition_counts(hi, counts), sequential);
            }
        }
    }
}
