//! [`trainable_param`]: parameters that stay trainable when a module made on a backend
//! without autodiff moves onto one with `AutodiffModule::from_inner`.

use burn::module::{Param, ParamId};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// A parameter holding `value`, marked as requiring gradients on every backend.
///
/// `Param::initialized` and `Param::from_tensor` take that mark from the tensor, and a tensor
/// of a backend without autodiff never carries it. A layer made there (loaded, encoded from a
/// trained `Linear`, or drawn fresh) would come out of `from_inner` frozen: the optimizer
/// would leave it as it is. Burn's own initializers keep the mark in a lazy parameter; so
/// does this, with `value` as the only thing its initialization returns, so a clone of the
/// parameter computes with the same values.
///
/// ```
/// use burn::backend::{Autodiff, Flex};
/// use burn::module::{AutodiffModule, Param, ParamId};
/// use burn::prelude::*;
/// use rbe_burn::trainable_param;
///
/// let device = Default::default();
/// let inner = trainable_param(ParamId::new(), Tensor::<Flex, 1>::ones([3], &device));
/// let tracked: Param<Tensor<Autodiff<Flex>, 1>> = Param::from_inner(inner);
/// assert!(tracked.val().is_require_grad());
/// ```
pub fn trainable_param<B: Backend, const D: usize>(
    id: ParamId,
    value: Tensor<B, D>,
) -> Param<Tensor<B, D>> {
    let device = value.device();
    let shape = value.shape();
    Param::uninitialized(
        id,
        move |_, require_grad| value.clone().set_require_grad(require_grad),
        device,
        true,
        shape,
    )
}
