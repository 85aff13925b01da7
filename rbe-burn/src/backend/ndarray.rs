//! [`RbeBackend`] for NdArray, Burn's legacy CPU backend: the formats' native CPU kernels
//! through [`super::host`], with the inputs read through a
//! `TensorData` round trip (one copy each; NdArray is legacy, Flex is the fast path).

use burn::backend::ndarray::{
    FloatNdArrayElement, IntNdArrayElement, NdArray, NdArrayTensor, QuantElement, SharedArray,
};
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::{Tensor, TensorPrimitive};

use super::RbeBackend;
use super::host::{self, HostBackend};

impl<E, I, Q> HostBackend for NdArray<E, I, Q>
where
    E: FloatNdArrayElement,
    I: IntNdArrayElement,
    Q: QuantElement,
    NdArrayTensor: From<SharedArray<E>> + From<SharedArray<I>>,
{
    type Floats = Vec<f32>;
    type Ints = Vec<i32>;

    fn floats(t: FloatTensor<Self>) -> Vec<f32> {
        Tensor::<Self, 2>::from_primitive(TensorPrimitive::Float(t))
            .into_data()
            .into_vec::<f32>()
            .expect("an f32 tensor")
    }

    fn ints(t: IntTensor<Self>) -> Vec<i32> {
        host::ints_via_data::<Self>(t)
    }
}

impl<E, I, Q> RbeBackend for NdArray<E, I, Q>
where
    E: FloatNdArrayElement,
    I: IntNdArrayElement,
    Q: QuantElement,
    NdArrayTensor: From<SharedArray<E>> + From<SharedArray<I>>,
{
    host::rbe_backend_on_host!();
}
