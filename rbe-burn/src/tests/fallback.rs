//! The tensor-op default bodies of [`crate::RbeBackend`] (what a backend without kernels of
//! its own runs) against the native CPU path of Flex, which `op.rs` checks against the f64
//! reference. Flex and NdArray no longer use these bodies, so this is what keeps them
//! honest.

use burn::tensor::ops::FloatTensor;
use burn::tensor::{Int, Tensor, TensorData, TensorPrimitive};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Flex;
use crate::testing::{random_seeds, rel_err, verification_cases};
use crate::{RbeBackend, RbeKernel, RbeSeeds, RbeSpec, fallback};

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
        let seeds = RbeSeeds::<Flex>::from_packed(
            &random_seeds(&mut rng, layout.num_blocks()),
            (0.1, 2.0),
            &device,
        )
        .expect("valid seeds");
        let spec = RbeSpec {
            format: crate::SeedFormat::Paper,
            layout,
            kernel: RbeKernel::ClosedForm,
            transition_threshold: Some(0.1),
        };
        // Values on a 1/8 grid: the transition counts must agree exactly.
        let mut grid = |n: usize| -> Vec<f64> {
            (0..n)
                .map(|_| f64::from(rng.random_range(-8i32..8)) / 8.0)
                .collect()
        };
        let (x, g) = (grid(batch * layout.cols), grid(batch * layout.rows));
        let coords = || seeds.coords().into_primitive().tensor();
        let bits = || seeds.bits().into_primitive();
        let x = || upload(&x, [batch, layout.cols]);
        let g = || upload(&g, [batch, layout.rows]);

        let err = rel_err(
            &floats(fallback::forward::<Flex>(x(), coords(), bits(), &spec)),
            &floats(Flex::rbe_forward(x(), coords(), bits(), None, &spec)),
        );
        assert!(err <= 1e-5, "forward {layout} batch {batch}: {err:e}");
        let err = rel_err(
            &floats(fallback::decode::<Flex>(coords(), bits(), &spec)),
            &floats(Flex::rbe_decode(coords(), bits(), &spec)),
        );
        assert!(err <= 1e-5, "decode {layout}: {err:e}");

        let got = fallback::backward::<Flex>(x(), coords(), bits(), g(), &spec, true);
        let want = Flex::rbe_backward(x(), coords(), bits(), g(), &spec, true);
        let err = rel_err(
            &floats(got.x.expect("asked")),
            &floats(want.x.expect("asked")),
        );
        assert!(err <= 1e-5, "grad_x {layout} batch {batch}: {err:e}");
        let err = rel_err(&floats(got.coords), &floats(want.coords));
        assert!(err <= 1e-5, "grad_seed {layout} batch {batch}: {err:e}");
        let counts = floats(want.transitions.expect("threshold set"));
        assert_eq!(floats(got.transitions.expect("threshold set")), counts);

        let counts = upload(&counts, [layout.num_blocks(), 4]);
        let moved = |b: burn::tensor::ops::IntTensor<Flex>| {
            Tensor::<Flex, 2, Int>::from_primitive(b)
                .into_data()
                .convert::<i64>()
                .to_vec::<i64>()
                .expect("i64")
        };
        assert_eq!(
            moved(fallback::apply_transitions::<Flex>(bits(), counts.clone())),
            moved(Flex::rbe_apply_transitions(bits(), counts)),
            "apply_transitions {layout}"
        );
    }
}
