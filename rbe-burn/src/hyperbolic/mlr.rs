//! [`HypMlr`]: the hyperbolic multinomial logistic regression of Ganea et al. 2018.

use crate::RbeError;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

use super::linear::check_on_manifold;
use super::{
    Curvature, CurvatureConfig, HyperbolicModel, MIN_GAP, asinh_odd, c2, lorentz, norm, poincare,
    sq_norm, sqrt_c2,
};

/// Configuration of a [`HypMlr`].
#[derive(Config, Debug)]
pub struct HypMlrConfig {
    /// Input features (the ball dimension).
    pub d_input: usize,
    /// Classes.
    pub n_classes: usize,
    /// The model of the inputs; Lorentz inputs are mapped to the ball first.
    #[config(default = "HyperbolicModel::Poincare")]
    pub model: HyperbolicModel,
    /// The curvature magnitude `c`, fixed or trained.
    #[config(default = "CurvatureConfig::Fixed(1.0)")]
    pub curvature: CurvatureConfig,
}

impl HypMlrConfig {
    /// Builds the head.
    ///
    /// # Panics
    /// If the configuration is invalid; [`HypMlrConfig::try_init`] returns the error.
    pub fn init<B: Backend>(&self, device: &B::Device) -> HypMlr<B> {
        self.try_init(device)
            .unwrap_or_else(|err| panic!("HypMlrConfig::init: {err}"))
    }

    /// Builds the head, or says why the configuration is invalid.
    pub fn try_init<B: Backend>(&self, device: &B::Device) -> Result<HypMlr<B>, RbeError> {
        if self.d_input == 0 || self.n_classes == 0 {
            return Err(RbeError::Config(format!(
                "dimensions must be positive, got {} inputs, {} classes",
                self.d_input, self.n_classes
            )));
        }
        let curvature = self.curvature.try_init(device)?;
        let k = 1.0 / (self.d_input as f64).sqrt();
        let shape = [self.n_classes, self.d_input];
        Ok(HypMlr {
            // Offsets near the origin, normals as a Linear weight: the head starts close to
            // a Euclidean linear classifier on log_0(x).
            offsets: Param::from_tensor(Tensor::random(
                shape,
                Distribution::Uniform(-1e-2, 1e-2),
                device,
            )),
            normals: Param::from_tensor(Tensor::random(
                shape,
                Distribution::Uniform(-k, k),
                device,
            )),
            curvature,
            model: self.model,
            d_input: self.d_input,
        })
    }
}

/// Hyperbolic multinomial logistic regression (Ganea, Bécigneul and Hofmann 2018, §3.1):
/// the logit of class `k` is the signed distance of `x` to the gyroplane through `p_k` with
/// normal `a_k`, scaled by `lambda_{p_k} |a_k|`:
///
/// `logit_k(x) = (lambda_{p_k} |a_k| / sqrt(c)) asinh(2 sqrt(c) <z_k, a_k> / ((1 - c|z_k|^2) |a_k|))`,
/// `z_k = (-p_k) ⊕ x`.
///
/// Parameters, all Euclidean: `p_k = exp_0(offsets_k)` and `a_k = (1 - c|p_k|^2) normals_k`
/// (the transport of `normals_k` from the origin to `p_k`), so
/// `lambda_{p_k}|a_k| = 2|normals_k|`. The logits are computed for all classes at once
/// from inner products (three `[n, d] x [d, K]` matmuls) and the identity
/// `1 - c|u ⊕ v|^2 = (1 - c|u|^2)(1 - c|v|^2) / D(u, v)`, which cancels the Möbius
/// denominator `D`: no `[n, K, d]` tensor and no cancellation near the boundary.
#[derive(Module, Debug)]
pub struct HypMlr<B: Backend> {
    /// The gyroplane offsets as tangent vectors at the origin, `[n_classes, d_input]`.
    pub offsets: Param<Tensor<B, 2>>,
    /// The gyroplane normals at the origin, `[n_classes, d_input]`.
    pub normals: Param<Tensor<B, 2>>,
    /// The curvature magnitude `c`.
    pub curvature: Curvature<B>,
    model: HyperbolicModel,
    d_input: usize,
}

impl<B: Backend> HypMlr<B> {
    /// Classes.
    pub fn n_classes(&self) -> usize {
        self.offsets.dims()[0]
    }

