//! `dL/dr` and `dL/dtheta` per seed through the projections `<dW_IJ, C>` and `<dW_IJ, S>`
//! (docs/math.md §4), without forming `dW`:
//! `dL/da_IJ = sum_{n,i} G[n, I*br + i] U[n, J, 0, i]`, `dL/db_IJ` with `U[n, J, 1, i]`,
//! then `dL/dr = dL/da da/dr + dL/db db/dr` and `dL/dtheta = dL/da b - dL/db a`.
//!
//! The sum over the batch is split (split-K): one thread per seed and batch chunk of
//! [`BATCH_CHUNK`] rows writes a partial `(dL/da, dL/db)`, and a second launch sums the
//! partials of each seed in chunk order. The order is fixed, so the result is deterministic
//! (no float atomics). A batch that fits one chunk skips the second launch.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use super::coefficients::Coefficients;
use crate::BlockLayout;
use crate::cube::held_extent;
use crate::cube::launch::{KernelDtypes, arg, dims, elementwise, empty, to_u32};

/// Batch rows per partial sum: long enough that a thread's loop (`BATCH_CHUNK * br` pairs)
/// hides its launch share, short enough that large batches still yield many threads.
pub const BATCH_CHUNK: usize = 32;

/// `grad[s] = (dL/da da/dr + dL/db db/dr, dL/da b - dL/db a)`.
#[cube]
fn chain_rule<F: Float>(coef: &Tensor<F>, grad: &mut Tensor<F>, s: usize, da: F, db: F) {
    let c = s * 4;
    let (a, b, a_r, b_r) = (coef[c], coef[c + 1], coef[c + 2], coef[c + 3]);
    let out = s * 2;
    grad[out] = da * a_r + db * b_r;
    grad[out + 1] = da * b - db * a;
}

/// One thread per `(chunk, seed)`, seeds fastest so neighbouring threads share `G` reads.
/// With `finish` (a single chunk) it applies the chain rule itself.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn seed_partials_kernel<F: Float>(
    g: &Tensor<F>,
    u: &Tensor<F>,
    coef: &Tensor<F>,
    out: &mut Tensor<F>,
    batch: u32,
    rows: u32,
    br: u32,
    nj: u32,
    chunk: u32,
    #[comptime] finish: bool,
    #[define(F)] _dtype: StorageType,
) {
    let pos = ABSOLUTE_POS;
    let seeds = coef.shape(0);
    let (batch, rows, br, nj, chunk) = (
        batch as usize,
        rows as usize,
        br as usize,
        nj as usize,
        chunk as usize,
    );
    if pos >= seeds * batch.div_ceil(chunk) {
        terminate!();
    }
    let s = pos % seeds;
    let n0 = (pos / seeds) * chunk;
    let mut n1 = n0 + chunk;
    if n1 > batch {
        n1 = batch;
    }
    let row0 = (s / nj) * br;
    let bj = s % nj;
    let held = held_extent(row0, br, rows);
    let mut da = F::new(0.0);
    let mut db = F::new(0.0);
    for n in n0..n1 {
        let base = (n * nj + bj) * 2 * br;
        let g_row = n * rows + row0;
        for i in 0..held {
            let gv = g[g_row + i];
            da += gv * u[base + i];
            db += gv * u[base + br + i];
        }
    }
    if comptime!(finish) {
        chain_rule::<F>(coef, out, s, da, db);
    } else {
        out[pos * 2] = da;
        out[pos * 2 + 1] = db;
    }
}

/// One thread per seed: the partials in chunk order, then the chain rule.
#[cube(launch)]
fn seed_reduce_kernel<F: Float>(
    partials: &Tensor<F>,
    coef: &Tensor<F>,
    grad: &mut Tensor<F>,
    #[define(F)] _dtype: StorageType,
) {
    let s = ABSOLUTE_POS;
    let seeds = coef.shape(0);
    if s >= seeds {
        terminate!();
    }
    let chunks = partials.shape(0);
    let mut da = F::new(0.0);
    let mut db = F::new(0.0);
    for k in 0..chunks {
        let p = (k * seeds + s) * 2;
        da += partials[p];
        db += partials[p + 1];
    }
    chain_rule::<F>(coef, grad, s, da, db);
}

