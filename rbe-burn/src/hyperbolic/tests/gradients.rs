//! Autodiff gradients of the layers against central finite differences: in f64 on
//! `NdArray<f64>` for every input, weight, bias and the raw curvature; in f32 with a coarse
//! step on every backend (WGPU included) for a sample of them.

use burn::backend::Autodiff;
use burn::module::Param;
use burn::nn::Linear;

use super::*;
use crate::hyperbolic::{Curvature, HypLinear, HypMlrConfig, HyperbolicModel, lorentz as l};

const D_IN: usize = 4;
const D_OUT: usize = 3;

/// Everything the loss depends on, as flat f64 vectors.
#[derive(Clone)]
struct Params {
    x: Vec<f64>,
    w: Vec<f64>,
    b: Vec<f64>,
    raw: Vec<f64>,
    /// The curvature the Lorentz inputs are converted with (not differentiated).
    c_in: f64,
}

impl Params {
    fn random(rng: &mut StdRng, c: f64, n_classes: usize) -> Self {
        let radii = [0.0, 0.3, 0.6, 0.8, 0.85];
        Self {
            x: ball_points(rng, &radii, D_IN, c),
            w: normals(rng, D_IN * D_OUT.max(n_classes))
                .iter()
                .map(|v| v * 0.6)
                .collect(),
            b: normals(rng, D_OUT.max(n_classes) * D_IN)
                .iter()
                .map(|v| v * 0.3)
                .collect(),
            raw: vec![crate::hyperbolic::curvature::inverse_softplus(c)],
            c_in: c,
        }
    }

    fn get_mut(&mut self, which: usize) -> &mut Vec<f64> {
        match which {
            0 => &mut self.x,
            1 => &mut self.w,
            2 => &mut self.b,
            _ => &mut self.raw,
        }
    }
}

const NAMES: [&str; 4] = ["x", "weight", "bias", "raw c"];

fn curvature<B: Backend>(raw: &[f64], device: &B::Device) -> Curvature<B> {
    Curvature {
        raw: Some(Param::from_tensor(curv::<B>(raw[0], device))),
        fixed: None,
    }
}

/// `sum(HypLinear(x) * u)`; also returns the tensors whose gradients are wanted.
fn linear_loss<B: Backend>(
    p: &Params,
    model: HyperbolicModel,
    u: &[f64],
    device: &B::Device,
) -> Loss<B, 1> {
    let x = rows::<B>(&p.x, D_IN, device).require_grad();
    let c0 = curvature::<B>(&p.raw, device);
    let x_in = match model {
        HyperbolicModel::Poincare => x.clone(),
        // The same points on the hyperboloid, for a constant c (the layer's projection
        // adapts them to its own c).
        HyperbolicModel::Lorentz => l::from_poincare(x.clone(), curv::<B>(p.c_in, device)),
    };
    let w = rows::<B>(&p.w[..D_IN * D_OUT], D_OUT, device).require_grad();
    let b = Tensor::<B, 1>::from_data(TensorData::new(p.b[..D_OUT].to_vec(), [D_OUT]), device)
        .require_grad();
    let layer = HypLinear::from_parts(
        Linear {
            weight: Param::from_tensor(w.clone()),
            bias: None,
        },
        Some(Param::from_tensor(b.clone())),
        c0,
        model,
    );
    let raw = layer.curvature.raw.as_ref().unwrap().val();
    let out = layer.forward(x_in);
    let ut = rows::<B>(&u[..out.dims().iter().product()], out.dims()[1], device);
    let loss = (out * ut).sum();
    (loss, x, w, b, raw)
}

/// `sum(HypMlr(x) * u)` with offsets `b` and normals `w`, both `[k, d]`.
fn mlr_loss<B: Backend>(p: &Params, k: usize, u: &[f64], device: &B::Device) -> Loss<B, 2> {
    let x = rows::<B>(&p.x, D_IN, device).require_grad();
    let normals_t = rows::<B>(&p.w[..k * D_IN], D_IN, device).require_grad();
    let offsets_t = rows::<B>(&p.b[..k * D_IN], D_IN, device).require_grad();
    let mut mlr = HypMlrConfig::new(D_IN, k).init::<B>(device);
    mlr.offsets = Param::from_tensor(offsets_t.clone());
    mlr.normals = Param::from_tensor(normals_t.clone());
    mlr.curvature = curvature::<B>(&p.raw, device);
    let raw = mlr.curvature.raw.as_ref().unwrap().val();
    let out = mlr.forward(x.clone());
    let ut = rows::<B>(&u[..out.dims().iter().product()], k, device);
    ((out * ut).sum(), x, normals_t, offsets_t, raw)
}

