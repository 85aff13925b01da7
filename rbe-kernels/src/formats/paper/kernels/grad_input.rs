//! `dL/dx = G W` through the closed form, never forming `W` (the transpose of
//! [`super::closed_form_forward`], docs/math.md §4):
//! `Q[n, J, (a|b), i] = sum_I coef_IJ G[n, I*br + i]` ([`super::project_blocks`] with
//! `gather`), then here
//! `dL/dx[n, J*bc + j] = sum_i C(i, j) Q[n, J, a, i] + S(i, j) Q[n, J, b, i]`.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use super::coefficients::Coefficients;
use crate::BlockLayout;
use crate::cube::launch::{KernelDtypes, arg, dims, elementwise, empty};

/// One thread per input element, summing over the rows `i` of its block; the basis comes
/// from the table.
#[cube(launch)]
fn expand_cols_kernel<F: Float>(
    q: &Tensor<F>,
    basis: &Tensor<F>,
    dx: &mut Tensor<F>,
    cols: u32,
    br: u32,
    bc: u32,
    nj: u32,
    #[define(F)] _dtype: StorageType,
) {
    let pos = ABSOLUTE_POS;
    if pos >= dx.len() {
        terminate!();
    }
    let (cols, br, bc, nj) = (cols as usize, br as usize, bc as usize, nj as usize);
    let col = pos % cols;
    let n = pos / cols;
    let bj = col / bc;
    let j = col % bc;
    let base = (n * nj + bj) * 2 * br;
    let sine = br * bc;
    let mut acc = F::new(0.0);
    for i in 0..br {
        let b = i * bc + j;
        acc += basis[b] * q[base + i] + basis[sine + b] * q[base + br + i];
    }
    dx[pos] = acc;
}

/// `dL/dx = G W` from `Q`: one launch.
///
/// Reference: `x` of [`crate::formats::paper::reference::layer_backward`].
///
/// # Shapes
/// - `q`: `[batch, nJ, 2, br]` from [`super::project_blocks`] with `gather`; `coefs`: from
///   [`super::seed_coefficients`] of `layout`
/// - returns `[batch, layout.cols]`
pub fn grad_input<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    q: &TensorHandle<R>,
    coefs: &Coefficients<R>,
    layout: &BlockLayout,
) -> TensorHandle<R> {
    let batch = q.shape()[0];
    let [_, cols, br, bc, nj] = dims(layout);
    let q_shape = [batch, nj as usize, 2, br as usize];
    let dx = empty(client, &[batch, layout.cols], dtypes.float);
    let (count, dim) = elementwise(client, batch * layout.cols);
    expand_cols_kernel::launch::<R>(
        client,
        count,
        dim,
        arg(q, &q_shape),
        arg(&coefs.basis, &[2, layout.block_rows, layout.block_cols]),
        arg(&dx, &[batch, layout.cols]),
        cols,
        br,
        bc,
        nj,
        dtypes.float,
    );
    dx
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
        let mut rng = rng(106);
        for (layout, batch) in paper_cases(&mut rng) {
            let seeds = PaperSeeds::random(&mut rng, layout.num_blocks());
            let x = random_vec(&mut rng, batch * layout.cols);
            let g = random_vec(&mut rng, batch * layout.rows);
            let (coords, bits) = env.seeds(&seeds.coords, &seeds.bits);
            let coefs = seed_coefficients(&env.client, env.dtypes, &coords, &bits, &layout);
            let xt = env.floats(&x, &[batch, layout.cols]);
            let gt = env.floats(&g, &[batch, layout.rows]);
            let p = project_blocks(&env.client, env.dtypes, &xt, &gt, &coefs, &layout, true);
            let q = p.q.expect("gathered");
            let got = env.read(&grad_input(&env.client, env.dtypes, &q, &coefs, &layout));
            let want = layer_backward(&seeds.params, &layout, &x, &g, batch, 0.1).unwrap();
            assert_close(
                &got,
                want.x.as_deref().expect("dL/dx"),
                1e-5,
                &format!("grad_x {layout:?} x{batch}"),
            );
        }
    }
}
