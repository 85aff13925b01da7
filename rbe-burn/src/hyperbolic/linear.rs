//! [`HypLinear`]: the hyperbolic linear layer, a Möbius matrix-vector product followed by
//! a Möbius bias, in the Poincaré or the Lorentz model.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use serde::{Deserialize, Serialize};

use super::{Curvature, CurvatureConfig, HyperbolicError, lorentz, poincare};
use crate::{RbeBackend, RbeLinear, RbeLinearConfig};

/// Which model of hyperbolic space a layer's inputs and outputs live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum HyperbolicModel {
    /// The Poincaré ball: points `[n, d]`.
    #[default]
    Poincare,
    /// The hyperboloid: points `[n, d + 1]`, time coordinate first.
    Lorentz,
}

/// Which linear map a [`HypLinear`] wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum MatrixKind {
    /// A Burn `Linear` without bias.
    #[default]
    Dense,
    /// An [`RbeLinear`] without bias or residual, with square blocks of side `block_size`.
    Rbe {
        /// Side of the square blocks one seed generates.
        block_size: usize,
    },
}

/// The linear map of a [`HypLinear`]: a dense `Linear` or an [`RbeLinear`], both without
/// bias (the layer's bias is a Möbius bias).
// A layer holds one matrix, built once: boxing the larger variant would save nothing, and
// Burn's `Module` derive does not see through a `Box`.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum HypMatrix<B: Backend> {
    /// A Burn `Linear`, weight `[d_input, d_output]`.
    Dense(Linear<B>),
    /// An RBE layer.
    Rbe(RbeLinear<B>),
}

impl<B: RbeBackend> HypMatrix<B> {
    /// `x M^T`.
    ///
    /// # Shapes
    /// - `x`: `[n, d_input]`
    /// - returns `[n, d_output]`
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            Self::Dense(linear) => linear.forward(x),
            Self::Rbe(rbe) => rbe.forward(x),
        }
    }
}

/// Configuration of a [`HypLinear`].
///
/// ```
/// use burn::backend::NdArray;
/// use burn::tensor::Tensor;
/// use rbe_burn::hyperbolic::{CurvatureConfig, HypLinearConfig, HyperbolicModel, poincare};
///
/// let device = Default::default();
/// let layer = HypLinearConfig::new(4, 3)
///     .with_model(HyperbolicModel::Poincare)
///     .with_curvature(CurvatureConfig::Learned { init: 1.0 })
///     .init::<NdArray>(&device);
/// let c = layer.curvature.value();
/// let x = poincare::expmap0(Tensor::<NdArray, 2>::ones([2, 4], &device), c);
/// assert_eq!(layer.forward(x).dims(), [2, 3]);
/// ```
#[derive(Config, Debug)]
pub struct HypLinearConfig {
    /// Input features (the ball dimension; the hyperboloid has one coordinate more).
    pub d_input: usize,
    /// Output features.
    pub d_output: usize,
    /// The model of the inputs and outputs.
    #[config(default = "HyperbolicModel::Poincare")]
    pub model: HyperbolicModel,
    /// The linear map: dense or RBE.
    #[config(default = "MatrixKind::Dense")]
    pub matrix: MatrixKind,
    /// The curvature magnitude `c`, fixed or trained.
    #[config(default = "CurvatureConfig::Fixed(1.0)")]
    pub curvature: CurvatureConfig,
    /// Whether to add a Möbius bias.
    #[config(default = true)]
    pub bias: bool,
}

impl HypLinearConfig {
    /// Builds the layer.
    ///
    /// # Panics
    /// If the configuration is invalid; [`HypLinearConfig::try_init`] returns the error.
    pub fn init<B: Backend>(&self, device: &B::Device) -> HypLinear<B> {
        self.try_init(device)
            .unwrap_or_else(|err| panic!("HypLinearConfig::init: {err}"))
    }

