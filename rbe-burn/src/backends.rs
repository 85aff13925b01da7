//! [`RbeBackend`] for the concrete backends.
//!
//! CubeCL backends (WGPU, CUDA) get the fused kernels in [`crate::cube`]; the others use the
//! tensor-op bodies of the trait.

#[cfg(feature = "ndarray")]
mod ndarray {
    use crate::backend::RbeBackend;
    use burn::backend::ndarray::{
        FloatNdArrayElement, IntNdArrayElement, NdArray, NdArrayTensor, QuantElement, SharedArray,
    };

    impl<E, I, Q> RbeBackend for NdArray<E, I, Q>
    where
        E: FloatNdArrayElement,
        I: IntNdArrayElement,
        Q: QuantElement,
        NdArrayTensor: From<SharedArray<E>> + From<SharedArray<I>>,
    {
    }
}
