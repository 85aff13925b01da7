//! The low-rank residual `x V^T U^T` (docs/math.md §7, "seed 000").

use burn::module::{Initializer, Module, Param, ParamId};

use crate::trainable_param;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// `W_residual = U V`, applied as `(x V^T) U^T`; ordinary Burn parameters trained by
/// Burn's autodiff.
#[derive(Module, Debug)]
pub struct LowRankResidual<B: Backend> {
    /// `[d_output, rank]`, zero at initialisation so a fresh layer is pure RBE.
    pub u: Param<Tensor<B, 2>>,
    /// `[rank, d_input]`.
    pub v: Param<Tensor<B, 2>>,
}

impl<B: Backend> LowRankResidual<B> {
    /// A residual that starts at zero: `U = 0`, `V` Kaiming-uniform.
    pub fn init(d_input: usize, d_output: usize, rank: usize, device: &B::Device) -> Self {
        let v = Initializer::KaimingUniform {
            gain: 1.0 / 3f64.sqrt(),
            fan_out_only: false,
        }
        .init_with([rank, d_input], Some(d_input), Some(rank), device);
        let u = Initializer::Zeros.init([d_output, rank], device);
        // Burn's initializers are lazy, and a clone of a lazy parameter draws its own values:
        // a fresh layer saved through a clone would store another V than it computes with.
        Self {
            u: trainable_param(u.id, u.val()),
            v: trainable_param(v.id, v.val()),
        }
    }

    /// A residual with the given factors.
    pub fn from_factors(u: Tensor<B, 2>, v: Tensor<B, 2>) -> Self {
        Self {
            u: trainable_param(ParamId::new(), u),
            v: trainable_param(ParamId::new(), v),
        }
    }

    /// The rank.
    pub fn rank(&self) -> usize {
        self.v.shape().dims::<2>()[0]
    }

    /// `x V^T U^T`.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`
    /// - returns `[batch, d_output]`
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        x.matmul(self.v.val().transpose())
            .matmul(self.u.val().transpose())
    }
}
