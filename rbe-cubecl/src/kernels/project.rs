//! Phase one of the closed-form product: project every column block of `x` onto the block
//! basis once. `U[n, J, 0, i] = sum_j C(i, j) x[n, J*bc + j]`, `U[n, J, 1, i]` with `S`.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use super::basis::{basis_cos, basis_sin};
use super::launch::{KernelDtypes, arg, dims, elementwise, empty};
use crate::BlockLayout;

/// One thread per `(n, J, i)`; `bc` multiply-adds each, about `2 B N` per row of `x`.
#[cube(launch)]
fn project_blocks_kernel<F: Float>(
    x: &Tensor<F>,
    u: &mut Tensor<F>,
    cols: u32,
    br: u32,
    bc: u32,
    nj: u32,
    #[define(F)] _dtype: StorageType,
) {
    let pos = ABSOLUTE_POS;
    if pos >= u.len() / 2 {
        terminate!();
    }
    let (cols, br, bc, nj) = (cols as usize, br as usize, bc as usize, nj as usize);
    let i = pos % br;
    let block = pos / br;
    let bj = block % nj;
    let n = block / nj;
    let mut acc_c = F::new(0.0);
    let mut acc_s = F::new(0.0);
    for j in 0..bc {
        let col = bj * bc + j;
        if col < cols {
            let v = x[n * cols + col];
            acc_c += basis_cos::<F>(i as u32, j as u32, br as u32, bc as u32) * v;
            acc_s += basis_sin::<F>(i as u32, j as u32, br as u32, bc as u32) * v;
        }
    }
    let out_c = block * 2 * br + i;
    let out_s = out_c + br;
    u[out_c] = acc_c;
    u[out_s] = acc_s;
}

/// `U`, the projections of `x` onto the block basis. Cropped columns count as zero.
///
/// Reference: `sum_j` of [`crate::reference::basis`] times `x`.
///
/// # Shapes
/// - `x`: `[batch, layout.cols]`
/// - returns `[batch, nJ, 2, layout.block_rows]`
pub fn project_blocks<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    x: &TensorHandle<R>,
    layout: &BlockLayout,
) -> TensorHandle<R> {
    let batch = x.shape()[0];
    let [_, cols, br, bc, nj] = dims(layout);
    let shape = [batch, nj as usize, 2, br as usize];
    let u = empty(client, &shape, dtypes.float);
    let (count, dim) = elementwise(client, batch * nj as usize * br as usize);
    project_blocks_kernel::launch::<R>(
        client,
        count,
        dim,
        arg(x, &[batch, layout.cols]),
        arg(&u, &shape),
        cols,
        br,
        bc,
        nj,
        dtypes.float,
    );
    u
}

#[cfg(all(test, feature = "wgpu"))]
mod tests {
    use super::*;
    use crate::kernels::test_utils::*;
    use crate::reference::basis;

    #[test]
    fn matches_reference() {
        let Some(env) = TestEnv::new() else { return };
        let mut rng = rng(102);
        for (layout, batch) in cases(&mut rng) {
            let x = random_vec(&mut rng, batch * layout.cols);
            let got = env.read(&project_blocks(
                &env.client,
                env.dtypes,
                &env.floats(&x, &[batch, layout.cols]),
                &layout,
            ));
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
