//! The backend extension: RBE forward and backward as backend primitives.

use burn::tensor::backend::Backend;
use burn::tensor::ops::{FloatTensor, IntTensor};

use crate::fallback;
use crate::spec::{RbeGrads, RbeSpec};

/// A Burn backend that can run RBE layers.
///
/// Every method has a default body built from Burn tensor operations, so any backend can
/// implement the trait with an empty `impl` block and get correct results (`Flex` and
/// `NdArray` do). [`burn_cubecl::CubeBackend`] (WGPU, CUDA) overrides them with fused CubeCL
/// kernels that never materialise the weight matrix, `Fusion<B>` (Burn's default `Wgpu` and
/// `Cuda`) records them as custom operations run by its inner backend, and `Autodiff<B>` adds
/// the backward step. The impls live in `backends/`, one file per backend.
///
/// # Panics
/// The methods take raw primitives and trust the [`RbeSpec`]: tensors whose shapes differ
/// from what the spec implies (listed per method) make the backend panic. [`crate::RbeLinear`]
/// builds the spec and the seed tensors together and checks the input
/// ([`crate::RbeLinear::try_forward`]), so code that goes through the module never sees this.
///
/// # Seeds on the device
/// - `coords`: float `[n_blocks, 2]`, columns `(r, theta)`: the trainable part.
/// - `bits`: int `[n_blocks, 2]`, the 64 `hi` bits as two i32 bit patterns: column 0 holds
///   `hi[63:32]`, column 1 holds `hi[31:0]` (the CORDIC direction bits). i32 halves survive
///   every Burn recorder and every int dtype bit for bit.
pub trait RbeBackend: Backend {
    /// `y = x W^T`.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`
    /// - returns `[batch, d_output]`
    fn rbe_forward(
        x: FloatTensor<Self>,
        coords: FloatTensor<Self>,
        bits: IntTensor<Self>,
        spec: &RbeSpec,
    ) -> FloatTensor<Self> {
        fallback::forward::<Self>(x, coords, bits, spec)
    }

    /// The backward of [`RbeBackend::rbe_forward`] given `grad_y = dL/dy`.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`, `grad_y`: `[batch, d_output]`
    fn rbe_backward(
        x: FloatTensor<Self>,
        coords: FloatTensor<Self>,
        bits: IntTensor<Self>,
        grad_y: FloatTensor<Self>,
        spec: &RbeSpec,
    ) -> RbeGrads<Self> {
        fallback::backward::<Self>(x, coords, bits, grad_y, spec)
    }

    /// The dense weight `[d_output, d_input]`, for inspection and tests only: layers never
    /// call it.
    fn rbe_decode(
        coords: FloatTensor<Self>,
        bits: IntTensor<Self>,
        spec: &RbeSpec,
    ) -> FloatTensor<Self> {
        fallback::decode::<Self>(coords, bits, spec)
    }

    /// [`RbeBackend::rbe_forward`] with a transition probe: an `[n_blocks, 4]` float tensor
    /// whose values are ignored and whose gradient, on autodiff backends, is the transition
    /// counts. Plain backends ignore it.
    fn rbe_linear(
        x: FloatTensor<Self>,
        coords: FloatTensor<Self>,
        bits: IntTensor<Self>,
        probe: FloatTensor<Self>,
        spec: &RbeSpec,
    ) -> FloatTensor<Self> {
        let _ = probe;
        Self::rbe_forward(x, coords, bits, spec)
    }
}

/// An autodiff backend whose inner backend runs RBE layers.
pub trait RbeAutodiffBackend: RbeBackend + burn::tensor::backend::AutodiffBackend {}

impl<B> RbeAutodiffBackend for B where B: RbeBackend + burn::tensor::backend::AutodiffBackend {}
