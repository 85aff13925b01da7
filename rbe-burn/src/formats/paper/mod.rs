//! The paper's seed format, bit-exact (docs/math.md §1–§7): `coords = (r, theta)`, `hi` the
//! CORDIC directions whose first 8 bits double as four 2-bit states, two real degrees of
//! freedom per block. Its kernels live in `rbe_kernels::formats::paper`.
//!
//! - [`PaperFormat`]: the settings (forward kernel, radius clamp, transition threshold) and
//!   the [`Format`] impl;
//! - `ops`: the layer in tensor ops; `encode`: the closed-form fit; `init`: fresh seeds.

mod encode;
mod init;
mod ops;

use burn::module::ParamId;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Int, Tensor};
use burn_cubecl::CubeRuntime;
use cubecl::prelude::ComputeClient;
use cubecl::std::tensor::TensorHandle;
use rbe_kernels::cube::KernelDtypes;
use rbe_kernels::formats::paper::kernels;
use rbe_kernels::formats::paper::reference::{RADIUS_RANGE, TRANSITION_THRESHOLD};
use rbe_kernels::{BlockLayout, Grads, Packed128};
use serde::{Deserialize, Serialize};

#[cfg(any(feature = "flex", feature = "ndarray"))]
use rbe_kernels::formats::paper::cpu;
#[cfg(any(feature = "flex", feature = "ndarray"))]
use rbe_kernels::{DecodeCache, KernelError};

use super::{BitFlips, Encoded, Format, FormatId, RbeInitializer, Wanted};
use crate::RbeError;

/// Which computation generates the weights inside the fused CubeCL product.
///
/// Both give the same `y` to float tolerance: the closed form is exact (docs/math.md §3).
/// The CPU kernels and the tensor-op layer always evaluate the closed form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum RbeKernel {
    /// `w = A(r) cos(psi + theta + c)`, factored per column block: about `2MN/B + 2BN`
    /// multiply-adds per input row instead of `MN`.
    #[default]
    ClosedForm,
    /// The paper's 20-step CORDIC loop per weight, in registers. For verification and
    /// benches.
    Cordic,
}

/// The settings of the paper's format.
///
/// ```
/// use rbe_burn::{PaperFormat, RbeKernel};
/// let format = PaperFormat::new()
///     .with_kernel(RbeKernel::Cordic)
///     .with_radius(0.05, 3.0)
///     .with_transitions(None); // the bits stay as drawn
/// assert_eq!(format.radius_max, 3.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PaperFormat {
    /// The forward kernel on CubeCL backends.
    pub kernel: RbeKernel,
    /// Lower end of the clamp on `r` (the paper's 0.1).
    ///
    /// The clamp runs inside the seeds' `Module::map`, which is how Burn optimizers write
    /// their updates, so any optimizer keeps `r` in range; so does every other mapper.
    pub radius_min: f64,
    /// Upper end of the clamp on `r` (the paper's 2.0).
    pub radius_max: f64,
    /// The state-transition threshold `t` on `|dW|` (docs/math.md §5), the paper's 0.1;
    /// `None` turns the transitions off and the CORDIC bits stay as they are.
    pub transition_threshold: Option<f64>,
}

impl Default for PaperFormat {
    fn default() -> Self {
        Self {
            kernel: RbeKernel::ClosedForm,
            radius_min: RADIUS_RANGE.0,
            radius_max: RADIUS_RANGE.1,
            transition_threshold: Some(TRANSITION_THRESHOLD),
        }
    }
}

impl PaperFormat {
    /// The paper's settings: closed-form kernel, `r` in `[0.1, 2]`, transitions at 0.1.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same settings with another forward kernel.
    pub fn with_kernel(self, kernel: RbeKernel) -> Self {
        Self { kernel, ..self }
    }

    /// The same settings with the radius floor at [`PaperFormat::TRAINED_RADIUS_MIN`], for
    /// encoding a trained layer ([`crate::Compressor`], `RbeLinear::from_linear`).
    ///
    /// The paper's floor `r >= 0.1` is an amplitude of `A(0.1) ≈ 0.096`. Trained weights'
    /// blocks are mostly smaller than that (a 256-wide layer's weights are about 0.05), and
    /// the fit raises every seed below the floor to it, which makes the encoded weight worse
    /// than zero (`EncodeReport::seeds_at_radius_min` counts them).
    ///
    /// ```
    /// use rbe_burn::PaperFormat;
    /// let format = PaperFormat::new().for_trained_weights();
    /// assert_eq!(format.radius_min, PaperFormat::TRAINED_RADIUS_MIN);
    /// assert_eq!(format.radius_max, PaperFormat::new().radius_max);
    /// ```
    pub fn for_trained_weights(self) -> Self {
        self.with_radius(Self::TRAINED_RADIUS_MIN, self.radius_max)
    }

