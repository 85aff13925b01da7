//! `y = x W^T` through the exact closed form (docs/math.md §3), without forming `W`.
//!
//! Every block is `a*C + b*S`, so with `U = project(x)` (one pass over `x` per column block,
//! [`super::project_blocks`]) each output is
//! `y[n, I*br + i] = sum_J a_IJ U[n, J, 0, i] + b_IJ U[n, J, 1, i]`:
//! about `2 M N / B + 2 B N` multiply-adds per row of `x` instead of `M N`.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use super::launch::{KernelDtypes, arg, dims, elementwise, empty};
use super::{project_blocks, seed_coefficients};
use crate::BlockLayout;

/// One thread per output; neighbouring threads share the block row `I`, so coefficient reads
/// are broadcasts and `U` reads are contiguous.
#[cube(launch)]
fn combine_kernel<F: Float>(
    u: &Tensor<F>,
    coef: &Tensor<F>,
    y: &mut Tensor<F>,
    rows: u32,
    br: u32,
    nj: u32,
    #[define(F)] _dtype: StorageType,
) {
    let pos = ABSOLUTE_POS;
    if pos >= y.len() {
        terminate!();
    }
    let (rows, br, nj) = (rows as usize, br as usize, nj as usize);
    let row = pos % rows;
    let n = pos / rows;
    let bi = row / br;
    let i = row % br;
    let mut acc = F::new(0.0);
    for bj in 0..nj {
        let c = (bi * nj + bj) * 4;
        let base = (n * nj + bj) * 2 * br + i;
        acc += coef[c] * u[base] + coef[c + 1] * u[base + br];
    }
    y[pos] = acc;
}

/// `y = x W^T`, `W` given by the seeds through the closed form.
///
/// Reference: [`crate::reference::layer_forward`].
///
/// # Shapes
/// - `x`: `[batch, layout.cols]`; `coords`, `bits`: `[n_blocks, 2]`
/// - returns `[batch, layout.rows]`
pub fn fused_closed_form_matmul<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    x: &TensorHandle<R>,
    coords: &TensorHandle<R>,
    bits: &TensorHandle<R>,
    layout: &BlockLayout,
) -> TensorHandle<R> {
    let coef = seed_coefficients(client, dtypes, coords, bits);
    let u = project_blocks(client, dtypes, x, layout);
    combine(client, dtypes, &u, &coef, layout)
}

/// The second phase alone, for callers that already hold `U` and the coefficients.
///
/// # Shapes
/// - `u`: `[batch, nJ, 2, br]`; `coef`: `[n_blocks, 4]`
/// - returns `[batch, layout.rows]`
pub fn combine<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    u: &TensorHandle<R>,
    coef: &TensorHandle<R>,
    layout: &BlockLayout,
) -> TensorHandle<R> {
    let batch = u.shape()[0];
    let [rows, _, br, _, nj] = dims(layout);
    let y = empty(client, &[batch, layout.rows], dtypes.float);
    let (count, dim) = elementwise(client, batch * layout.rows);
    combine_kernel::launch::<R>(
        client,
        count,
        dim,
        arg(u, &[batch, nj as usize, 2, br as usize]),
        arg(coef, &[layout.num_blocks(), 4]),
        arg(&y, &[batch, layout.rows]),
        rows,
        br,
        nj,
        dtypes.float,
    );
    y
}

#[cfg(all(test, feature = "wgpu"))]
mod tests {
    use super::*;
    use crate::kernels::test_utils::*;
    use crate::reference::layer_forward;

    #[test]
    fn matches_reference() {
        let Some(env) = TestEnv::new() else { return };
        let mut rng = rng(103);
        for (layout, batch) in cases(&mut rng) {
            let seeds = random_seeds(&mut rng, layout.num_blocks());
            let x = random_vec(&mut rng, batch * layout.cols);
            let (coords, bits) = env.seeds(&seeds);
            let xt = env.floats(&x, &[batch, layout.cols]);
            let got = env.read(&fused_closed_form_matmul(
                &env.client,
                env.dtypes,
                &xt,
                &coords,
                &bits,
                &layout,
            ));
            let want = layer_forward(&seeds, &layout, &x, batch).unwrap();
            assert_close(
                &got,
                &want,
                1e-5,
                &format!("closed form {layout:?} x{batch}"),
            );
        }
    }
}
