//! The equal-budget baseline: a linear layer whose weight is a rank-`k` product `U V`,
//! built on the crate's [`LowRankResidual`] with a bias added, trained from scratch or
//! taken from a trained dense layer by its truncated SVD.

use std::fmt;

use burn::module::{Initializer, Param, ParamId};
use burn::nn::Linear;
use burn::prelude::*;
use nalgebra::DMatrix;
use rbe_burn::{LowRankResidual, trainable_param};

/// Why a dense layer could not be factored.
#[derive(Debug, Clone, PartialEq)]
pub enum LowRankError {
    /// The rank is zero or above the weight's smaller side.
    Rank {
        /// The rank asked for.
        rank: usize,
        /// `[d_input, d_output]`.
        dims: [usize; 2],
    },
    /// The weight holds NaN or infinity, or could not be read back as f32.
    Weight(String),
}

impl fmt::Display for LowRankError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rank { rank, dims } => write!(
                f,
                "rank {rank} is not in 1..={} for a {}x{} weight",
                dims[0].min(dims[1]),
                dims[0],
                dims[1]
            ),
            Self::Weight(reason) => write!(f, "cannot factor the weight: {reason}"),
        }
    }
}

impl std::error::Error for LowRankError {}

/// Configuration of a [`LowRankLinear`].
#[derive(Config, Debug)]
pub struct LowRankLinearConfig {
    /// Input features.
    pub d_input: usize,
    /// Output features.
    pub d_output: usize,
    /// Rank `k` of the weight.
    pub rank: usize,
    /// Whether to add a bias.
    #[config(default = true)]
    pub bias: bool,
}

impl LowRankLinearConfig {
    /// Builds the layer.
    ///
    /// Unlike a fresh [`LowRankResidual`], whose `U` starts at zero, both factors are drawn
    /// like `Linear`'s weight (Kaiming-uniform, gain `1/sqrt(3)`) with their own fan-in, so
    /// `x Vᵀ` and `(x Vᵀ) Uᵀ` each keep the input's scale roughly as a dense layer would; the
    /// product is not a dense init, and need not be.
    pub fn init<B: Backend>(&self, device: &B::Device) -> LowRankLinear<B> {
        let init = Initializer::KaimingUniform {
            gain: 1.0 / 3f64.sqrt(),
            fan_out_only: false,
        };
        let (d_input, d_output, rank) = (self.d_input, self.d_output, self.rank);
        let v = init.init_with([rank, d_input], Some(d_input), Some(rank), device);
        let u = init.init_with([d_output, rank], Some(rank), Some(d_output), device);
        // Burn's initializers are lazy and a clone of a lazy parameter draws its own values:
        // materialise the bias, as `from_factors` does `U` and `V`, so clones agree.
        let bias = self.bias.then(|| {
            let bias = init.init_with([d_output], Some(d_input), Some(d_output), device);
            trainable_param(bias.id, bias.val())
        });
        LowRankLinear {
            factors: LowRankResidual::from_factors(u.val(), v.val()),
            bias,
        }
    }
}

/// `y = x Vᵀ Uᵀ + b`: `d_input * k + d_output * k` weights instead of `d_input * d_output`.
#[derive(Module, Debug)]
pub struct LowRankLinear<B: Backend> {
    /// `U` (`[d_output, k]`) and `V` (`[k, d_input]`).
    pub factors: LowRankResidual<B>,
    /// `[d_output]`.
    pub bias: Option<Param<Tensor<B, 1>>>,
}

impl<B: Backend> LowRankLinear<B> {
    /// The best rank-`rank` approximation of a trained dense layer (Eckart-Young): `U = U_k
    /// Σ_k`, `V = V_kᵀ` from the SVD of its weight, the bias copied. Also returns
    /// `||W - U V||_F / ||W||_F` of the f32 factors, the quantity `RbeLinear`'s encode
    /// report calls `rel_frobenius_error`.
    ///
    /// # Shapes
    /// - `linear.weight`: `[d_input, d_output]`, with `1 <= rank <= min(d_input, d_output)`
    pub fn from_linear(linear: &Linear<B>, rank: usize) -> Result<(Self, f64), LowRankError> {
        let weight = linear.weight.val();
        let device = weight.device();
        let [d_input, d_output] = weight.dims();
        if rank == 0 || rank > d_input.min(d_output) {
            return Err(LowRankError::Rank {
                rank,
                dims: [d_input, d_output],
            });
        }
        // `W` as the layer applies it, `[d_output, d_input]`, row-major in f64.
        let w: Vec<f64> = weight
            .transpose()
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .map_err(|err| LowRankError::Weight(format!("{err:?}")))?
            .into_iter()
            .map(f64::from)
            .collect();
        if w.iter().any(|v| !v.is_finite()) {
            return Err(LowRankError::Weight("it holds NaN or infinity".into()));
        }
        let svd = DMatrix::from_row_slice(d_output, d_input, &w).svd(true, true);
        let (Some(u), Some(vt)) = (&svd.u, &svd.v_t) else {
            return Err(LowRankError::Weight("the SVD returned no factors".into()));
        };
        // nalgebra does not promise sorted singular values: take the largest explicitly.
        let mut order: Vec<usize> = (0..svd.singular_values.len()).collect();
        order.sort_by(|&a, &b| svd.singular_values[b].total_cmp(&svd.singular_values[a]));
        let mut uf = vec![0f32; d_output * rank];
        let mut vf = vec![0f32; rank * d_input];
        for (k, &idx) in order.iter().take(rank).enumerate() {
            let sigma = svd.singular_values[idx];
            for r in 0..d_output {
                uf[r * rank + k] = (u[(r, idx)] * sigma) as f32;
            }
            for c in 0..d_input {
                vf[k * d_input + c] = vt[(idx, c)] as f32;
            }
        }
        // The error of the f32 factors actually stored, not of the f64 SVD.
        let mut err = 0.0f64;
        for r in 0..d_output {
            for c in 0..d_input {
                let approx: f64 = (0..rank)
                    .map(|k| f64::from(uf[r * rank + k]) * f64::from(vf[k * d_input + c]))
                    .sum();
                err += (w[r * d_input + c] - approx).powi(2);
            }
        }
        let norm = w.iter().map(|v| v * v).sum::<f64>().sqrt();
        let rel_error = if norm > 0.0 { err.sqrt() / norm } else { 0.0 };
        let layer = Self {
            factors: LowRankResidual::from_factors(
                Tensor::from_data(TensorData::new(uf, [d_output, rank]), &device),
                Tensor::from_data(TensorData::new(vf, [rank, d_input]), &device),
            ),
            bias: linear
                .bias
                .as_ref()
                .map(|b| trainable_param(ParamId::new(), b.val().detach())),
        };
        Ok((layer, rel_error))
    }