/// `dL/d(r, theta)` per seed: one launch when the batch fits one [`BATCH_CHUNK`], else two.
///
/// Reference: `coords` of [`crate::formats::paper::reference::layer_backward`].
///
/// # Shapes
/// - `g`: `[batch, layout.rows]`; `u`: `[batch, nJ, 2, br]` from
///   [`super::project_blocks`] of the layer input; `coefs`: from
///   [`super::seed_coefficients`] of `layout`
/// - returns `[n_blocks, 2]`
pub fn seed_gradients<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    g: &TensorHandle<R>,
    u: &TensorHandle<R>,
    coefs: &Coefficients<R>,
    layout: &BlockLayout,
) -> TensorHandle<R> {
    seed_gradients_chunked(client, dtypes, g, u, coefs, layout, BATCH_CHUNK)
}

/// [`seed_gradients`] with `chunk` batch rows per partial sum.
///
/// # Shapes
/// As [`seed_gradients`]; the partials are `[ceil(batch / chunk), n_blocks, 2]`.
pub(crate) fn seed_gradients_chunked<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    g: &TensorHandle<R>,
    u: &TensorHandle<R>,
    coefs: &Coefficients<R>,
    layout: &BlockLayout,
    chunk: usize,
) -> TensorHandle<R> {
    assert!(chunk > 0, "batch chunk must be positive");
    let batch = g.shape()[0];
    let n = layout.num_blocks();
    let [rows, _, br, _, nj] = dims(layout);
    let chunks = batch.div_ceil(chunk).max(1);
    let finish = chunks == 1;
    let grad = empty(client, &[n, 2], dtypes.float);
    let partials = if finish {
        grad.clone()
    } else {
        empty(client, &[chunks, n, 2], dtypes.float)
    };
    let partial_shape = partials.shape().to_vec();
    let (count, dim) = elementwise(client, chunks * n);
    seed_partials_kernel::launch::<R>(
        client,
        count,
        dim,
        arg(g, &[batch, layout.rows]),
        arg(u, &[batch, nj as usize, 2, br as usize]),
        arg(&coefs.coef, &[n, 4]),
        arg(&partials, &partial_shape),
        to_u32("batch", batch),
        rows,
        br,
        nj,
        to_u32("batch chunk", chunk),
        finish,
        dtypes.float,
    );
    if !finish {
        let (count, dim) = elementwise(client, n);
        seed_reduce_kernel::launch::<R>(
            client,
            count,
            dim,
            arg(&partials, &partial_shape),
            arg(&coefs.coef, &[n, 4]),
            arg(&grad, &[n, 2]),
            dtypes.float,
        );
    }
    grad
}

#[cfg(all(test, feature = "wgpu"))]
mod tests {
    use super::*;
    use crate::cube::test_utils::{TestEnv, paper_cases};
    use crate::formats::paper::kernels::{project_blocks, seed_coefficients};
    use crate::formats::paper::reference::layer_backward;
    use crate::testing::{PaperSeeds, assert_close, random_vec, rng};

    #[test]
    fn matches_reference() {
        let Some(env) = TestEnv::new() else { return };
        let mut rng = rng(107);
        for (layout, batch) in paper_cases(&mut rng) {
            let seeds = PaperSeeds::random(&mut rng, layout.num_blocks());
            let x = random_vec(&mut rng, batch * layout.cols);
            let g = random_vec(&mut rng, batch * layout.rows);
            let (coords, bits) = env.seeds(&seeds.coords, &seeds.bits);
            let coefs = seed_coefficients(&env.client, env.dtypes, &coords, &bits, &layout);
            let gt = env.floats(&g, &[batch, layout.rows]);
            let xt = env.floats(&x, &[batch, layout.cols]);
            let p = project_blocks(&env.client, env.dtypes, &xt, &gt, &coefs, &layout, false);
            let want = layer_backward(&seeds.params, &layout, &x, &g, batch, 0.1)
                .unwrap()
                .coords;
            // The default chunk (one chunk: a single launch), then chunks that divide the
            // batch, do not divide it, and hold one row each.
            for chunk in [BATCH_CHUNK, 1, 3, 4, batch] {
                let got = env.read(&seed_gradients_chunked(
                    &env.client,
                    env.dtypes,
                    &gt,
                    &p.u,
                    &coefs,
                    &layout,
                    chunk,
                ));
                assert_close(
                    &got,
                    &want,
                    1e-5,
                    &format!("seed grads {layout:?} x{batch} chunk {chunk}"),
                );
            }
        }
    }
}