    /// The radius floor of [`PaperFormat::for_trained_weights`]: amplitudes down to about
    /// `1e-3` (`A(r) ≈ 0.96 r` near 0), below the weights of any layer narrower than about
    /// a million inputs at the usual `1/sqrt(fan_in)` scale.
    pub const TRAINED_RADIUS_MIN: f64 = 1e-3;

    /// The same settings with the clamp on `r` at `[min, max]`.
    pub fn with_radius(self, min: f64, max: f64) -> Self {
        Self {
            radius_min: min,
            radius_max: max,
            ..self
        }
    }

    /// The same settings with the transition threshold `threshold` (`None`: off).
    pub fn with_transitions(self, threshold: Option<f64>) -> Self {
        Self {
            transition_threshold: threshold,
            ..self
        }
    }

    /// The same settings with the transitions turned off unless `enabled`; an enabled
    /// layer keeps its threshold.
    pub fn with_transitions_enabled(self, enabled: bool) -> Self {
        if enabled {
            self
        } else {
            self.with_transitions(None)
        }
    }

    fn threshold(&self) -> Option<f32> {
        self.transition_threshold.map(|t| t as f32)
    }
}

impl Format for PaperFormat {
    const ID: FormatId = FormatId::Paper;
    const NAME: &'static str = "paper";
    const CONTAINER: &'static str = "Struct:RbeSeeds:paper";

    fn validate(&self, _layout: &BlockLayout) -> Result<(), RbeError> {
        if let Some(t) = self.transition_threshold
            && !(t.is_finite() && t >= 0.0)
        {
            return Err(RbeError::Config(format!(
                "transition_threshold must be finite and >= 0, got {t}"
            )));
        }
        if !(self.radius_min.is_finite()
            && self.radius_max.is_finite()
            && 0.0 < self.radius_min
            && self.radius_min <= self.radius_max)
        {
            return Err(RbeError::Config(format!(
                "need 0 < radius_min <= radius_max, both finite; got [{}, {}]",
                self.radius_min, self.radius_max
            )));
        }
        Ok(())
    }

    fn signal_width(&self) -> usize {
        4
    }

    fn learns_bits_by_signal(&self) -> bool {
        self.transition_threshold.is_some()
    }

    fn check_seed(&self, seed: &Packed128) -> Result<(), RbeError> {
        Ok(seed.validate()?)
    }

    fn constrain<B: Backend>(&self, coords: Tensor<B, 2>) -> Tensor<B, 2> {
        let n = coords.dims()[0];
        let r = coords
            .clone()
            .slice([0..n, 0..1])
            .clamp(self.radius_min as f32, self.radius_max as f32);
        coords.slice_assign([0..n, 0..1], r)
    }

    fn latent<B: Backend>(
        &self,
        _coords: Tensor<B, 2>,
        _bits: Tensor<B, 2, Int>,
    ) -> Option<Tensor<B, 2>> {
        None
    }

    fn bits_from_latent<B: Backend>(
        &self,
        _latent: Tensor<B, 2>,
        _coords: Tensor<B, 2>,
        _layout: &BlockLayout,
    ) -> Tensor<B, 2, Int> {
        unreachable!("the paper's format has no latent weights")
    }

    fn step_bits<B: Backend>(
        _id: ParamId,
        bits: Tensor<B, 2, Int>,
        signal: Tensor<B, 2>,
        _state: &mut BitFlips,
    ) -> Tensor<B, 2, Int> {
        ops::apply_transitions(bits, signal)
    }

    fn init_seeds<B: Backend>(
        &self,
        init: &RbeInitializer,
        layout: &BlockLayout,
        fan_in: usize,
        device: &B::Device,
    ) -> Result<Vec<Packed128>, RbeError> {
        init::seeds::<B>(
            init,
            layout.num_blocks(),
            fan_in,
            (self.radius_min, self.radius_max),
            device,
        )
    }

