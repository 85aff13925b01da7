//! `dL/dx = G W` through the closed form, never forming `W` (the transpose of
//! [`super::fused_closed_form_matmul`]):
//! `Q[n, J, (a|b), i] = sum_I coef_IJ G[n, I*br + i]`, then
//! `dL/dx[n, J*bc + j] = sum_i C(i, j) Q[n, J, a, i] + S(i, j) Q[n, J, b, i]`.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use super::basis::{basis_cos, basis_sin};
use super::launch::{KernelDtypes, arg, dims, elementwise, empty};
use crate::BlockLayout;

/// One thread per `(n, J, i)`, summing over the block rows `I`.
#[cube(launch)]
fn gather_rows_kernel<F: Float>(
    g: &Tensor<F>,
    coef: &Tensor<F>,
    q: &mut Tensor<F>,
    rows: u32,
    br: u32,
    nj: u32,
    #[define(F)] _dtype: StorageType,
) {
    let pos = ABSOLUTE_POS;
    if pos >= q.len() / 2 {
        terminate!();
    }
    let (rows, br, nj) = (rows as usize, br as usize, nj as usize);
    let i = pos % br;
    let block = pos / br;
    let bj = block % nj;
    let n = block / nj;
    let ni = rows.div_ceil(br);
    let mut acc_a = F::new(0.0);
    let mut acc_b = F::new(0.0);
    for bi in 0..ni {
        let row = bi * br + i;
        if row < rows {
            let gv = g[n * rows + row];
            let c = (bi * nj + bj) * 4;
            acc_a += coef[c] * gv;
            acc_b += coef[c + 1] * gv;
        }
    }
    let out_a = block * 2 * br + i;
    let out_b = out_a + br;
    q[out_a] = acc_a;
    q[out_b] = acc_b;
}

/// One thread per input element, summing over the rows `i` of its block.
#[cube(launch)]
fn expand_cols_kernel<F: Float>(
    q: &Tensor<F>,
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
    let (colsu, bru, bcu, nju) = (cols as usize, br as usize, bc as usize, nj as usize);
    let col = pos % colsu;
    let n = pos / colsu;
    let bj = col / bcu;
    let j = col % bcu;
    let base = (n * nju + bj) * 2 * bru;
    let mut acc = F::new(0.0);
    for i in 0..bru {
        acc += basis_cos::<F>(i as u32, j as u32, br, bc) * q[base + i]
            + basis_sin::<F>(i as u32, j as u32, br, bc) * q[base + bru + i];
    }
    dx[pos] = acc;
}

/// `dL/dx = G W`.
///
/// Reference: `grad_x` of [`crate::reference::layer_backward`].
///
/// # Shapes
/// - `g`: `[batch, layout.rows]`; `coef`: `[n_blocks, 4]` from [`super::seed_coefficients`]
/// - returns `[batch, layout.cols]`
pub fn grad_input<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    g: &TensorHandle<R>,
    coef: &TensorHandle<R>,
    layout: &BlockLayout,
) -> TensorHandle<R> {
    let batch = g.shape()[0];
    let [rows, cols, br, bc, nj] = dims(layout);
    let q_shape = [batch, nj as usize, 2, br as usize];
    let q = empty(client, &q_shape, dtypes.float);
    let (count, dim) = elementwise(client, batch * nj as usize * br as usize);
    gather_rows_kernel::launch::<R>(
        client,
        count,
        dim,
        arg(g, &[batch, layout.rows]),
        arg(coef, &[layout.num_blocks(), 4]),
        arg(&q, &q_shape),
        rows,
        br,
        nj,
        dtypes.float,
    );
    let dx = empty(client, &[batch, layout.cols], dtypes.float);
    let (count, dim) = elementwise(client, batch * layout.cols);
    expand_cols_kernel::launch::<R>(
        client,
        count,
        dim,
        arg(&q, &q_shape),
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
    use crate::kernels::seed_coefficients;
    use crate::kernels::test_utils::*;
    use crate::reference::layer_backward;

    #[test]
    fn matches_reference() {
        let Some(env) = TestEnv::new() else { return };
        let mut rng = rng(106);
        for (layout, batch) in cases(&mut rng) {
            let seeds = random_seeds(&mut rng, layout.num_blocks());
            let x = random_vec(&mut rng, batch * layout.cols);
            let g = random_vec(&mut rng, batch * layout.rows);
            let (coords, bits) = env.seeds(&seeds);
            let coef = seed_coefficients(&env.client, env.dtypes, &coords, &bits);
            let gt = env.floats(&g, &[batch, layout.rows]);
            let got = env.read(&grad_input(&env.client, env.dtypes, &gt, &coef, &layout));
            let want = layer_backward(&seeds, &layout, &x, &g, batch, 0.1).unwrap();
            assert_close(
                &got,
                &want.grad_x,
                1e-5,
                &format!("grad_x {layout:?} x{batch}"),
            );
        }
    }
}
