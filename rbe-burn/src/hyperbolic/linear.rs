//! [`HypLinear`]: the hyperbolic linear layer, a Möbius matrix-vector product followed by
//! a Möbius bias, in the Poincaré or the Lorentz model.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use serde::{Deserialize, Serialize};

use super::{Curvature, CurvatureConfig, LinearMap, lorentz, poincare};
use crate::RbeError;

/// Which model of hyperbolic space a layer's inputs and outputs live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum HyperbolicModel {
    /// The Poincaré ball: points `[n, d]`.
    #[default]
    Poincare,
    /// The hyperboloid: points `[n, d + 1]`, time coordinate first.
    Lorentz,
}

/// Configuration of a [`HypLinear`]: everything but the matrix.
///
/// [`HypLinearConfig::init`] builds a dense matrix (a Burn `Linear` without bias);
/// [`HypLinearConfig::init_with`] takes any [`LinearMap`] built beforehand, e.g. an
/// [`crate::RbeLinear`].
///
/// ```
/// use burn::backend::NdArray;
/// use burn::tensor::Tensor;
/// use rbe_burn::RbeLinearConfig;
/// use rbe_burn::hyperbolic::{CurvatureConfig, HypLinearConfig, HyperbolicModel, poincare};
///
/// let device = Default::default();
/// let config = HypLinearConfig::new(4, 3)
///     .with_model(HyperbolicModel::Poincare)
///     .with_curvature(CurvatureConfig::Learned { init: 1.0 });
/// let dense = config.init::<NdArray>(&device);
/// let matrix = RbeLinearConfig::new(4, 3)
///     .with_block_size(2)
///     .with_bias(false)
///     .init::<NdArray>(&device);
/// let rbe = config.init_with(matrix, &device);
/// let c = dense.curvature.value();
/// let x = poincare::expmap0(Tensor::<NdArray, 2>::ones([2, 4], &device), c);
/// assert_eq!(dense.forward(x.clone()).dims(), [2, 3]);
/// assert_eq!(rbe.forward(x).dims(), [2, 3]);
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
    /// The curvature magnitude `c`, fixed or trained.
    #[config(default = "CurvatureConfig::Fixed(1.0)")]
    pub curvature: CurvatureConfig,
    /// Whether to add a Möbius bias.
    #[config(default = true)]
    pub bias: bool,
}

impl HypLinearConfig {
    /// Builds the layer with a dense matrix.
    ///
    /// # Panics
    /// If the configuration is invalid; [`HypLinearConfig::try_init`] returns the error.
    pub fn init<B: Backend>(&self, device: &B::Device) -> HypLinear<B> {
        self.try_init(device)
            .unwrap_or_else(|err| panic!("HypLinearConfig::init: {err}"))
    }

    /// Builds the layer with a dense matrix (a Burn `Linear` without bias), or says why the
    /// configuration is invalid ([`RbeError::NonPositiveCurvature`] for `c <= 0`,
    /// [`RbeError::Config`] for a zero dimension).
    pub fn try_init<B: Backend>(&self, device: &B::Device) -> Result<HypLinear<B>, RbeError> {
        self.check_dims()?;
        // Checked before the matrix is drawn, so an invalid curvature costs no weight.
        self.curvature.validate()?;
        let mut linear = LinearConfig::new(self.d_input, self.d_output)
            .with_bias(false)
            .init(device);
        // Drawn now: a clone of a lazy parameter draws its own values, so a fresh layer
        // saved through a clone would store another weight than it uses.
        linear.weight = Param::initialized(linear.weight.id, linear.weight.val());
        self.try_init_with(linear, device)
    }

    /// Builds the layer around `matrix`.
    ///
    /// # Panics
    /// If the configuration is invalid or `matrix` does not map `d_input` to `d_output`
    /// features; [`HypLinearConfig::try_init_with`] returns the error.
    pub fn init_with<B: Backend, M: LinearMap<B>>(
        &self,
        matrix: M,
        device: &B::Device,
    ) -> HypLinear<B, M> {
        self.try_init_with(matrix, device)
            .unwrap_or_else(|err| panic!("HypLinearConfig::init_with: {err}"))
    }

    /// Builds the layer around `matrix`, or says why it cannot:
    /// [`RbeError::NonPositiveCurvature`] for `c <= 0`, [`RbeError::Config`]
    /// for a zero dimension or a matrix of other dimensions than the configuration's.
    ///
    /// The matrix is used as given: its own bias, if it has one, is applied in the tangent
    /// space at the origin (see [`LinearMap`]).
    pub fn try_init_with<B: Backend, M: LinearMap<B>>(
        &self,
        matrix: M,
        device: &B::Device,
    ) -> Result<HypLinear<B, M>, RbeError> {
        self.check_dims()?;
        let (d_in, d_out) = (matrix.d_input(), matrix.d_output());
        if (d_in, d_out) != (self.d_input, self.d_output) {
            return Err(RbeError::Config(format!(
                "the matrix maps {d_in} -> {d_out} features, the configuration says {} -> {}",
                self.d_input, self.d_output
            )));
        }
        let curvature = self.curvature.try_init(device)?;
        // A small tangent vector at the origin: the layer starts close to the plain
        // Möbius matrix-vector product, as a Euclidean layer starts close to `x W`.
        let bias = self.bias.then(|| {
            Param::from_tensor(Tensor::random(
                [self.d_output],
                Distribution::Uniform(-1e-2, 1e-2),
                device,
            ))
        });
        Ok(HypLinear::from_parts(matrix, bias, curvature, self.model))
    }