    /// Builds the layer, or says why the configuration is invalid
    /// ([`HyperbolicError::NonPositiveCurvature`] for `c <= 0`).
    pub fn try_init<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<HypLinear<B>, HyperbolicError> {
        if self.d_input == 0 || self.d_output == 0 {
            return Err(HyperbolicError::Config(format!(
                "dimensions must be positive, got {} -> {}",
                self.d_input, self.d_output
            )));
        }
        let curvature = self.curvature.try_init(device)?;
        let matrix = match self.matrix {
            MatrixKind::Dense => {
                let mut linear = LinearConfig::new(self.d_input, self.d_output)
                    .with_bias(false)
                    .init(device);
                // Drawn now: a clone of a lazy parameter draws its own values, so a fresh
                // layer saved through a clone would store another weight than it uses.
                linear.weight = Param::initialized(linear.weight.id, linear.weight.val());
                HypMatrix::Dense(linear)
            }
            MatrixKind::Rbe { block_size } => HypMatrix::Rbe(
                RbeLinearConfig::new(self.d_input, self.d_output)
                    .with_bias(false)
                    .with_block_size(block_size)
                    .try_init(device)?,
            ),
        };
        // A small tangent vector at the origin: the layer starts close to the plain
        // Möbius matrix-vector product, as a Euclidean layer starts close to `x W`.
        let bias = self.bias.then(|| {
            Param::from_tensor(Tensor::random(
                [self.d_output],
                Distribution::Uniform(-1e-2, 1e-2),
                device,
            ))
        });
        Ok(HypLinear::from_parts(
            matrix,
            bias,
            curvature,
            self.model,
            self.d_input,
            self.d_output,
        ))
    }
}

/// A hyperbolic linear layer: `y = (M ⊗_c x) ⊕_c exp_0(b)`.
///
/// - Poincaré: `M ⊗_c x = exp_0(M log_0(x))` ([`poincare::mobius_matvec`], which is Ganea et
///   al.'s Möbius matrix-vector product), then Möbius addition of the bias point
///   `exp_0(b)`.
/// - Lorentz: the same map in hyperboloid coordinates, applied in the tangent space at the
///   origin: `h = exp_0(M log_0(x))` on the spatial coordinates, then the bias as
///   `exp_h(P_{o->h}((0, 2b)))` (parallel transport from the origin), which is how Möbius
///   addition reads on the hyperboloid. The factor 2 is the differential of the isometry
///   from the ball to the hyperboloid at the origin, so both models compute the same
///   function for the same parameters (a test checks this).
///
/// `b` is a tangent vector at the origin, `[d_output]`: a plain Euclidean parameter any
/// optimizer trains. The curvature is [`Curvature`], fixed or trained.
#[derive(Module, Debug)]
pub struct HypLinear<B: Backend> {
    /// The linear map `M`.
    pub matrix: HypMatrix<B>,
    /// The bias as a tangent vector at the origin (Poincaré coordinates), `[d_output]`.
    pub bias: Option<Param<Tensor<B, 1>>>,
    /// The curvature magnitude `c`.
    pub curvature: Curvature<B>,
    model: HyperbolicModel,
    d_input: usize,
    d_output: usize,
}

impl<B: Backend> HypLinear<B> {
    /// A layer from its parts (for tests and conversions).
    pub fn from_parts(
        matrix: HypMatrix<B>,
        bias: Option<Param<Tensor<B, 1>>>,
        curvature: Curvature<B>,
        model: HyperbolicModel,
        d_input: usize,
        d_output: usize,
    ) -> Self {
        Self {
            matrix,
            bias,
            curvature,
            model,
            d_input,
            d_output,
        }
    }

    /// The model of the inputs and outputs.
    pub fn model(&self) -> HyperbolicModel {
        self.model
    }

    /// Input features (the ball dimension).
    pub fn d_input(&self) -> usize {
        self.d_input
    }

    /// Output features (the ball dimension).
    pub fn d_output(&self) -> usize {
        self.d_output
    }

    /// The curvature magnitude `c`, read back (a device sync).
    pub fn curvature(&self) -> f64 {
        self.curvature.value_f64()
    }

    /// The coordinates per point for `d` ball dimensions in this layer's model.
    fn width(&self, d: usize) -> usize {
        match self.model {
            HyperbolicModel::Poincare => d,
            HyperbolicModel::Lorentz => d + 1,
        }
    }

    fn check_shape(&self, x: &Tensor<B, 2>) -> Result<(), HyperbolicError> {
        let [n, width] = x.dims();
        let want = self.width(self.d_input);
        if width != want {
            return Err(HyperbolicError::shape(
                "HypLinear input",
                &[n, want],
                &[n, width],
            ));
        }
        Ok(())
    }
}

