//! The dense weight matrix by the paper's CORDIC loop, one thread per weight. For
//! inspection and tests: layers never call it.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use super::constants::Cordic;
use super::cordic::cordic_weight;
use crate::BlockLayout;
use crate::cube::launch::{KernelDtypes, arg, dims, elementwise, empty};

#[cube(launch)]
fn cordic_decode_kernel<F: Float, I: Int>(
    coords: &Tensor<F>,
    bits: &Tensor<I>,
    w: &mut Tensor<F>,
    cols: u32,
    br: u32,
    bc: u32,
    nj: u32,
    #[comptime] cordic: Cordic,
    #[define(F, I)] _dtypes: [StorageType; 2],
) {
    let pos = ABSOLUTE_POS;
    if pos >= w.len() {
        terminate!();
    }
    let (colsu, bru, bcu, nju) = (cols as usize, br as usize, bc as usize, nj as usize);
    let row = pos / colsu;
    let col = pos % colsu;
    let s = (row / bru) * nju + col / bcu;
    w[pos] = cordic_weight::<F>(
        coords[s * 2],
        coords[s * 2 + 1],
        u32::cast_from(bits[s * 2 + 1]),
        (row % bru) as u32,
        (col % bcu) as u32,
        br,
        bc,
        cordic,
    );
}

/// `W`, row-major `[rows, cols]`, edge blocks cropped.
///
/// Reference: [`crate::formats::paper::reference::decode_dense`].
///
/// # Shapes
/// - `coords`, `bits`: `[n_blocks, 2]`
/// - returns `[layout.rows, layout.cols]`
pub fn cordic_decode<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    coords: &TensorHandle<R>,
    bits: &TensorHandle<R>,
    layout: &BlockLayout,
) -> TensorHandle<R> {
    let n = layout.num_blocks();
    let [_, cols, br, bc, nj] = dims(layout);
    let w = empty(client, &[layout.rows, layout.cols], dtypes.float);
    let (count, dim) = elementwise(client, layout.rows * layout.cols);
    cordic_decode_kernel::launch::<R>(
        client,
        count,
        dim,
        arg(coords, &[n, 2]),
        arg(bits, &[n, 2]),
        arg(&w, &[layout.rows, layout.cols]),
        cols,
        br,
        bc,
        nj,
        Cordic::PAPER,
        dtypes.both(),
    );
    w
}

#[cfg(all(test, feature = "wgpu"))]
mod tests {
    use super::*;
    use crate::cube::test_utils::{TestEnv, paper_cases};
    use crate::formats::paper::reference::decode_dense;
    use crate::testing::{PaperSeeds, assert_close, rng};

    #[test]
    fn matches_reference() {
        let Some(env) = TestEnv::new() else { return };
        let mut rng = rng(105);
        for (layout, _) in paper_cases(&mut rng) {
            let seeds = PaperSeeds::random(&mut rng, layout.num_blocks());
            let (coords, bits) = env.seeds(&seeds.coords, &seeds.bits);
            let got = env.read(&cordic_decode(
                &env.client,
                env.dtypes,
                &coords,
                &bits,
                &layout,
            ));
            let want = decode_dense(&seeds.params, &layout).unwrap();
            assert_close(&got, &want, 1e-5, &format!("decode {layout:?}"));
        }
    }
}
