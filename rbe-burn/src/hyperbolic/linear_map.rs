//! [`LinearMap`]: what a [`super::HypLinear`] needs of its matrix, so that any `Linear`-like
//! module can be one.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::{RbeBackend, RbeLinear};

/// A Euclidean linear map `x -> x M^T` from `d_input` to `d_output` features, as a Burn
/// module (its parameters are trained and saved with the layer that holds it).
///
/// A [`super::HypLinear`] applies it in the tangent space at the origin. Implemented for
/// Burn's [`Linear`] (on any backend) and for [`RbeLinear`] (on an [`RbeBackend`]); a map
/// with a bias of its own is affine, which the layer accepts (see
/// [`super::poincare::mobius_matvec`]), but Ganea et al.'s layer uses a bias-free matrix and
/// a Möbius bias.
pub trait LinearMap<B: Backend>: Module<B> {
    /// Input features.
    fn d_input(&self) -> usize;

    /// Output features.
    fn d_output(&self) -> usize;

    /// Applies the map to each row.
    ///
    /// # Shapes
    /// - `x`: `[n, d_input]`
    /// - returns `[n, d_output]`
    // Not `map`: `Module::map` has that name.
    fn apply(&self, x: Tensor<B, 2>) -> Tensor<B, 2>;
}

/// The weight is `[d_input, d_output]` once drawn. Its shape is read from the drawn tensor,
/// which draws a lazy weight: the shape a lazy weight declares is transposed for
/// `LinearLayout::Col`.
impl<B: Backend> LinearMap<B> for Linear<B> {
    fn d_input(&self) -> usize {
        self.weight.shape().dims::<2>()[0]
    }

    fn d_output(&self) -> usize {
        self.weight.shape().dims::<2>()[1]
    }

    fn apply(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward(x)
    }
}

impl<B: RbeBackend> LinearMap<B> for RbeLinear<B> {
    fn d_input(&self) -> usize {
        RbeLinear::d_input(self)
    }

    fn d_output(&self) -> usize {
        RbeLinear::d_output(self)
    }

    fn apply(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward(x)
    }
}
