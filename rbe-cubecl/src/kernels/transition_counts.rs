//! Net state-transition counts per seed and 2-bit slot (docs/math.md §5):
//! `#{dW(i, j) > t} - #{dW(i, j) < -t}` over the positions `(i, j)` with
//! `(i*31 + j) & 3 == slot`, where `dW = G^T x` restricted to the block.
//!
//! Each `dW` element is computed in registers and only its sign against `t` is kept, so the
//! weight gradient is never stored. The counts are integers summed in a fixed tree, so the
//! result is deterministic.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use super::launch::{KernelDtypes, arg, dims, empty, per_seed, to_u32};
use crate::BlockLayout;

const THREADS: u32 = 64;

/// One cube per seed; its 64 threads stride over the block's positions and then reduce
/// their four counters through shared memory.
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
    #[define(F)] _dtype: StorageType,
) {
    let s = (CUBE_POS_Y * cubes_x + CUBE_POS_X) as usize;
    if s >= counts.shape(0) {
        terminate!();
    }
    let (batch, rows, cols) = (batch as usize, rows as usize, cols as usize);
    let (br, bc, nj) = (br as usize, bc as usize, nj as usize);
    let t = UNIT_POS_X as usize;
    let threads = 64usize;
    let threshold = threshold.get::<F>();
    let row0 = (s / nj) * br;
    let col0 = (s % nj) * bc;

    let mut c0 = 0i32;
    let mut c1 = 0i32;
    let mut c2 = 0i32;
    let mut c3 = 0i32;
    let mut e = t;
    while e < br * bc {
        let i = e / bc;
        let j = e % bc;
        let row = row0 + i;
        let col = col0 + j;
        if row < rows && col < cols {
            let mut dw = F::new(0.0);
            for n in 0..batch {
                dw += g[n * rows + row] * x[n * cols + col];
            }
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
        e += threads;
    }

    let mut shared = SharedMemory::<i32>::new(256usize);
    shared[t] = c0;
    shared[threads + t] = c1;
    shared[2 * threads + t] = c2;
    shared[3 * threads + t] = c3;
    sync_cube();
    // A fixed tree over the 64 partial counts: log2(64) = 6 levels.
    #[unroll]
    for level in 1..7u32 {
        let stride = comptime!(64usize >> level);
        if t < stride {
            for slot in 0..4usize {
                let here = slot * threads + t;
                shared[here] += shared[here + stride];
            }
        }
        sync_cube();
    }
    if t < 4 {
        let out = s * 4 + t;
        counts[out] = F::cast_from(shared[t * threads]);
    }
}

/// Net transition counts, `[n_blocks, 4]`, as floats (small integers, exact).
///
/// Reference: [`crate::reference::transition_counts`] over
/// `dW = G^T x`; `transition_counts` of [`crate::reference::layer_backward`].
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
    transition_counts_kernel::launch::<R>(
        client,
        count,
        CubeDim::new_1d(THREADS),
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
        dtypes.float,
    );
    counts
}

#[cfg(all(test, feature = "wgpu"))]
mod tests {
    use super::*;
    use crate::kernels::test_utils::*;
    use crate::reference::{apply_transition_counts, layer_backward, sequential_transitions};
    use rand::Rng;

    /// Inputs on a 1/8 grid make every `dW` a multiple of 1/64 that f32 sums exactly in any
    /// order, and 0.1 is not such a multiple: the kernel must then agree exactly.
    #[test]
    fn equals_sequential_paper_loop() {
        let Some(env) = TestEnv::new() else { return };
        let mut rng = rng(108);
        let grid = |rng: &mut rand::rngs::StdRng, n: usize| -> Vec<f64> {
            (0..n)
                .map(|_| f64::from(rng.random_range(-8i32..8)) / 8.0)
                .collect()
        };
        for (layout, batch) in cases(&mut rng) {
            let seeds = random_seeds(&mut rng, layout.num_blocks());
            let x = grid(&mut rng, batch * layout.cols);
            let g = grid(&mut rng, batch * layout.rows);
            let got = env.read(&transition_counts(
                &env.client,
                env.dtypes,
                &env.floats(&x, &[batch, layout.cols]),
                &env.floats(&g, &[batch, layout.rows]),
                0.1,
                &layout,
            ));
            let want = layer_backward(&seeds, &layout, &x, &g, batch, 0.1).unwrap();
            let (br, bc) = (layout.block_rows, layout.block_cols);
            for (s, chunk) in got.chunks_exact(4).enumerate() {
                let counts = [0, 1, 2, 3].map(|k| chunk[k] as i32);
                assert_eq!(counts, want.transition_counts[s], "{layout:?} seed {s}");
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
