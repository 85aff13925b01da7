//! Checking a backend's RBE op against the f64 reference: what the tests assert and what
//! `examples/backend_check` prints.

use burn::tensor::ops::FloatTensor;
use burn::tensor::{Int, Tensor, TensorData, TensorPrimitive};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rbe_kernels::formats::paper::SeedFields;
use rbe_kernels::formats::paper::reference::{
    SeedParams, decode_dense, fused_forward_precise, layer_backward,
};
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

/// The shapes checked: full, cropped, one-row, one-column and rectangular blocks first, then
/// random ones; `(layout, batch)`.
pub fn verification_cases(rng: &mut StdRng, count: usize) -> Vec<(BlockLayout, usize)> {
    let fixed = [
        (1, 37, 8, 8, 3),
        (29, 1, 8, 8, 2),
        (1, 1, 4, 4, 1),
        (64, 64, 32, 32, 5),
        (33, 17, 5, 3, 4),
        (1, 100, 1, 7, 2),
        (70, 45, 16, 16, 17),
    ];
    let mut out: Vec<_> = fixed
        .iter()
        .map(|&(r, c, br, bc, b)| (BlockLayout::new(r, c, br, bc).expect("non-zero"), b))
        .collect();
    while out.len() < count {
        let br = rng.random_range(1..=16);
        let bc = if rng.random_bool(0.7) {
            br
        } else {
            rng.random_range(1..=16)
        };
        let (rows, cols) = (rng.random_range(1..=70), rng.random_range(1..=70));
        let layout = BlockLayout::new(rows, cols, br, bc).expect("non-zero");
        out.push((layout, rng.random_range(1..=20)));
    }
    out.truncate(count);
    out
}

/// Random valid seeds with every field populated.
pub fn random_seeds(rng: &mut StdRng, n: usize) -> Vec<Packed128> {
    (0..n)
        .map(|_| {
            Packed128::from_fields(SeedFields {
                r: rng.random_range(0.1..2.0),
                theta: rng.random_range(-3.2..3.2),
                cordic_rotations: rng.random(),
                reserved: rng.random(),
            })
            .expect("finite by construction")
        })
        .collect()
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
        let mut grid = |n: usize| -> Vec<f64> {
            (0..n)
                .map(|_| f64::from(rng.random_range(-8i32..8)) / 8.0)
                .collect()
        };
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

/// `max |got - want| / max |want|`.
pub fn rel_err(got: &[f64], want: &[f64]) -> f64 {
    if got.len() != want.len() {
        return f64::INFINITY;
    }
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
    got.iter()
        .zip(want)
        .fold(0f64, |m, (g, w)| m.max((g - w).abs()))
        / scale
}
