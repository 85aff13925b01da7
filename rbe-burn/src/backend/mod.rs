//! The backend extension: the RBE layer's forward, backward, decode and straight-through
//! bit derivation as backend
//! primitives, and their implementation for every backend a Burn 0.21 user runs, one file
//! each.
//!
//! | backend | file | how the op runs |
//! |---|---|---|
//! | any backend | (default bodies) | the format's tensor-op layer |
//! | `CubeBackend` (WGPU, CUDA with fusion off) | `cube` | the format's CubeCL kernels |
//! | `Fusion<B>` (Burn's default `Wgpu`, `Cuda`) | `fusion` | custom operations on the fusion stream, run by `B` |
//! | `Flex` | `flex` (+ `host`) | the format's native CPU kernels, on the tensors' memory in place; f16/bf16 use the tensor-op layer |
//! | `NdArray` (legacy) | `ndarray` (+ `host`) | the native CPU kernels, through a `TensorData` copy; non-f32 floats use the tensor-op layer |
//! | `Autodiff<B>` over any of these | `autodiff` | `B`'s forward plus a custom backward step |
//!
//! No file here knows a format: each calls the format's hook for its kind of backend through
//! [`RbeSpec::format`] (see [`crate::formats::Format`]).

mod autodiff;
mod cube;
#[cfg(feature = "flex")]
mod flex;
mod fusion;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod host;
#[cfg(feature = "ndarray")]
mod ndarray;

use burn::tensor::backend::Backend;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::{Int, Tensor, TensorPrimitive};
use rbe_kernels::{BlockLayout, DecodeCache, Grads};

use crate::formats::{SeedFormat, Wanted};

/// Everything about one RBE layer the op needs besides its tensors.
#[derive(Debug, Clone)]
pub struct RbeSpec {
    /// The block grid of the `[d_output, d_input]` weight.
    pub layout: BlockLayout,
    /// What the seeds' bits mean, with the format's settings.
    pub format: SeedFormat,
    /// Whether a backward computes the signal that moves the bits (see
    /// [`crate::formats::Format::signal_width`]).
    pub signal: bool,
    /// The layer's decoded seeds: a CPU backend decodes into it once per change of the
    /// seeds. Pass the one the layer owns, or a fresh `DecodeCache::default()`; never share
    /// one between layers.
    pub cache: DecodeCache,
}

impl RbeSpec {
    /// Columns of [`Grads::signal`] and of the probe.
    pub fn signal_width(&self) -> usize {
        self.format.signal_width()
    }

    /// What a backward computes, given whether `dL/dx` is wanted.
    pub(crate) fn wanted(&self, x: bool) -> Wanted {
        Wanted {
            x,
            signal: self.signal,
        }
    }
}

/// The gradients of one backward pass on backend `B`: see [`Grads`].
pub type RbeGrads<B> = Grads<FloatTensor<B>>;

