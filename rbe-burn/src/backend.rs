//! The backend extension: RBE forward and backward as backend primitives.

use burn::tensor::backend::Backend;
use burn::tensor::ops::{FloatTensor, IntTensor};

use crate::fallback;
use crate::spec::{RbeGrads, RbeSpec};

/// A Burn backend that can run RBE layers.
///
/// Every method has a default body built from Burn tensor operations, so any backend can
/// implement the trait with an empty `impl` block and get correct results. `Flex` and
/// `NdArray` override them with the native CPU kernels of `rbe_cubecl::cpu`,
/// [`burn_cubecl::CubeBackend`] (WGPU, CUDA) with fused CubeCL kernels; neither
/// materialises the weight matrix. `Fusion<B>` (Burn's default `Wgpu` and
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
    /// `y = x W^T`, the one entry point of the layer.
    ///
    /// `probe` is the transition channel: an `[n_blocks, 4]` float tensor whose values are
    /// ignored and whose gradient, on autodiff backends, is the net transition counts of the
    /// backward pass, which [`crate::apply_state_transitions`] applies to the bits. Backends
    /// without autodiff ignore it.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`
    /// - `probe`: `[n_blocks, 4]`
    /// - returns `[batch, d_output]`
    fn rbe_forward(
        x: FloatTensor<Self>,
        coords: FloatTensor<Self>,
        bits: IntTensor<Self>,
        probe: Option<FloatTensor<Self>>,
        spec: &RbeSpec,
    ) -> FloatTensor<Self> {
        let _ = probe;
        fallback::forward::<Self>(x, coords, bits, spec)
    }

    /// The backward of [`RbeBackend::rbe_forward`] given `grad_y = dL/dy`. `grad_x` says
    /// whether `dL/dx` is wanted (it is not for a first layer whose input needs no
    /// gradient); [`RbeGrads::x`] is `None` otherwise.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`, `grad_y`: `[batch, d_output]`
    fn rbe_backward(
        x: FloatTensor<Self>,
        coords: FloatTensor<Self>,
        bits: IntTensor<Self>,
        grad_y: FloatTensor<Self>,
        spec: &RbeSpec,
        grad_x: bool,
    ) -> RbeGrads<Self> {
        fallback::backward::<Self>(x, coords, bits, grad_y, spec, grad_x)
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

    /// The bits after moving each 2-bit slot `s` (bits `2s, 2s+1` of `hi[31:0]`) by
    /// `counts[:, s]`, modulo 4 (docs/math.md §5). The other bits are kept.
    ///
    /// # Shapes
    /// - `bits`: `[n_blocks, 2]`, `counts`: `[n_blocks, 4]` integer-valued floats
    /// - returns `[n_blocks, 2]`
    fn rbe_apply_transitions(bits: IntTensor<Self>, counts: FloatTensor<Self>) -> IntTensor<Self> {
        fallback::apply_transitions::<Self>(bits, counts)
    }
}

/// An autodiff backend whose inner backend runs RBE layers too: training runs on the
/// former, validation and the state transitions on the latter.
pub trait RbeAutodiffBackend:
    RbeBackend + burn::tensor::backend::AutodiffBackend<InnerBackend: RbeBackend>
{
}

impl<B> RbeAutodiffBackend for B where
    B: RbeBackend + burn::tensor::backend::AutodiffBackend<InnerBackend: RbeBackend>
{
}