impl<B: RbeBackend> HypLinear<B> {
    /// Applies the layer.
    ///
    /// The input is projected onto the manifold first (a no-op for points on it), so
    /// `forward` never reads the tensor back; [`HypLinear::try_forward`] rejects points off
    /// the manifold instead.
    ///
    /// # Shapes
    /// - Poincaré: `x`: `[n, d_input]`, returns `[n, d_output]`
    /// - Lorentz: `x`: `[n, d_input + 1]`, returns `[n, d_output + 1]`
    ///
    /// # Panics
    /// If the input has the wrong width.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        if let Err(err) = self.check_shape(&x) {
            panic!("HypLinear::forward: {err}");
        }
        self.apply(x)
    }

    /// [`HypLinear::forward`], with a typed error for a wrong width, a non-finite input,
    /// or a point off the manifold: norm `>= 1/sqrt(c)` in the ball
    /// ([`HyperbolicError::OutsideManifold`]); `x_0 <= 0` or `|c<x,x>_L + 1|` above `1e-3`
    /// times `c(x_0^2 + |x_s|^2)` on the hyperboloid ([`HyperbolicError::OffHyperboloid`]).
    /// The check reads the input back to the host.
    pub fn try_forward(&self, x: Tensor<B, 2>) -> Result<Tensor<B, 2>, HyperbolicError> {
        self.check_shape(&x)?;
        check_on_manifold(&x, self.curvature(), self.model)?;
        Ok(self.apply(x))
    }

    fn apply(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let c = self.curvature.value();
        let [n, _] = x.dims();
        let bias = self
            .bias
            .as_ref()
            .map(|b| b.val().unsqueeze::<2>().expand([n, self.d_output]));
        match self.model {
            HyperbolicModel::Poincare => {
                let x = poincare::project(x, c.clone());
                let h = poincare::mobius_matvec(|t| self.matrix.forward(t), x, c.clone());
                match bias {
                    Some(b) => poincare::mobius_add(h, poincare::expmap0(b, c.clone()), c),
                    None => h,
                }
            }
            HyperbolicModel::Lorentz => {
                let x = lorentz::project(x, c.clone());
                let t = lorentz::logmap0(x, c.clone());
                let [_, d1] = t.dims();
                let mt = self.matrix.forward(t.clone().slice([0..n, 1..d1]));
                let zero = t.slice([0..n, 0..1]);
                let h = lorentz::expmap0(Tensor::cat(vec![zero.clone(), mt], 1), c.clone());
                match bias {
                    Some(b) => {
                        // (0, 2b): the Poincaré tangent b in hyperboloid coordinates.
                        let v = Tensor::cat(vec![zero, b.mul_scalar(2.0)], 1);
                        let v = lorentz::transport0(h.clone(), v, c.clone());
                        lorentz::expmap(h, v, c)
                    }
                    None => h,
                }
            }
        }
    }
}

/// Checks on the host that every row of `x` is a finite point of `model` with curvature `c`.
pub(crate) fn check_on_manifold<B: Backend>(
    x: &Tensor<B, 2>,
    c: f64,
    model: HyperbolicModel,
) -> Result<(), HyperbolicError> {
    let [_, width] = x.dims();
    let values = x
        .clone()
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .map_err(|err| HyperbolicError::Config(format!("reading the input back: {err:?}")))?;
    if values.iter().any(|v| !v.is_finite()) {
        return Err(HyperbolicError::NonFinite("the input".into()));
    }
    if width == 0 {
        return Ok(());
    }
    match model {
        HyperbolicModel::Poincare => {
            let limit = 1.0 / c.sqrt();
            let norm = values
                .chunks(width)
                .map(|row| row.iter().map(|v| v * v).sum::<f64>().sqrt())
                .fold(0.0, f64::max);
            if norm >= limit {
                return Err(HyperbolicError::OutsideManifold { norm, limit });
            }
        }
        HyperbolicModel::Lorentz => {
            for row in values.chunks(width) {
                let time = row[0];
                let space: f64 = row[1..].iter().map(|v| v * v).sum();
                let inner = space - time * time;
                let off = (c * inner + 1.0).abs() > 1e-3 * (1.0 + c * (time * time + space));
                if time <= 0.0 || off {
                    return Err(HyperbolicError::OffHyperboloid {
                        inner,
                        expected: -1.0 / c,
                        time,
                    });
                }
            }
        }
    }
    Ok(())
}