    /// Applies the layer to the last dimension, never forming `U V`: going through the
    /// `k`-wide bottleneck is the point of the layer.
    ///
    /// # Shapes
    /// - input: `[..., d_input]`
    /// - output: `[..., d_output]`
    pub fn forward<const D: usize>(&self, input: Tensor<B, D>) -> Tensor<B, D> {
        let mut dims = input.dims();
        let y = self.factors.forward(input.flatten::<2>(0, D - 2));
        dims[D - 1] = y.dims()[1];
        let y = y.reshape(dims);
        match &self.bias {
            Some(bias) => y + bias.val().unsqueeze(),
            None => y,
        }
    }

    /// Stored weight floats: `k * (d_input + d_output)`.
    pub fn weight_params(&self) -> usize {
        self.factors.u.shape().num_elements() + self.factors.v.shape().num_elements()
    }

    /// Stored bias floats.
    pub fn bias_params(&self) -> usize {
        self.bias.as_ref().map_or(0, |b| b.shape().num_elements())
    }

    /// Floats of the dense `Linear` of the same shape, bias included.
    pub fn dense_params(&self) -> usize {
        let [d_output, _] = self.factors.u.dims();
        let [_, d_input] = self.factors.v.dims();
        d_input * d_output + self.bias_params()
    }
}

#[cfg(all(test, feature = "ndarray"))]
mod tests {
    use burn::backend::NdArray;
    use burn::tensor::Tolerance;

    use super::*;

    type B = NdArray<f32>;

    #[test]
    fn forward_is_x_v_t_u_t_plus_bias_on_any_leading_dims() {
        let device = Default::default();
        let layer = LowRankLinearConfig::new(6, 5, 2).init::<B>(&device);
        assert_eq!(layer.weight_params(), 2 * (6 + 5));
        assert_eq!(layer.bias_params(), 5);
        assert_eq!(layer.dense_params(), 6 * 5 + 5);

        let x = Tensor::<B, 1, Int>::arange(0..3 * 4 * 6, &device)
            .float()
            .div_scalar(50.0)
            .reshape([3, 4, 6]);
        let u = layer.factors.u.val();
        let v = layer.factors.v.val();
        let bias = layer.bias.as_ref().unwrap().val();
        let expected = x
            .clone()
            .reshape([12, 6])
            .matmul(u.matmul(v).transpose())
            .add(bias.unsqueeze())
            .reshape([3, 4, 5]);
        layer
            .forward(x)
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::default());
    }

    #[test]
    fn from_linear_at_full_rank_reproduces_the_layer_and_lower_ranks_are_errors_or_lossy() {
        use burn::nn::LinearConfig;
        let device = Default::default();
        let linear = LinearConfig::new(6, 4).init::<B>(&device);
        let x = Tensor::<B, 2>::random([3, 6], burn::tensor::Distribution::Default, &device);
        let (full, err) = LowRankLinear::from_linear(&linear, 4).unwrap();
        assert!(err < 1e-5, "full rank error {err}");
        full.forward(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&linear.forward(x).into_data(), Tolerance::absolute(1e-5));
        let (_, err1) = LowRankLinear::from_linear(&linear, 1).unwrap();
        assert!(err1 > err && err1 < 1.0, "rank-1 error {err1}");
        assert_eq!(
            LowRankLinear::from_linear(&linear, 5).unwrap_err(),
            LowRankError::Rank {
                rank: 5,
                dims: [6, 4]
            }
        );
        assert!(LowRankLinear::from_linear(&linear, 0).is_err());
    }

    #[test]
    fn clones_of_a_fresh_layer_agree() {
        let device = Default::default();
        let layer = LowRankLinearConfig::new(4, 3, 2).init::<B>(&device);
        let x = Tensor::<B, 2>::ones([2, 4], &device);
        layer
            .clone()
            .forward(x.clone())
            .into_data()
            .assert_eq(&layer.forward(x).into_data(), true);
    }
}