    fn check_dims(&self) -> Result<(), RbeError> {
        if self.d_input == 0 || self.d_output == 0 {
            return Err(RbeError::Config(format!(
                "dimensions must be positive, got {} -> {}",
                self.d_input, self.d_output
            )));
        }
        Ok(())
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
/// The matrix `M` is any [`LinearMap`]: a dense Burn `Linear` (the default, on any backend)
/// or an [`crate::RbeLinear`] (on an [`crate::RbeBackend`]). `b` is a tangent vector at the
/// origin, `[d_output]`: a plain Euclidean parameter any optimizer trains. The curvature is
/// [`Curvature`], fixed or trained.
// `M` carries no bound here: Burn's `Module` derive adds `Module` and `AutodiffModule`
// bounds of its own, and a bound on the struct would have to hold for the inner backend's
// module too, which the derive does not state.
#[derive(Module, Debug)]
pub struct HypLinear<B: Backend, M = Linear<B>> {
    /// The linear map `M`.
    pub matrix: M,
    /// The bias as a tangent vector at the origin (Poincaré coordinates), `[d_output]`.
    pub bias: Option<Param<Tensor<B, 1>>>,
    /// The curvature magnitude `c`.
    pub curvature: Curvature<B>,
    model: HyperbolicModel,
}

impl<B: Backend, M> HypLinear<B, M> {
    /// A layer from its parts (for tests and conversions); the dimensions are the matrix's.
    ///
    /// # Shapes
    /// - `bias`: `[matrix.d_output()]`
    pub fn from_parts(
        matrix: M,
        bias: Option<Param<Tensor<B, 1>>>,
        curvature: Curvature<B>,
        model: HyperbolicModel,
    ) -> Self {
        Self {
            matrix,
            bias,
            curvature,
            model,
        }
    }

    /// The model of the inputs and outputs.
    pub fn model(&self) -> HyperbolicModel {
        self.model
    }

    /// The curvature magnitude `c`, read back (a device sync).
    pub fn curvature(&self) -> f64 {
        self.curvature.value_f64()
    }
}

impl<B: Backend, M: LinearMap<B>> HypLinear<B, M> {
    /// Input features (the ball dimension).
    pub fn d_input(&self) -> usize {
        self.matrix.d_input()
    }

    /// Output features (the ball dimension).
    pub fn d_output(&self) -> usize {
        self.matrix.d_output()
    }

    /// The coordinates per point for `d` ball dimensions in this layer's model.
    fn width(&self, d: usize) -> usize {
        match self.model {
            HyperbolicModel::Poincare => d,
            HyperbolicModel::Lorentz => d + 1,
        }
    }

    fn check_shape(&self, x: &Tensor<B, 2>) -> Result<(), RbeError> {
        let [n, width] = x.dims();
        let want = self.width(self.d_input());
        if width != want {
            return Err(RbeError::shape("HypLinear input", &[n, want], &[n, width]));
        }
        Ok(())
    }

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
    /// ([`RbeError::OutsideManifold`]); `x_0 <= 0` or `|c<x,x>_L + 1|` above `1e-3`
    /// times `c(x_0^2 + |x_s|^2)` on the hyperboloid ([`RbeError::OffHyperboloid`]).
    /// The check reads the input back to the host.
    pub fn try_forward(&self, x: Tensor<B, 2>) -> Result<Tensor<B, 2>, RbeError> {
        self.check_shape(&x)?;
        check_on_manifold(&x, self.curvature(), self.model)?;
        Ok(self.apply(x))
    }

    fn apply(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let c = self.curvature.value();
        let [n, _] = x.dims();
        let d_output = self.d_output();
        let bias = self
            .bias
            .as_ref()
            .map(|b| b.val().unsqueeze::<2>().expand([n, d_output]));
        match self.model {
            HyperbolicModel::Poincare => {
                let x = poincare::project(x, c.clone());
                let h = poincare::mobius_matvec(|t| self.matrix.apply(t), x, c.clone());
                match bias {
                    Some(b) => poincare::mobius_add(h, poincare::expmap0(b, c.clone()), c),
                    None => h,
                }
            }
            HyperbolicModel::Lorentz => {
                let x = lorentz::project(x, c.clone());
                let t = lorentz::logmap0(x, c.clone());
                let [_, d1] = t.dims();
                let mt = self.matrix.apply(t.clone().slice([0..n, 1..d1]));
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
) -> Result<(), RbeError> {
    let [_, width] = x.dims();
    let values = x
        .clone()
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .map_err(|err| RbeError::Config(format!("reading the input back: {err:?}")))?;
    if values.iter().any(|v| !v.is_finite()) {
        return Err(RbeError::NonFinite("the input".into()));
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
                return Err(RbeError::OutsideManifold { norm, limit });
            }
        }
        HyperbolicModel::Lorentz => {
            for row in values.chunks(width) {
                let time = row[0];
                let space: f64 = row[1..].iter().map(|v| v * v).sum();
                let inner = space - time * time;
                let off = (c * inner + 1.0).abs() > 1e-3 * (1.0 + c * (time * time + space));
                if time <= 0.0 || off {
                    return Err(RbeError::OffHyperboloid {
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
