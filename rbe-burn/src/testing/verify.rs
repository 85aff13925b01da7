//! Checking a backend's RBE op against the f64 reference: what the tests assert and what
//! `examples/backend_check` prints.

use burn::tensor::ops::FloatTensor;
use burn::tensor::{Int, Tensor, TensorData, TensorPrimitive};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rbe_kernels::formats::paper::reference::{
    SeedParams, decode_dense, fused_forward_precise, layer_backward,
};
use rbe_kernels::testing::{self, Blocks, rel_err};
use rbe_kernels::{BlockLayout, DecodeCache, Packed128};

use crate::{PaperFormat, RbeBackend, RbeKernel, RbeSeeds, RbeSpec, SeedFormat};

/// The worst errors over all cases, each normwise: `max |got - want| / max |want|`, which
/// stays meaningful where single outputs cancel to near zero.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VerifyReport {
    /// The backend's name.
    pub backend: String,
    /// The forward kernel checked.
    pub kernel: RbeKernel,
    /// Number of random shapes.
    pub cases: usize,
    /// `y = x W^T` against [`fused_forward_precise`].
    pub forward_max_rel_err: f64,
    /// `dL/dx` against [`layer_backward`].
    pub grad_x_max_rel_err: f64,
    /// `dL/d(r, theta)` against [`layer_backward`].
    pub grad_seed_max_rel_err: f64,
    /// The decoded `W` against [`decode_dense`].
    pub decode_max_rel_err: f64,
    /// Whether every transition count equals the reference exactly. Inputs lie on a 1/8
    /// grid, so every `dW` is a multiple of 1/64 that f32 sums exactly in any order and
    /// none can sit on the threshold 0.1: equality is the only correct outcome.
    pub transitions_equal: bool,
}

/// `count` shapes for the paper format, `(layout, batch)`: the named edge cases of
/// [`rbe_kernels::testing::named_cases`] (full, cropped, one-row, one-column, rectangular and
/// oversized blocks) first, then random ones.
pub fn verification_cases(rng: &mut StdRng, count: usize) -> Vec<(BlockLayout, usize)> {
    let named = testing::named_cases(Blocks::Any).len();
    let mut cases = testing::cases(rng, Blocks::Any, count.saturating_sub(named), 20);
    cases.truncate(count);
    cases
}

/// `n` random paper-format seeds with every bit of `hi` populated
/// ([`testing::PaperSeeds::random`]).
pub fn random_seeds(rng: &mut StdRng, n: usize) -> Vec<Packed128> {
    testing::PaperSeeds::random(rng, n).packed
}

/// Runs `cases` random shapes through the backend's forward, backward and decode and
/// compares each with the f64 reference.
pub fn verify_backend<B: RbeBackend>(
    device: &B::Device,
    kernel: RbeKernel,
    cases: usize,
    seed: u64,
) -> VerifyReport {
    const THRESHOLD: f64 = 0.1;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut report = VerifyReport {
        backend: B::name(device),
        kernel,
        cases,
        forward_max_rel_err: 0.0,
        grad_x_max_rel_err: 0.0,
        grad_seed_max_rel_err: 0.0,
        decode_max_rel_err: 0.0,
        transitions_equal: true,
    };
    for (layout, batch) in verification_cases(&mut rng, cases) {
        let seeds = random_seeds(&mut rng, layout.num_blocks());
        let params: Vec<SeedParams> = seeds.iter().map(SeedParams::from).collect();
        let mut grid = |n: usize| rbe_kernels::testing::grid_values(&mut rng, n).1;
        let x = grid(batch * layout.cols);
        let g = grid(batch * layout.rows);
        let format = SeedFormat::Paper(
            PaperFormat::new()
                .with_kernel(kernel)
                .with_transitions(Some(THRESHOLD)),
        );
        let spec = RbeSpec {
            layout,
            format,
            signal: true,
            cache: DecodeCache::default(),
        };
        let s = RbeSeeds::<B>::from_packed(&seeds, &layout, format, device).expect("valid seeds");
        let (coords, bits) = (s.coords(), s.bits());
        let xt = upload::<B>(&x, [batch, layout.cols], device);
        let gt = upload::<B>(&g, [batch, layout.rows], device);

        let y = B::rbe_forward(
            prim(xt.clone()),
            prim(coords.clone()),
            int(&bits),
            None,
            &spec,
        );
        let want = fused_forward_precise(&params, &layout, &x, batch).expect("shapes match");
        report.forward_max_rel_err = report
            .forward_max_rel_err
            .max(rel_err(&download::<B>(y), &want));

        let w = B::rbe_decode(prim(coords.clone()), int(&bits), &spec);
        let want = decode_dense(&params, &layout).expect("shapes match");
        report.decode_max_rel_err = report
            .decode_max_rel_err
            .max(rel_err(&download::<B>(w), &want));

        let got = B::rbe_backward(prim(xt), prim(coords), int(&bits), prim(gt), &spec, true);
        let want = layer_backward(&params, &layout, &x, &g, batch, THRESHOLD).expect("shapes");
        report.grad_x_max_rel_err = report.grad_x_max_rel_err.max(rel_err(
            &download::<B>(got.x.expect("grad_x was asked for")),
            want.x.as_deref().expect("the reference computes dL/dx"),
        ));
        report.grad_seed_max_rel_err = report
            .grad_seed_max_rel_err
            .max(rel_err(&download::<B>(got.coords), &want.coords));
        let counts = got.signal.map(download::<B>).unwrap_or_default();
        report.transitions_equal &= Some(counts) == want.signal;
    }
    report
}

fn upload<B: RbeBackend>(values: &[f64], shape: [usize; 2], device: &B::Device) -> Tensor<B, 2> {
    let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn prim<B: RbeBackend>(t: Tensor<B, 2>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

fn int<B: RbeBackend>(t: &Tensor<B, 2, Int>) -> burn::tensor::ops::IntTensor<B> {
    t.clone().into_primitive()
}

fn download<B: RbeBackend>(t: FloatTensor<B>) -> Vec<f64> {
    Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(t))
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32 after convert")
        .into_iter()
        .map(f64::from)
        .collect()
}
