//! `dL/dr` and `dL/dtheta` per seed through the projections `<dW_IJ, C>` and `<dW_IJ, S>`
//! (docs/math.md §4), without forming `dW`:
//! `dL/da_IJ = sum_{n,i} G[n, I*br + i] U[n, J, 0, i]`, `dL/db_IJ` with `U[n, J, 1, i]`,
//! then `dL/dr = dL/da da/dr + dL/db db/dr` and `dL/dtheta = dL/da b - dL/db a`.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use super::launch::{KernelDtypes, arg, dims, elementwise, empty, to_u32};
use crate::BlockLayout;

/// One thread per seed, summing `batch * br` products.
#[cube(launch)]
fn seed_gradients_kernel<F: Float>(
    g: &Tensor<F>,
    u: &Tensor<F>,
    coef: &Tensor<F>,
    grad: &mut Tensor<F>,
    batch: u32,
    rows: u32,
    br: u32,
    nj: u32,
    #[define(F)] _dtype: StorageType,
) {
    let s = ABSOLUTE_POS;
    if s >= coef.shape(0) {
        terminate!();
    }
    let (batch, rows, br, nj) = (batch as usize, rows as usize, br as usize, nj as usize);
    let bi = s / nj;
    let bj = s % nj;
    let mut da = F::new(0.0);
    let mut db = F::new(0.0);
    for n in 0..batch {
        let base = (n * nj + bj) * 2 * br;
        for i in 0..br {
            let row = bi * br + i;
            if row < rows {
                let gv = g[n * rows + row];
                da += gv * u[base + i];
                db += gv * u[base + br + i];
            }
        }
    }
    let c = s * 4;
    let (a, b, a_r, b_r) = (coef[c], coef[c + 1], coef[c + 2], coef[c + 3]);
    let out = s * 2;
    grad[out] = da * a_r + db * b_r;
    grad[out + 1] = da * b - db * a;
}

/// `dL/d(r, theta)` per seed.
///
/// Reference: `grad_r`, `grad_theta` of [`crate::reference::layer_backward`].
///
/// # Shapes
/// - `g`: `[batch, layout.rows]`; `u`: `[batch, nJ, 2, br]` from
///   [`super::project_blocks`] of the layer input; `coef`: `[n_blocks, 4]`
/// - returns `[n_blocks, 2]`
pub fn seed_gradients<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    g: &TensorHandle<R>,
    u: &TensorHandle<R>,
    coef: &TensorHandle<R>,
    layout: &BlockLayout,
) -> TensorHandle<R> {
    let batch = g.shape()[0];
    let n = layout.num_blocks();
    let [rows, _, br, _, nj] = dims(layout);
    let grad = empty(client, &[n, 2], dtypes.float);
    let (count, dim) = elementwise(client, n);
    seed_gradients_kernel::launch::<R>(
        client,
        count,
        dim,
        arg(g, &[batch, layout.rows]),
        arg(u, &[batch, nj as usize, 2, br as usize]),
        arg(coef, &[n, 4]),
        arg(&grad, &[n, 2]),
        to_u32("batch", batch),
        rows,
        br,
        nj,
        dtypes.float,
    );
    grad
}

#[cfg(all(test, feature = "wgpu"))]
mod tests {
    use super::*;
    use crate::kernels::test_utils::*;
    use crate::kernels::{project_blocks, seed_coefficients};
    use crate::reference::layer_backward;

    #[test]
    fn matches_reference() {
        let Some(env) = TestEnv::new() else { return };
        let mut rng = rng(107);
        for (layout, batch) in cases(&mut rng) {
            let seeds = random_seeds(&mut rng, layout.num_blocks());
            let x = random_vec(&mut rng, batch * layout.cols);
            let g = random_vec(&mut rng, batch * layout.rows);
            let (coords, bits) = env.seeds(&seeds);
            let coef = seed_coefficients(&env.client, env.dtypes, &coords, &bits);
            let u = project_blocks(
                &env.client,
                env.dtypes,
                &env.floats(&x, &[batch, layout.cols]),
                &layout,
            );
            let gt = env.floats(&g, &[batch, layout.rows]);
            let got = env.read(&seed_gradients(
                &env.client,
                env.dtypes,
                &gt,
                &u,
                &coef,
                &layout,
            ));
            let want = layer_backward(&seeds, &layout, &x, &g, batch, 0.1).unwrap();
            let want: Vec<f64> = want
                .grad_r
                .iter()
                .zip(&want.grad_theta)
                .flat_map(|(r, t)| [*r, *t])
                .collect();
            assert_close(
                &got,
                &want,
                1e-5,
                &format!("seed grads {layout:?} x{batch}"),
            );
        }
    }
}
