//! [`FaultInjection`]: a deliberate divergence of one replica, so that tests can show the
//! consistency check catches it.

use burn::module::{ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

/// After its optimizer step number `step` (counted from 1 over the whole run), replica
/// `replica` changes its own parameters: the lowest bit of the first value of every
/// parameter flips (an RBE layer's seeds and bits among them).
///
/// The change goes through the model's record, as a checkpoint load would, so formats that
/// derive some parameters from others see it as they would see a damaged load (e.g. the
/// latent weights of straight-through training restart from the changed seeds).
///
/// For tests only: nothing but [`super::DataParallel::with_fault`] uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultInjection {
    /// The replica that diverges.
    pub replica: usize,
    /// The optimizer step after which it diverges (from 1).
    pub step: usize,
}

/// Flips the lowest bit of the first value of each parameter.
pub(crate) struct FlipFirstBits;

impl<B: Backend> ModuleMapper<B> for FlipFirstBits {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        param.map(|tensor| {
            let tracked = tensor.is_require_grad();
            let device = tensor.device();
            let data = tensor.into_data();
            let dtype = data.dtype;
            let shape = data.shape.clone();
            let flipped = match data.clone().convert::<f32>().into_vec::<f32>() {
                Ok(mut values) if !values.is_empty() => {
                    values[0] = f32::from_bits(values[0].to_bits() ^ 1);
                    TensorData::new(values, shape).convert_dtype(dtype)
                }
                _ => data,
            };
            let flipped: Tensor<B, D> = Tensor::from_data(flipped, (&device, dtype));
            if tracked {
                flipped.require_grad()
            } else {
                flipped
            }
        })
    }

    fn map_int<const D: usize>(
        &mut self,
        param: Param<Tensor<B, D, Int>>,
    ) -> Param<Tensor<B, D, Int>> {
        param.map(|tensor| {
            let device = tensor.device();
            let data = tensor.into_data();
            let dtype = data.dtype;
            let shape = data.shape.clone();
            let values = data.clone().convert::<i64>().into_vec::<i64>().ok();
            let flipped = match values {
                Some(mut values) if !values.is_empty() => {
                    values[0] ^= 1;
                    TensorData::new(values, shape).convert_dtype(dtype)
                }
                _ => data,
            };
            Tensor::from_data(flipped, (&device, dtype))
        })
    }
}
