//! The first phase of the backward pass, one launch over `(n, J, i)`:
//! - `U[n, J, 0, i] = sum_j C(i, j) x[n, J*bc + j]` (`S` for `U[n, J, 1, i]`), the
//!   projections the seed gradients need (docs/math.md §4);
//! - when `dL/dx` is wanted, `Q[n, J, 0, i] = sum_I a_IJ G[n, I*br + i]` (`b` for
//!   `Q[n, J, 1, i]`), the first half of `dL/dx = G W` ([`super::grad_input`]).
//!
//! Both share the index space, so one launch serves both.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use super::coefficients::Coefficients;
use crate::BlockLayout;
use crate::cube::held_extent;
use crate::cube::launch::{KernelDtypes, arg, dims, elementwise, empty};

/// The outputs of [`project_blocks`].
pub struct Projections<R: Runtime> {
    /// `U`, `[batch, nJ, 2, br]`.
    pub u: TensorHandle<R>,
    /// `Q`, `[batch, nJ, 2, br]`, when asked for.
    pub q: Option<TensorHandle<R>>,
}

/// One thread per `(n, J, i)`: `bc` multiply-adds for `U`, `nI` for `Q`. The basis comes
/// from the table, a row of which the thread reads contiguously.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn project_blocks_kernel<F: Float>(
    x: &Tensor<F>,
    g: &Tensor<F>,
    basis: &Tensor<F>,
    coef: &Tensor<F>,
    u: &mut Tensor<F>,
    q: &mut Tensor<F>,
    rows: u32,
    cols: u32,
    br: u32,
    bc: u32,
    nj: u32,
    #[comptime] gather: bool,
    #[define(F)] _dtype: StorageType,
) {
    let pos = ABSOLUTE_POS;
    if pos >= u.len() / 2 {
        terminate!();
    }
    let (rows, cols, br, bc, nj) = (
        rows as usize,
        cols as usize,
        br as usize,
        bc as usize,
        nj as usize,
    );
    let i = pos % br;
    let block = pos / br;
    let bj = block % nj;
    let n = block / nj;
    let out_c = block * 2 * br + i;

    let col0 = bj * bc;
    let width = held_extent(col0, bc, cols);
    let cells = br * bc;
    let mut acc_c = F::new(0.0);
    let mut acc_s = F::new(0.0);
    for j in 0..width {
        let v = x[n * cols + col0 + j];
        acc_c += basis[i * bc + j] * v;
        acc_s += basis[cells + i * bc + j] * v;
    }
    u[out_c] = acc_c;
    u[out_c + br] = acc_s;

    if comptime!(gather) {
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
        q[out_c] = acc_a;
        q[out_c + br] = acc_b;
    }
}

/// `U` of `x` and, when `gather`, `Q` of `g`. Cropped rows and columns count as zero.
///
/// Reference: `sum_j` of [`crate::formats::paper::reference::basis`] times `x`; `Q` is checked through
/// [`super::grad_input`].
///
/// # Shapes
/// - `x`: `[batch, layout.cols]`; `g`: `[batch, layout.rows]`; `coefs`: from
///   [`super::seed_coefficients`] of `layout`
/// - returns `u` and `q`, each `[batch, nJ, 2, layout.block_rows]`
pub fn project_blocks<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    x: &TensorHandle<R>,
    g: &TensorHandle<R>,
    coefs: &Coefficients<R>,
    layout: &BlockLayout,
    gather: bool,
) -> Projections<R> {
    let batch = x.shape()[0];
    let [rows, cols, br, bc, nj] = dims(layout);
    let shape = [batch, nj as usize, 2, br as usize];
    let u = empty(client, &shape, dtypes.float);
    // Without the gather `q` is never written; a one-element buffer fills the binding.
    let q = empty(client, if gather { &shape[..] } else { &[1] }, dtypes.float);
    let q_shape = q.shape().to_vec();
    let (count, dim) = elementwise(client, batch * nj as usize * br as usize);
    project_blocks_kernel::launch::<R>(
        client,
        count,
        dim,
        arg(x, &[batch, layout.cols]),
        arg(g, &[batch, layout.rows]),
        arg(&coefs.basis, &[2, layout.block_rows, layout.block_cols]),
        arg(&coefs.coef, &[layout.num_blocks(), 4]),
        arg(&u, &shape),
        arg(&q, &q_shape),
        rows,
        cols,
        br,
        bc,
        nj,
        gather,
        dtypes.float,
    );
    Projections {
        u,
        q: gather.then_some(q),
    }
}

#[cfg(all(test, feature = "wgpu"))]
mod tests {
    use super::*;
    use crate::cube::test_utils::{TestEnv, paper_cases};
    use crate::formats::paper::kernels::seed_coefficients;
    use crate::formats::paper::reference::basis;
    use crate::testing::{PaperSeeds, assert_close, random_vec, rng};

    #[test]
    fn matches_reference() {
        let Some(env) = TestEnv::new() else { return };
        let mut rng = rng(102);
        for (layout, batch) in paper_cases(&mut rng) {
            let x = random_vec(&mut rng, batch * layout.cols);
            let g = random_vec(&mut rng, batch * layout.rows);
            let seeds = PaperSeeds::random(&mut rng, layout.num_blocks());
            let (coords, bits) = env.seeds(&seeds.coords, &seeds.bits);
            let coefs = seed_coefficients(&env.client, env.dtypes, &coords, &bits, &layout);
            let got = project_blocks(
                &env.client,
                env.dtypes,
                &env.floats(&x, &[batch, layout.cols]),
                &env.floats(&g, &[batch, layout.rows]),
                &coefs,
                &layout,
                false,
            );
            assert!(got.q.is_none());
            let got = env.read(&got.u);
            let (br, bc, nj) = (layout.block_rows, layout.block_cols, layout.col_blocks());
            let mut want = vec![0.0; batch * nj * 2 * br];
            for n in 0..batch {
                for bj in 0..nj {
                    for i in 0..br {
                        for j in 0..bc {
                            let col = bj * bc + j;
                            if col < layout.cols {
                                let (c, s) = basis(i, j, br, bc);
                                let base = (n * nj + bj) * 2 * br + i;
                                want[base] += c * x[n * layout.cols + col];
                                want[base + br] += s * x[n * layout.cols + col];
                            }
                        }
                    }
                }
            }
            assert_close(&got, &want, 1e-5, &format!("project {layout:?}"));
        }
    }
}
