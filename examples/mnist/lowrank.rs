//! The equal-budget baseline: a linear layer whose weight is a rank-`k` product `U Vᵀ`.

use burn::module::{Initializer, Param};
use burn::prelude::*;

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
    /// Both factors are drawn like `Linear`'s weight (Kaiming-uniform, gain `1/sqrt(3)`) with
    /// their own fan-in, so `x V` and `(x V) Uᵀ` each keep the input's scale roughly as a
    /// dense layer would; the product is not a dense init, and need not be.
    pub fn init<B: Backend>(&self, device: &B::Device) -> LowRankLinear<B> {
        let init = Initializer::KaimingUniform {
            gain: 1.0 / 3f64.sqrt(),
            fan_out_only: false,
        };
        let v = init.init_with(
            [self.d_input, self.rank],
            Some(self.d_input),
            Some(self.rank),
            device,
        );
        let u = init.init_with(
            [self.d_output, self.rank],
            Some(self.rank),
            Some(self.d_output),
            device,
        );
        let bias = self.bias.then(|| {
            init.init_with(
                [self.d_output],
                Some(self.d_input),
                Some(self.d_output),
                device,
            )
        });
        LowRankLinear { u, v, bias }
    }
}

/// `y = x V Uᵀ + b`: `d_input * k + d_output * k` weights instead of `d_input * d_output`.
#[derive(Module, Debug)]
pub struct LowRankLinear<B: Backend> {
    /// `[d_output, k]`.
    pub u: Param<Tensor<B, 2>>,
    /// `[d_input, k]`.
    pub v: Param<Tensor<B, 2>>,
    /// `[d_output]`.
    pub bias: Option<Param<Tensor<B, 1>>>,
}

impl<B: Backend> LowRankLinear<B> {
    /// Applies the layer.
    ///
    /// # Shapes
    /// - input: `[batch, d_input]`
    /// - output: `[batch, d_output]`
    pub fn forward(&self, input: Tensor<B, 2>) -> Tensor<B, 2> {
        // Never form U Vᵀ: going through the k-wide bottleneck is the point of the layer.
        let y = input.matmul(self.v.val()).matmul(self.u.val().transpose());
        match &self.bias {
            Some(bias) => y + bias.val().unsqueeze_dim(0),
            None => y,
        }
    }

    /// Stored weight floats: `k * (d_input + d_output)`.
    pub fn weight_params(&self) -> usize {
        self.u.shape().num_elements() + self.v.shape().num_elements()
    }

    /// Stored bias floats.
    pub fn bias_params(&self) -> usize {
        self.bias.as_ref().map_or(0, |b| b.shape().num_elements())
    }
}