/// A Burn backend that can run RBE layers.
///
/// Every method has a default body built from Burn tensor operations (each format's
/// tensor-op layer), so any backend can implement the trait with an empty `impl` block and
/// get correct results. `Flex` and `NdArray` override them with the formats' native CPU
/// kernels, [`burn_cubecl::CubeBackend`] (WGPU, CUDA) with their CubeCL kernels; neither
/// materialises the weight matrix. `Fusion<B>` (Burn's default `Wgpu` and `Cuda`) records
/// them as custom operations run by its inner backend, and `Autodiff<B>` adds the backward
/// step.
///
/// # Panics
/// The methods take raw primitives and trust the [`RbeSpec`]: tensors whose shapes differ
/// from what the spec implies (listed per method) make the backend panic. [`crate::RbeLinear`]
/// builds the spec and the seed tensors together and checks the input
/// ([`crate::RbeLinear::try_forward`]), so code that goes through the module never sees this.
///
/// # Seeds on the device
/// - `coords`: float `[n_blocks, 2]`: the two floats of each seed, the trainable part.
/// - `bits`: int `[n_blocks, words]`, i32 bit patterns in the format's device layout
///   (`words` = [`crate::formats::Format::BIT_WORDS`]): for the paper and sign formats the
///   64 `hi` bits as two words, column 0 `hi[63:32]`, column 1 `hi[31:0]`; for the ternary
///   format four words of 2-bit codes. i32 words survive every Burn recorder and every int
///   dtype bit for bit.
pub trait RbeBackend: Backend {
    /// `y = x W^T`, the one entry point of the layer.
    ///
    /// `probe` is the bits' channel: a float tensor whose values are ignored and whose
    /// gradient, on autodiff backends, is the signal of the backward pass (see
    /// [`crate::formats::Format::signal_width`]), which the optimizer applies to the bits.
    /// Backends without autodiff ignore it.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`
    /// - `probe`: `[n_blocks, spec.signal_width()]`
    /// - returns `[batch, d_output]`
    fn rbe_forward(
        x: FloatTensor<Self>,
        coords: FloatTensor<Self>,
        bits: IntTensor<Self>,
        probe: Option<FloatTensor<Self>>,
        spec: &RbeSpec,
    ) -> FloatTensor<Self> {
        let _ = probe;
        spec.format
            .tensor_forward::<Self>(x, coords, Tensor::from_primitive(bits), &spec.layout)
    }

    /// The backward of [`RbeBackend::rbe_forward`] given `grad_y = dL/dy`. `grad_x` says
    /// whether `dL/dx` is wanted (it is not for a first layer whose input needs no
    /// gradient); [`Grads::x`] is `None` otherwise, and [`Grads::signal`] is `None` unless
    /// `spec.signal`.
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
        spec.format.tensor_backward::<Self>(
            x,
            coords,
            Tensor::<Self, 2, Int>::from_primitive(bits),
            grad_y,
            &spec.layout,
            spec.wanted(grad_x),
        )
    }

    /// The bits of a format trained straight-through, re-derived from its latent weights
    /// ([`crate::formats::Format::bits_from_latent`], bit for bit). A layer runs it once per
    /// forward after its latent weights changed, so the backends override it with one native
    /// pass; the default is the format's tensor-op rule.
    ///
    /// # Shapes
    /// - `latent`: `[n_blocks, spec.signal_width()]`, `coords`: `[n_blocks, 2]`
    /// - returns `[n_blocks, words]`
    fn rbe_bits_from_latent(
        latent: FloatTensor<Self>,
        coords: FloatTensor<Self>,
        spec: &RbeSpec,
    ) -> IntTensor<Self> {
        tensor_bits_from_latent::<Self>(latent, coords, spec)
    }

    /// The dense weight `[d_output, d_input]`, for inspection and tests only: layers never
    /// call it.
    fn rbe_decode(
        coords: FloatTensor<Self>,
        bits: IntTensor<Self>,
        spec: &RbeSpec,
    ) -> FloatTensor<Self> {
        spec.format
            .tensor_decode::<Self>(coords, Tensor::from_primitive(bits), &spec.layout)
    }
}

/// [`RbeBackend::rbe_bits_from_latent`] by the format's tensor-op rule, on any backend: the
/// default body, and what a native backend falls back to for inputs its pass does not take.
pub(crate) fn tensor_bits_from_latent<B: Backend>(
    latent: FloatTensor<B>,
    coords: FloatTensor<B>,
    spec: &RbeSpec,
) -> IntTensor<B> {
    spec.format
        .bits_from_latent::<B>(
            Tensor::from_primitive(TensorPrimitive::Float(latent)),
            Tensor::from_primitive(TensorPrimitive::Float(coords)),
            &spec.layout,
        )
        .into_primitive()
}

/// An autodiff backend whose inner backend runs RBE layers too: training runs on the
/// former, validation and the bit updates on the latter.
pub trait RbeAutodiffBackend:
    RbeBackend + burn::tensor::backend::AutodiffBackend<InnerBackend: RbeBackend>
{
}

impl<B> RbeAutodiffBackend for B where
    B: RbeBackend + burn::tensor::backend::AutodiffBackend<InnerBackend: RbeBackend>
{
}
