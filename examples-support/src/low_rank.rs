//! The equal-budget baseline: a linear layer whose weight is a rank-`k` product `U V`,
//! built on the crate's [`LowRankResidual`] with a bias added.

use burn::module::{Initializer, Param};
use burn::prelude::*;
use rbe_burn::LowRankResidual;

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
            Param::initialized(bias.id, bias.val())
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