    fn encode<B: Backend>(
        &self,
        w: &[f64],
        layout: &BlockLayout,
        init: &RbeInitializer,
        device: &B::Device,
    ) -> Result<Encoded, RbeError> {
        let drawn = self.init_seeds::<B>(init, layout, layout.cols, device)?;
        encode::fit(w, layout, drawn, (self.radius_min, self.radius_max))
    }

    fn tensor_forward<B: Backend>(
        &self,
        x: FloatTensor<B>,
        coords: FloatTensor<B>,
        bits: Tensor<B, 2, Int>,
        layout: &BlockLayout,
    ) -> FloatTensor<B> {
        ops::forward(x, coords, bits, layout)
    }

    fn tensor_backward<B: Backend>(
        &self,
        x: FloatTensor<B>,
        coords: FloatTensor<B>,
        bits: Tensor<B, 2, Int>,
        grad_y: FloatTensor<B>,
        layout: &BlockLayout,
        wanted: Wanted,
    ) -> Grads<FloatTensor<B>> {
        ops::backward(x, coords, bits, grad_y, layout, wanted, self.threshold())
    }

    fn tensor_decode<B: Backend>(
        &self,
        coords: FloatTensor<B>,
        bits: Tensor<B, 2, Int>,
        layout: &BlockLayout,
    ) -> FloatTensor<B> {
        ops::decode(coords, bits, layout)
    }

    #[cfg(any(feature = "flex", feature = "ndarray"))]
    fn cpu_forward(
        &self,
        layout: &BlockLayout,
        coords: &[f32],
        bits: &[i32],
        x: &[f32],
        batch: usize,
        y: &mut [f32],
        cache: &DecodeCache,
    ) -> Result<(), KernelError> {
        cpu::forward(layout, coords, bits, x, batch, y, cache)
    }

    #[cfg(any(feature = "flex", feature = "ndarray"))]
    fn cpu_backward(
        &self,
        layout: &BlockLayout,
        coords: &[f32],
        bits: &[i32],
        x: &[f32],
        grad_y: &[f32],
        batch: usize,
        wanted: Wanted,
        cache: &DecodeCache,
    ) -> Result<Grads<Vec<f32>>, KernelError> {
        let threshold = self.threshold().filter(|_| wanted.signal);
        cpu::backward(
            layout, coords, bits, x, grad_y, batch, wanted.x, threshold, cache,
        )
    }

    #[cfg(any(feature = "flex", feature = "ndarray"))]
    fn cpu_decode(
        &self,
        layout: &BlockLayout,
        coords: &[f32],
        bits: &[i32],
    ) -> Result<Vec<f32>, KernelError> {
        cpu::decode(layout, coords, bits)
    }

    fn cube_forward<R: CubeRuntime>(
        &self,
        client: &ComputeClient<R>,
        dtypes: KernelDtypes,
        x: &TensorHandle<R>,
        coords: &TensorHandle<R>,
        bits: &TensorHandle<R>,
        layout: &BlockLayout,
    ) -> TensorHandle<R> {
        let launch = match self.kernel {
            RbeKernel::ClosedForm => kernels::fused_closed_form_matmul::<R>,
            RbeKernel::Cordic => kernels::fused_cordic_matmul::<R>,
        };
        launch(client, dtypes, x, coords, bits, layout)
    }

    fn cube_backward<R: CubeRuntime>(
        &self,
        client: &ComputeClient<R>,
        dtypes: KernelDtypes,
        x: &TensorHandle<R>,
        grad_y: &TensorHandle<R>,
        coords: &TensorHandle<R>,
        bits: &TensorHandle<R>,
        layout: &BlockLayout,
        wanted: Wanted,
    ) -> Grads<TensorHandle<R>> {
        // One call: the coefficients and the projections are computed once and shared by
        // the gradients.
        let threshold = self.threshold().filter(|_| wanted.signal);
        kernels::backward(
            client, dtypes, x, grad_y, coords, bits, layout, wanted.x, threshold,
        )
    }

    fn cube_decode<R: CubeRuntime>(
        &self,
        client: &ComputeClient<R>,
        dtypes: KernelDtypes,
        coords: &TensorHandle<R>,
        bits: &TensorHandle<R>,
        layout: &BlockLayout,
    ) -> Option<TensorHandle<R>> {
        Some(kernels::cordic_decode(client, dtypes, coords, bits, layout))
    }
}
