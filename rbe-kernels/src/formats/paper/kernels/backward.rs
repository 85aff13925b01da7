//! The backward pass of the closed-form layer from its pieces, computing the coefficients
//! and the projections once and sharing them (docs/math.md §4, §5).

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use super::{grad_input, project_blocks, seed_coefficients, seed_gradients, transition_counts};
use crate::cube::launch::KernelDtypes;
use crate::{BlockLayout, Grads};

/// The gradients of `y = x W^T` given `g = dL/dy`.
///
/// Launches: the coefficients and basis (1), `U` together with `Q` when `grad_x` (1), the
/// seed gradients (1, or 2 past [`super::BATCH_CHUNK`] batch rows), `dL/dx` (1 when
/// `grad_x`) and the transition counts (1 when `threshold` is given): 3 to 6.
///
/// Reference: [`crate::formats::paper::reference::layer_backward`].
///
/// # Shapes
/// - `x`: `[batch, layout.cols]`; `g`: `[batch, layout.rows]`; `coords`, `bits`:
///   `[n_blocks, 2]`
/// - returns [`Grads`]: `x` `[batch, layout.cols]` when `grad_x`, `coords` `[n_blocks, 2]`,
///   `signal` (net transition counts) `[n_blocks, 4]` when a threshold is given
#[allow(clippy::too_many_arguments)]
pub fn backward<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    x: &TensorHandle<R>,
    g: &TensorHandle<R>,
    coords: &TensorHandle<R>,
    bits: &TensorHandle<R>,
    layout: &BlockLayout,
    grad_x: bool,
    threshold: Option<f32>,
) -> Grads<TensorHandle<R>> {
    let coefs = seed_coefficients(client, dtypes, coords, bits, layout);
    let projections = project_blocks(client, dtypes, x, g, &coefs, layout, grad_x);
    let grad_coords = seed_gradients(client, dtypes, g, &projections.u, &coefs, layout);
    let grad_x = projections
        .q
        .map(|q| grad_input(client, dtypes, &q, &coefs, layout));
    let transitions = threshold.map(|t| transition_counts(client, dtypes, x, g, t, layout));
    Grads {
        x: grad_x,
        coords: grad_coords,
        signal: transitions,
    }
}

#[cfg(all(test, feature = "wgpu"))]
mod tests {
    use super::*;
    use crate::cube::test_utils::TestEnv;
    use crate::formats::paper::reference::layer_backward;
    use crate::testing::{PaperSeeds, assert_close, random_vec, rng};

    #[test]
    fn matches_reference() {
        let Some(env) = TestEnv::new() else { return };
        let mut rng = rng(111);
        // Batches below, at and past one seed-gradient chunk.
        for (layout, batch) in [
            (BlockLayout::new(33, 17, 5, 3).unwrap(), 31),
            (BlockLayout::new(1, 37, 8, 8).unwrap(), 32),
            (BlockLayout::new(29, 1, 8, 8).unwrap(), 33),
            (BlockLayout::new(70, 45, 16, 16).unwrap(), 75),
        ] {
            let seeds = PaperSeeds::random(&mut rng, layout.num_blocks());
            let x = random_vec(&mut rng, batch * layout.cols);
            let g = random_vec(&mut rng, batch * layout.rows);
            let (coords, bits) = env.seeds(&seeds.coords, &seeds.bits);
            let xt = env.floats(&x, &[batch, layout.cols]);
            let gt = env.floats(&g, &[batch, layout.rows]);
            let want = layer_backward(&seeds.params, &layout, &x, &g, batch, 0.1).unwrap();
            let what = format!("{layout:?} x{batch}");
            for grad_x in [false, true] {
                let (c, d) = (&env.client, env.dtypes);
                let out = backward(c, d, &xt, &gt, &coords, &bits, &layout, grad_x, Some(0.1));
                assert_eq!(out.x.is_some(), grad_x);
                if let Some(dx) = &out.x {
                    assert_close(&env.read(dx), want.x.as_deref().unwrap(), 1e-5, &what);
                }
                assert_close(&env.read(&out.coords), &want.coords, 1e-5, &what);
                let counts = env.read(&out.signal.expect("threshold given"));
                let direct = env.read(&transition_counts(c, d, &xt, &gt, 0.1, &layout));
                assert_eq!(counts, direct, "{what}");
                let none = backward(c, d, &xt, &gt, &coords, &bits, &layout, grad_x, None);
                assert!(none.signal.is_none());
            }
        }
    }
}