    /// The model of the inputs.
    pub fn model(&self) -> HyperbolicModel {
        self.model
    }

    fn check_shape(&self, x: &Tensor<B, 2>) -> Result<(), RbeError> {
        let [n, width] = x.dims();
        let want = match self.model {
            HyperbolicModel::Poincare => self.d_input,
            HyperbolicModel::Lorentz => self.d_input + 1,
        };
        if width != want {
            return Err(RbeError::shape("HypMlr input", &[n, want], &[n, width]));
        }
        Ok(())
    }

    /// The logits.
    ///
    /// # Shapes
    /// - `x`: `[n, d_input]` (Poincaré) or `[n, d_input + 1]` (Lorentz)
    /// - returns `[n, n_classes]`
    ///
    /// # Panics
    /// If the input has the wrong width; [`HypMlr::try_forward`] returns the error.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        if let Err(err) = self.check_shape(&x) {
            panic!("HypMlr::forward: {err}");
        }
        self.apply(x)
    }

    /// [`HypMlr::forward`], with a typed error for a wrong width, a non-finite input or a
    /// point off the manifold (see [`super::HypLinear::try_forward`]); reads the input back.
    pub fn try_forward(&self, x: Tensor<B, 2>) -> Result<Tensor<B, 2>, RbeError> {
        self.check_shape(&x)?;
        check_on_manifold(&x, self.curvature.value_f64(), self.model)?;
        Ok(self.apply(x))
    }

    fn apply(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let c = self.curvature.value();
        let x = match self.model {
            HyperbolicModel::Poincare => poincare::project(x, c.clone()),
            HyperbolicModel::Lorentz => lorentz::to_poincare(x, c.clone()),
        };
        let p = poincare::expmap0(self.offsets.val(), c.clone());
        let a = self.normals.val();
        mlr_logits(x, p, a, &c)
    }
}

/// The logits of [`HypMlr`] for points `x`, offsets `p` (points) and normals `a` (at the
/// origin).
///
/// With `w = -p_k`, `z = w ⊕ x = (A w + G_w x)/D`, `A = G_w + c|x - p_k|^2`,
/// `G_w = 1 - c|p_k|^2`, `G_x = 1 - c|x|^2`:
/// `2 sqrt(c) <z, a>/(1 - c|z|^2) = 2 sqrt(c) (G_w <x, a> - A <p_k, a>) / (G_w G_x)`.
///
/// # Shapes
/// - `x`: `[n, d]`, `p`, `a`: `[k, d]`, `c`: `[1]`
/// - returns `[n, k]`
pub(crate) fn mlr_logits<B: Backend>(
    x: Tensor<B, 2>,
    p: Tensor<B, 2>,
    a: Tensor<B, 2>,
    c: &Tensor<B, 1>,
) -> Tensor<B, 2> {
    let cc = c2(c);
    let sc = sqrt_c2(c);
    let xx = sq_norm(&x); // [n, 1]
    let pp = sq_norm(&p).transpose(); // [1, k]
    let a_norm = norm(&a).transpose(); // [1, k]
    let pa = (p.clone() * a.clone()).sum_dim(1).transpose(); // [1, k]
    let xp = x.clone().matmul(p.transpose()); // [n, k]
    let xa = x.matmul(a.transpose()); // [n, k]
    // Conformal gaps, floored (they are divided by; see `poincare::gap`).
    let g_w = (pp.clone() * cc.clone())
        .neg()
        .add_scalar(1.0)
        .clamp_min(MIN_GAP);
    let g_x = (xx.clone() * cc.clone())
        .neg()
        .add_scalar(1.0)
        .clamp_min(MIN_GAP);
    // |x - p|^2 >= 0; rounding can make the expanded form slightly negative.
    let dist_sq = (xx + pp - xp.mul_scalar(2.0)).clamp_min(0.0);
    let big_a = g_w.clone() + dist_sq * cc;
    let num = (g_w.clone() * xa - big_a * pa) * sc.clone().mul_scalar(2.0);
    // |a| is floored by `norm` (MIN_NORM), so a zero normal gives a zero logit, not 0/0.
    let arg = num / (g_w * g_x * a_norm.clone());
    asinh_odd(arg) * a_norm.mul_scalar(2.0) / sc
}
