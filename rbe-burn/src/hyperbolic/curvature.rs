//! [`Curvature`]: the curvature magnitude `c > 0` of a layer, fixed or trained.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use crate::RbeError;

/// Trained curvatures are floored here: `softplus` underflows to 0 for a very negative raw
/// value, where the ball radius `1/sqrt(c)` is infinite.
pub const MIN_CURVATURE: f64 = 1e-5;

/// Beyond this raw value `softplus(x) = x` to f64 precision; below it, `exp(x)` cannot
/// overflow (see [`softplus`]).
const SOFTPLUS_LINEAR: f64 = 20.0;

/// How a layer's curvature magnitude `c` is set.
///
/// ```
/// use rbe_burn::hyperbolic::CurvatureConfig;
/// let json = serde_json::to_string(&CurvatureConfig::Learned { init: 1.0 }).unwrap();
/// let back: CurvatureConfig = serde_json::from_str(&json).unwrap();
/// assert_eq!(back, CurvatureConfig::Learned { init: 1.0 });
/// ```
#[derive(Config, Debug, PartialEq)]
pub enum CurvatureConfig {
    /// A constant `c`; not a parameter.
    Fixed(f64),
    /// A trained `c = softplus(raw)`, starting at `init` (`raw = softplus^-1(init)`), so
    /// any optimizer step keeps it positive.
    Learned {
        /// The initial `c`.
        init: f64,
    },
}

impl CurvatureConfig {
    /// The initial value of `c`.
    pub fn initial(&self) -> f64 {
        match *self {
            Self::Fixed(c) | Self::Learned { init: c } => c,
        }
    }

    /// Checks that `c` is positive and finite.
    pub fn validate(&self) -> Result<(), RbeError> {
        let c = self.initial();
        if c.is_finite() && c > 0.0 {
            Ok(())
        } else {
            Err(RbeError::NonPositiveCurvature(c))
        }
    }

    /// Builds the curvature.
    ///
    /// # Panics
    /// If `c` is not positive and finite; [`CurvatureConfig::try_init`] returns the error.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Curvature<B> {
        self.try_init(device)
            .unwrap_or_else(|err| panic!("CurvatureConfig::init: {err}"))
    }

    /// Builds the curvature, or returns [`RbeError::NonPositiveCurvature`].
    pub fn try_init<B: Backend>(&self, device: &B::Device) -> Result<Curvature<B>, RbeError> {
        self.validate()?;
        let scalar = |v: f64| Tensor::<B, 1>::from_data(TensorData::new(vec![v], [1]), device);
        Ok(match *self {
            Self::Fixed(c) => Curvature {
                raw: None,
                fixed: Some(scalar(c)),
            },
            Self::Learned { init } => Curvature {
                raw: Some(Param::from_tensor(scalar(inverse_softplus(
                    init.max(MIN_CURVATURE),
                )))),
                fixed: None,
            },
        })
    }
}

/// The curvature magnitude `c > 0` of one layer: a trained parameter `c = softplus(raw)`
/// or a constant.
///
/// A fixed `c` is a plain tensor, not a parameter: it is not in the record (the
/// configuration restores it) and no optimizer sees it.
#[derive(Module, Debug)]
pub struct Curvature<B: Backend> {
    /// The trained raw value, `[1]`; `c = max(softplus(raw), MIN_CURVATURE)`.
    pub raw: Option<Param<Tensor<B, 1>>>,
    /// The constant `c`, `[1]`, when not trained.
    pub fixed: Option<Tensor<B, 1>>,
}

impl<B: Backend> Curvature<B> {
    /// `c` as a `[1]` tensor: `softplus(raw)` (floored at [`MIN_CURVATURE`]) when learned,
    /// the constant otherwise.
    pub fn value(&self) -> Tensor<B, 1> {
        match (&self.raw, &self.fixed) {
            (Some(raw), _) => softplus(raw.val()).clamp_min(MIN_CURVATURE),
            (None, Some(c)) => c.clone(),
            (None, None) => unreachable!("a Curvature holds a raw parameter or a constant"),
        }
    }

    /// `c`, read back to the host (a device sync).
    pub fn value_f64(&self) -> f64 {
        self.value()
            .into_data()
            .convert::<f64>()
            .to_vec::<f64>()
            .expect("a float tensor")[0]
    }

    /// Whether `c` is trained.
    pub fn is_learned(&self) -> bool {
        self.raw.is_some()
    }
}

/// `softplus(x) = ln(1 + e^x)`, as `ln(1 + e^min(x, 20)) + max(x - 20, 0)`: Burn's
/// `ln(e^x + 1)` overflows for `x > 88` in f32. Both pieces are smooth away from the
/// switch at 20, where they agree to `2e-9`, so the gradient is `sigmoid(x)` everywhere
/// (an `|x|`-based form has the wrong gradient at 0).
pub fn softplus<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.clone().clamp_max(SOFTPLUS_LINEAR).exp().log1p()
        + x.sub_scalar(SOFTPLUS_LINEAR).clamp_min(0.0)
}

/// The `raw` with `softplus(raw) = c`, for `c > 0`.
pub fn inverse_softplus(c: f64) -> f64 {
    if c > SOFTPLUS_LINEAR {
        c
    } else {
        c.exp_m1().ln()
    }
}
