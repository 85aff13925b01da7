//! The paper format's tensor-op layer (what the default bodies of [`crate::RbeBackend`] run
//! on a backend without kernels of its own) against the native CPU path of Flex, which
//! `op.rs` checks against the f64 reference, and its tensor-op bit rule against the
//! reference transitions. Flex and NdArray do not use the tensor-op layer for f32, so this
//! is what keeps it honest.

use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use rand::SeedableRng;
use rand::rngs::StdRng;

use burn::module::ParamId;
use rbe_kernels::formats::paper::reference::apply_transition_counts;

use super::{Flex, paper_spec};
use crate::halves::halves_to_hi;
use crate::testing::{random_seeds, rel_err, verification_cases};
use crate::{BitFlips, FormatId, RbeBackend, RbeKernel, RbeSeedsRecord};

fn floats(t: FloatTensor<Flex>) -> Vec<f64> {
    Tensor::<Flex, 2>::from_primitive(TensorPrimitive::Float(t))
        .into_data()
        .to_vec::<f32>()
        .expect("f32")
        .into_iter()
        .map(f64::from)
        .collect()
}

fn upload(values: &[f64], shape: [usize; 2]) -> FloatTensor<Flex> {
    let v: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Tensor::<Flex, 2>::from_data(TensorData::new(v, shape), &Default::default())
        .into_primitive()
        .tensor()
}

#[test]
fn tensor_op_bodies_match_the_native_path() {
    let device = Default::default();
    let mut rng = StdRng::seed_from_u64(31);
    for (layout, batch) in verification_cases(&mut rng, 30) {
        let packed = random_seeds(&mut rng, layout.num_blocks());
        let (seed_coords, seed_bits) =
            RbeSeedsRecord::<Flex>::upload(&packed, FormatId::Paper, &device);
        let spec = paper_spec(layout, RbeKernel::ClosedForm, Some(0.1));
        // Values on a 1/8 grid: the transition counts must agree exactly.
        let mut grid = |n: usize| rbe_kernels::testing::grid_values(&mut rng, n).1;
        let (x, g) = (grid(batch * layout.cols), grid(batch * layout.rows));
        let coords = || seed_coords.clone().into_primitive().tensor();
        let bits = || seed_bits.clone().into_primitive();
        let bits_tensor = || seed_bits.clone();
        let x = || upload(&x, [batch, layout.cols]);
        let g = || upload(&g, [batch, layout.rows]);

        let err = rel_err(
            &floats(
                spec.format
                    .tensor_forward::<Flex>(x(), coords(), bits_tensor(), &layout),
            ),
            &floats(Flex::rbe_forward(x(), coords(), bits(), None, &spec)),
        );
        assert!(err <= 1e-5, "forward {layout} batch {batch}: {err:e}");
        let err = rel_err(
            &floats(
                spec.format
                    .tensor_decode::<Flex>(coords(), bits_tensor(), &layout),
            ),
            &floats(Flex::rbe_decode(coords(), bits(), &spec)),
        );
        assert!(err <= 1e-5, "decode {layout}: {err:e}");

        let got = spec.format.tensor_backward::<Flex>(
            x(),
            coords(),
            bits_tensor(),
            g(),
            &layout,
            spec.wanted(true),
        );
        let want = Flex::rbe_backward(x(), coords(), bits(), g(), &spec, true);
        let err = rel_err(
            &floats(got.x.expect("asked")),
            &floats(want.x.expect("asked")),
        );
        assert!(err <= 1e-5, "grad_x {layout} batch {batch}: {err:e}");
        let err = rel_err(&floats(got.coords), &floats(want.coords));
        assert!(err <= 1e-5, "grad_seed {layout} batch {batch}: {err:e}");
        let counts = floats(want.signal.expect("threshold set"));
        assert_eq!(floats(got.signal.expect("threshold set")), counts);

        // The paper's bit rule, in tensor ops, against the reference transitions.
        let moved = FormatId::Paper.step_bits(
            ParamId::new(),
            bits_tensor(),
            Tensor::<Flex, 2>::from_primitive(TensorPrimitive::Float(upload(
                &counts,
                [layout.num_blocks(), 4],
            ))),
            &mut BitFlips::default(),
        );
        let moved = moved
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .expect("i64");
        for (s, seed) in packed.iter().enumerate() {
            let c = &counts[4 * s..4 * s + 4];
            let want = apply_transition_counts(seed.hi, [0, 1, 2, 3].map(|k| c[k] as i32));
            assert_eq!(
                halves_to_hi(moved[2 * s], moved[2 * s + 1]),
                want,
                "transitions {layout} seed {s}"
            );
        }
    }
}