/// Compares autodiff with central differences of `loss` on the inner backend for the
/// coordinates `pick(which, len)` of each parameter.
fn compare(
    p: &Params,
    loss: impl Fn(&Params) -> f64,
    grads: [Vec<f64>; 4],
    h: f64,
    tol: f64,
    pick: impl Fn(usize) -> Vec<usize>,
    what: &str,
) {
    for (which, grad) in grads.iter().enumerate() {
        for i in pick(grad.len()) {
            let bump = |d: f64| {
                let mut q = p.clone();
                q.get_mut(which)[i] += d;
                loss(&q)
            };
            let fd = (bump(h) - bump(-h)) / (2.0 * h);
            let err = (grad[i] - fd).abs();
            assert!(
                err <= tol * (1.0 + fd.abs()),
                "{what}: d/d {}[{i}]: autodiff {} vs finite differences {fd}",
                NAMES[which],
                grad[i]
            );
        }
    }
}

/// The loss and the leaves: `x`, the weight (normals), the bias (offsets), `raw c`.
type Loss<B, const DB: usize> = (
    Tensor<B, 1>,
    Tensor<B, 2>,
    Tensor<B, 2>,
    Tensor<B, DB>,
    Tensor<B, 1>,
);

fn grads_of<B: Backend, const DB: usize>(
    (loss, x, w, b, raw): Loss<Autodiff<B>, DB>,
) -> [Vec<f64>; 4] {
    let g = loss.backward();
    [
        host(x.grad(&g).unwrap()),
        host(w.grad(&g).unwrap()),
        host(b.grad(&g).unwrap()),
        host(raw.grad(&g).unwrap()),
    ]
}

fn scalar<B: Backend>(t: Tensor<B, 1>) -> f64 {
    host(t)[0]
}

/// Step and tolerance of the all-coordinates check. `Tensor::from_data` resolves to the
/// device's default float dtype, which for `NdArray<f64>` turned out to be f32 here, so the
/// check is sized for f32.
const FD_STEP: f64 = 1e-2;
const FD_TOL: f64 = 1e-2;

/// Every coordinate of every parameter.
#[cfg(feature = "ndarray")]
#[test]
fn finite_differences_f64() {
    type B = burn::backend::NdArray<f64>;
    let device = &Default::default();
    let mut rng = rng(41);
    let all = |n: usize| (0..n).collect::<Vec<_>>();
    for c in [1.0, 0.4] {
        for model in [HyperbolicModel::Poincare, HyperbolicModel::Lorentz] {
            let p = Params::random(&mut rng, c, 0);
            let u = normals(&mut rng, 64);
            let grads = grads_of::<B, 1>(linear_loss::<Autodiff<B>>(&p, model, &u, device));
            let loss = |q: &Params| scalar(linear_loss::<B>(q, model, &u, device).0);
            let what = format!("HypLinear {model:?} c={c}");
            compare(&p, loss, grads, FD_STEP, FD_TOL, all, &what);
        }
        let k = 3;
        let p = Params::random(&mut rng, c, k);
        let u = normals(&mut rng, 64);
        let grads = grads_of::<B, 2>(mlr_loss::<Autodiff<B>>(&p, k, &u, device));
        let loss = |q: &Params| scalar(mlr_loss::<B>(q, k, &u, device).0);
        compare(
            &p,
            loss,
            grads,
            FD_STEP,
            FD_TOL,
            all,
            &format!("HypMlr c={c}"),
        );
    }
}

/// A sample of coordinates in f32 with a coarse step, autodiff and differences both on `B`.
///
/// On WGPU this is what caught GPU `tanh`/`artanh` cancelling to 0 near the origin (now
/// replaced by series there, see `small.rs`).
fn check_fd_f32<B: Backend>(device: &B::Device) {
    let mut rng = rng(42);
    let c = 0.8;
    // The first and a middle coordinate of each parameter.
    let pick = |n: usize| if n > 1 { vec![0, n / 2 + 1] } else { vec![0] };
    for model in [HyperbolicModel::Poincare, HyperbolicModel::Lorentz] {
        let p = Params::random(&mut rng, c, 0);
        let u = normals(&mut rng, 64);
        let grads = grads_of::<B, 1>(linear_loss::<Autodiff<B>>(&p, model, &u, device));
        let loss = |q: &Params| scalar(linear_loss::<B>(q, model, &u, device).0);
        compare(
            &p,
            loss,
            grads,
            1e-2,
            1e-2,
            pick,
            &format!("HypLinear {model:?} f32"),
        );
    }
    let k = 3;
    let p = Params::random(&mut rng, c, k);
    let u = normals(&mut rng, 64);
    let grads = grads_of::<B, 2>(mlr_loss::<Autodiff<B>>(&p, k, &u, device));
    let loss = |q: &Params| scalar(mlr_loss::<B>(q, k, &u, device).0);
    compare(&p, loss, grads, 1e-2, 1e-2, pick, "HypMlr f32");
}

backend_tests!(
    finite_differences_f32,
    [ndarray, flex, wgpu_fusion],
    |B, device| { check_fd_f32::<B>(device) }
);
