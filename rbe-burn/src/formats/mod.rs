//! The seed formats: what the 128 bits of a seed mean, and everything that depends on it.
//!
//! A format is a settings type implementing [`Format`], in a folder of its own:
//!
//! | format | type | folder | weight of cell `(i, j)` |
//! |---|---|---|---|
//! | the paper's CORDIC seed (default, bit-exact) | [`PaperFormat`] | `paper/` | `A(r) cos(psi + theta + c)` (docs/math.md §1–§7) |
//! | the sign blueprint | [`SignFormat`] | `sign/` | `mu + alpha (2 bit - 1)` (docs/math.md §9) |
//! | the ternary seed | [`TernaryFormat`] | `ternary/` | `alpha t`, `t` in {-1, 0, +1} (docs/math.md §10) |
//!
//! Each folder owns what its format decides: the meaning and constraint of the seeds' two
//! floats, the initial seeds, the encoder of a dense matrix, the tensor-op layer that any
//! backend can run, the calls into its native CPU and CubeCL kernels (`rbe_kernels::formats`),
//! whether it has a latent weight or a signal for its bits, and its bit-training rule.
//!
//! [`SeedFormat`] is the value a layer's configuration holds: one variant per format, carrying
//! that format's settings. Its methods forward to the variant's [`Format`] impl; backends,
//! records, the optimizer and `RbeLinear` call them and never match on a format.
//! [`FormatId`] is the tag a record stores.
//!
//! Registering a format is one line of `register_formats!` in this file
//! (`docs/architecture.md`, "Adding a seed format").

use std::fmt::Debug;

use burn::module::ParamId;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Int, Tensor};
use burn_cubecl::CubeRuntime;
use cubecl::prelude::ComputeClient;
use cubecl::std::tensor::TensorHandle;
use rbe_kernels::cube::KernelDtypes;
use rbe_kernels::{BlockLayout, Grads, Packed128};
use serde::{Deserialize, Serialize};

#[cfg(any(feature = "flex", feature = "ndarray"))]
use rbe_kernels::DecodeCache;
use rbe_kernels::KernelError;

use crate::RbeError;

mod initializer;
pub mod paper;
pub mod sign;
pub mod ternary;

pub use initializer::RbeInitializer;
pub use paper::{PaperFormat, RbeKernel};
pub use sign::{BitFlips, BitTraining, SignFormat};
pub use ternary::TernaryFormat;

/// What a backward pass is asked for besides `dL/d(coords)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// `dL/dx` (not for a first layer whose input needs no gradient).
    pub x: bool,
    /// The signal that moves the bits (only when something will read it).
    pub signal: bool,
}

/// What [`Format::encode`] fitted to a dense matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// One seed per block, block-row-major.
    pub seeds: Vec<Packed128>,
    /// The `[rows, cols]` weight the stored seeds generate, row-major, in f64.
    pub generated: Vec<f64>,
    /// Seeds whose best fit lay below what the format's constraint allows and were raised.
    pub clamped_low: usize,
    /// Seeds whose best fit lay above what the format's constraint allows and were capped.
    pub clamped_high: usize,
}

/// A seed format: the settings of one format and everything that depends on what its bits
/// mean. Implemented by [`PaperFormat`], [`SignFormat`] and [`TernaryFormat`]; users pick one through
/// [`SeedFormat`].
///
/// Seeds live on the device as two tensors: `coords`, float `[n_blocks, 2]`, the two
/// floats a format trains (by any optimizer), and `bits`, int `[n_blocks, BIT_WORDS]`, the
/// discrete part as i32 bit patterns. How they map to the stored [`Packed128`] is the
/// format's ([`Format::to_packed`], [`Format::from_packed`]); the defaults are the paper's
/// and the sign blueprint's layout: `coords` = the two f32 of `lo`, `bits` = `hi` as two
/// i32 halves (`hi[63:32]`, `hi[31:0]`).
pub trait Format: Copy + Debug + PartialEq + Send + Sync + 'static {
    /// The tag stored in record headers.
    const ID: FormatId;
    /// Lower-case name, for messages.
    const NAME: &'static str;
    /// The container type its seeds report to module visitors and mappers:
    /// `"Struct:RbeSeeds:"` followed by [`Format::NAME`].
    const CONTAINER: &'static str;
    /// i32 words per seed in the device `bits` tensor (its second dimension).
    const BIT_WORDS: usize = 2;

    /// The stored seed of block `seed` from its device rows: `coords` (the two floats) and
    /// `bits` (`BIT_WORDS` i32 bit patterns, possibly widened to i64). The default packs
    /// `lo` from the two f32 and `hi` from two i32 halves, and never fails: non-finite
    /// floats are left for [`Format::validate_packed`] to report.
    fn to_packed(seed: usize, coords: [f32; 2], bits: &[i64]) -> Result<Packed128, KernelError> {
        let _ = seed;
        Ok(Packed128::from_parts_unchecked(
            crate::halves::halves_to_hi(bits[0], bits[1]),
            coords[0],
            coords[1],
        ))
    }

    /// The device rows of a stored seed, appended to `coords` (two floats) and `bits`
    /// (`BIT_WORDS` words). The default is the inverse of the default [`Format::to_packed`].
    ///
    /// # Errors
    /// A seed the format cannot read (nothing is appended then).
    fn from_packed(
        seed: &Packed128,
        coords: &mut Vec<f32>,
        bits: &mut Vec<i32>,
    ) -> Result<(), KernelError> {
        coords.extend(seed.floats());
        bits.extend(crate::halves::hi_to_halves(seed.hi));
        Ok(())
    }

    /// Checks a stored seed whatever the settings (what records check on save and load).
    /// The default: both floats of `lo` finite.
    fn validate_packed(seed: &Packed128) -> Result<(), KernelError> {
        seed.validate()
    }

    /// Checks the settings, and that `layout` suits the format.
    fn validate(&self, layout: &BlockLayout) -> Result<(), RbeError>;

    /// Columns of the per-seed signal a backward returns for the bits.
    fn signal_width(&self) -> usize;

    /// Whether the bits learn from a signal of the backward (so the layer needs a tracked
    /// probe on autodiff backends).
    fn learns_bits_by_signal(&self) -> bool;

    /// Checks a seed before it enters a layer.
    fn check_seed(&self, seed: &Packed128) -> Result<(), RbeError>;

    /// The seeds' floats after an update: the format's constraint on them.
    ///
    /// # Shapes
    /// - `coords`, returned: `[n_blocks, 2]`
    fn constrain<B: Backend>(&self, coords: Tensor<B, 2>) -> Tensor<B, 2>;

    /// A latent weight per cell that the optimizer trains instead of the bits (straight-
    /// through training), started from the seeds; `None` for formats without one.
    ///
    /// # Shapes
    /// - `coords`: `[n_blocks, 2]`, `bits`: `[n_blocks, BIT_WORDS]`; returns
    ///   `[n_blocks, signal_width]`
    fn latent<B: Backend>(
        &self,
        coords: Tensor<B, 2>,
        bits: Tensor<B, 2, Int>,
    ) -> Option<Tensor<B, 2>>;

    /// The bits a latent weight stands for (called after every update while there is one).
    ///
    /// # Shapes
    /// - `latent`: `[n_blocks, signal_width]`, `coords`: `[n_blocks, 2]`; returns
    ///   `[n_blocks, BIT_WORDS]`
    fn bits_from_latent<B: Backend>(
        &self,
        latent: Tensor<B, 2>,
        coords: Tensor<B, 2>,
        layout: &BlockLayout,
    ) -> Tensor<B, 2, Int>;

    /// [`Format::bits_from_latent`] by the native CPU kernel, on row-major f32 slices, bit for
    /// bit the same; `None` for a format without a latent (the backend then runs the
    /// tensor-op rule, which such a format never reaches).
    ///
    /// # Shapes
    /// - `coords`: `[n_blocks, 2]`, `latent`: `[n_blocks, signal_width]`; returns
    ///   `[n_blocks, BIT_WORDS]`
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    fn cpu_bits_from_latent(
        &self,
        layout: &BlockLayout,
        coords: &[f32],
        latent: &[f32],
    ) -> Option<Result<Vec<i32>, KernelError>> {
        let _ = (layout, coords, latent);
        None
    }

    /// [`Format::bits_from_latent`] by a CubeCL kernel, bit for bit the same, in
    /// `dtypes.int`; `None` for a format without one. Inputs are contiguous.
    fn cube_bits_from_latent<R: CubeRuntime>(
        &self,
        client: &ComputeClient<R>,
        dtypes: KernelDtypes,
        latent: &TensorHandle<R>,
        coords: &TensorHandle<R>,
        layout: &BlockLayout,
    ) -> Option<TensorHandle<R>> {
        let _ = (client, dtypes, latent, coords, layout);
        None
    }

    /// The bit-training rule: `bits` moved by the `signal` of a backward, for the layer whose
    /// bits have the id `id`; `state` holds what rules keep across steps.
    ///
    /// # Shapes
    /// - `bits`: `[n_blocks, BIT_WORDS]`, `signal`: `[n_blocks, signal_width]`; returns
    ///   `[n_blocks, BIT_WORDS]`
    fn step_bits<B: Backend>(
        id: ParamId,
        bits: Tensor<B, 2, Int>,
        signal: Tensor<B, 2>,
        state: &mut BitFlips,
    ) -> Tensor<B, 2, Int>;

    /// Fresh seeds for a layer of `layout` with `fan_in` inputs.
    fn init_seeds<B: Backend>(
        &self,
        init: &RbeInitializer,
        layout: &BlockLayout,
        fan_in: usize,
        device: &B::Device,
    ) -> Result<Vec<Packed128>, RbeError>;

    /// Fits seeds to the row-major `[rows, cols]` matrix `w`.
    fn encode<B: Backend>(
        &self,
        w: &[f64],
        layout: &BlockLayout,
        init: &RbeInitializer,
        device: &B::Device,
    ) -> Result<Encoded, RbeError>;

    /// `y = x W^T` in Burn tensor ops, on any backend and float dtype.
    ///
    /// # Shapes
    /// - `x`: `[batch, cols]`, `coords`: `[n_blocks, 2]`, `bits`: `[n_blocks, BIT_WORDS]`;
    ///   returns `[batch, rows]`
    fn tensor_forward<B: Backend>(
        &self,
        x: FloatTensor<B>,
        coords: FloatTensor<B>,
        bits: Tensor<B, 2, Int>,
        layout: &BlockLayout,
    ) -> FloatTensor<B>;

    /// The backward of [`Format::tensor_forward`] given `grad_y = dL/dy`.
    fn tensor_backward<B: Backend>(
        &self,
        x: FloatTensor<B>,
        coords: FloatTensor<B>,
        bits: Tensor<B, 2, Int>,
        grad_y: FloatTensor<B>,
        layout: &BlockLayout,
        wanted: Wanted,
    ) -> Grads<FloatTensor<B>>;

    /// The dense `[rows, cols]` weight in tensor ops.
    fn tensor_decode<B: Backend>(
        &self,
        coords: FloatTensor<B>,
        bits: Tensor<B, 2, Int>,
        layout: &BlockLayout,
    ) -> FloatTensor<B>;

    /// `y = x W^T` by the native CPU kernel, on row-major f32 slices; `cache` is the
    /// layer's (see [`DecodeCache`]).
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    #[allow(clippy::too_many_arguments)]
    fn cpu_forward(
        &self,
        layout: &BlockLayout,
        coords: &[f32],
        bits: &[i32],
        x: &[f32],
        batch: usize,
        y: &mut [f32],
        cache: &DecodeCache,
    ) -> Result<(), KernelError>;

    /// The backward by the native CPU kernel.
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    #[allow(clippy::too_many_arguments)]
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
    ) -> Result<Grads<Vec<f32>>, KernelError>;

    /// The dense weight by the native CPU kernel, row-major `[rows, cols]`.
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    fn cpu_decode(
        &self,
        layout: &BlockLayout,
        coords: &[f32],
        bits: &[i32],
    ) -> Result<Vec<f32>, KernelError>;

    /// `y = x W^T` by the CubeCL kernels. Inputs are contiguous.
    #[allow(clippy::too_many_arguments)]
    fn cube_forward<R: CubeRuntime>(
        &self,
        client: &ComputeClient<R>,
        dtypes: KernelDtypes,
        x: &TensorHandle<R>,
        coords: &TensorHandle<R>,
        bits: &TensorHandle<R>,
        layout: &BlockLayout,
    ) -> TensorHandle<R>;

    /// The backward by the CubeCL kernels. Inputs are contiguous.
    #[allow(clippy::too_many_arguments)]
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
    ) -> Grads<TensorHandle<R>>;

    /// The dense weight by a CubeCL kernel, or `None` when the format has none (the backend
    /// then runs [`Format::tensor_decode`]; decoding is for inspection only).
    fn cube_decode<R: CubeRuntime>(
        &self,
        client: &ComputeClient<R>,
        dtypes: KernelDtypes,
        coords: &TensorHandle<R>,
        bits: &TensorHandle<R>,
        layout: &BlockLayout,
    ) -> Option<TensorHandle<R>>;
}

/// Declares the registered formats, once: each `Name(SettingsType)` line gives
/// - the variant `SeedFormat::Name(SettingsType)`, what a configuration holds;
/// - the variant `FormatId::Name`, what a record's header stores;
/// - an entry of `FormatId::ALL` and an arm of the dispatch macros `each_format!` (a
///   `SeedFormat` value to its settings) and `each_format_id!` (a `FormatId` to its type).
macro_rules! register_formats {
    ($($(#[$doc:meta])* $name:ident($ty:ty)),+ $(,)?) => {
        register_formats!(@emit [$] $($(#[$doc])* $name($ty)),+);
    };
    (@emit [$d:tt] $($(#[$doc:meta])* $name:ident($ty:ty)),+) => {
        /// What a layer's seeds mean, with that format's settings: the value
        /// `RbeLinearConfig::format` holds.
        ///
        /// ```
        /// use rbe_burn::{BitTraining, PaperFormat, RbeLinearConfig, SeedFormat, SignFormat};
        /// let paper = RbeLinearConfig::new(784, 256)
        ///     .with_format(SeedFormat::Paper(PaperFormat::new().with_transitions(None)));
        /// let sign = RbeLinearConfig::new(784, 256)
        ///     .with_block_size(8)
        ///     .with_format(SeedFormat::SignBlueprint(SignFormat::new(BitTraining::Flip)));
        /// assert!(paper.validate().is_ok() && sign.validate().is_ok());
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
        pub enum SeedFormat {
            $($(#[$doc])* $name($ty),)+
        }

        /// The stored tag of a format: what a record's layer header says its seeds mean.
        ///
        /// Its serialised form is a unit variant, by name in self-describing formats and by
        /// index in bincode: registered formats keep their names and order, new ones go at
        /// the end.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum FormatId {
            $($(#[$doc])* $name,)+
        }

        impl FormatId {
            /// Every registered format, in registration order.
            pub const ALL: &'static [FormatId] = &[$(FormatId::$name),+];
        }

        /// Runs `$body` with `$f` bound to the [`Format`] settings inside a [`SeedFormat`].
        macro_rules! each_format {
            ($d format:expr, $d f:ident => $d body:expr) => {
                match $d format {
                    $(SeedFormat::$name($d f) => $d body,)+
                }
            };
        }

        /// Runs `$body` with the type `$F` set to the [`Format`] a [`FormatId`] names.
        macro_rules! each_format_id {
            ($d id:expr, $d F:ident => $d body:expr) => {
                match $d id {
                    $(FormatId::$name => {
                        type $d F = $ty;
                        $d body
                    })+
                }
            };
        }
    };
}

register_formats! {
    /// The paper's seed, bit-exact (docs/math.md §1–§7); also what records written before
    /// formats existed hold.
    Paper(PaperFormat),
    /// The sign blueprint: one bit per cell of blocks of at most 64 cells (docs/math.md §9).
    SignBlueprint(SignFormat),
    /// The ternary seed: a level in {-1, 0, +1} per cell of blocks of at most 64 cells and an
    /// f16 scale (docs/math.md §10).
    Ternary(TernaryFormat),
}

impl Default for SeedFormat {
    fn default() -> Self {
        Self::Paper(PaperFormat::default())
    }
}

impl From<PaperFormat> for SeedFormat {
    fn from(format: PaperFormat) -> Self {
        Self::Paper(format)
    }
}

impl From<SignFormat> for SeedFormat {
    fn from(format: SignFormat) -> Self {
        Self::SignBlueprint(format)
    }
}

impl From<TernaryFormat> for SeedFormat {
    fn from(format: TernaryFormat) -> Self {
        Self::Ternary(format)
    }
}

impl Default for FormatId {
    /// The paper's format: what records written before formats existed hold.
    fn default() -> Self {
        FormatId::Paper
    }
}

/// Container type reported to module visitors and mappers for the seeds' parameters; the
/// format's name follows the colon, so a mapper can tell which rule moves the bits.
const CONTAINER_PREFIX: &str = "Struct:RbeSeeds:";

impl FormatId {
    /// The format's lower-case name.
    pub fn name(self) -> &'static str {
        each_format_id!(self, F => F::NAME)
    }

    /// The container type of the seeds of this format, e.g. `Struct:RbeSeeds:paper`.
    pub(crate) fn container(self) -> &'static str {
        each_format_id!(self, F => F::CONTAINER)
    }

    /// The format whose seeds report `container` (see [`FormatId::container`]).
    pub(crate) fn from_container(container: &str) -> Option<Self> {
        container.strip_prefix(CONTAINER_PREFIX)?;
        FormatId::ALL
            .iter()
            .copied()
            .find(|id| id.container() == container)
    }

    /// i32 words per seed in the device `bits` tensor (see [`Format::BIT_WORDS`]).
    pub fn bit_words(self) -> usize {
        each_format_id!(self, F => F::BIT_WORDS)
    }

    /// See [`Format::to_packed`].
    pub fn to_packed(
        self,
        seed: usize,
        coords: [f32; 2],
        bits: &[i64],
    ) -> Result<Packed128, KernelError> {
        each_format_id!(self, F => F::to_packed(seed, coords, bits))
    }

    /// See [`Format::from_packed`].
    pub fn from_packed(
        self,
        seed: &Packed128,
        coords: &mut Vec<f32>,
        bits: &mut Vec<i32>,
    ) -> Result<(), KernelError> {
        each_format_id!(self, F => F::from_packed(seed, coords, bits))
    }

    /// See [`Format::validate_packed`].
    pub fn validate_packed(self, seed: &Packed128) -> Result<(), KernelError> {
        each_format_id!(self, F => F::validate_packed(seed))
    }

    /// Runs the format's bit-training rule (see [`Format::step_bits`]).
    pub(crate) fn step_bits<B: Backend>(
        self,
        id: ParamId,
        bits: Tensor<B, 2, Int>,
        signal: Tensor<B, 2>,
        state: &mut BitFlips,
    ) -> Tensor<B, 2, Int> {
        each_format_id!(self, F => F::step_bits(id, bits, signal, state))
    }
}

impl SeedFormat {
    /// The tag records store.
    pub fn id(&self) -> FormatId {
        each_format!(self, f => format_id_of(f))
    }

    /// See [`Format::validate`].
    pub fn validate(&self, layout: &BlockLayout) -> Result<(), RbeError> {
        each_format!(self, f => f.validate(layout))
    }

    /// i32 words per seed in the device `bits` tensor (see [`Format::BIT_WORDS`]).
    pub fn bit_words(&self) -> usize {
        self.id().bit_words()
    }

    /// See [`Format::signal_width`].
    pub fn signal_width(&self) -> usize {
        each_format!(self, f => f.signal_width())
    }

    /// See [`Format::learns_bits_by_signal`].
    pub fn learns_bits_by_signal(&self) -> bool {
        each_format!(self, f => f.learns_bits_by_signal())
    }

    /// See [`Format::check_seed`].
    pub fn check_seed(&self, seed: &Packed128) -> Result<(), RbeError> {
        each_format!(self, f => f.check_seed(seed))
    }

    /// See [`Format::constrain`].
    pub fn constrain<B: Backend>(&self, coords: Tensor<B, 2>) -> Tensor<B, 2> {
        each_format!(self, f => f.constrain(coords))
    }

    /// See [`Format::latent`].
    pub fn latent<B: Backend>(
        &self,
        coords: Tensor<B, 2>,
        bits: Tensor<B, 2, Int>,
    ) -> Option<Tensor<B, 2>> {
        each_format!(self, f => f.latent(coords, bits))
    }

    /// See [`Format::bits_from_latent`].
    pub fn bits_from_latent<B: Backend>(
        &self,
        latent: Tensor<B, 2>,
        coords: Tensor<B, 2>,
        layout: &BlockLayout,
    ) -> Tensor<B, 2, Int> {
        each_format!(self, f => f.bits_from_latent(latent, coords, layout))
    }

    /// See [`Format::init_seeds`].
    pub fn init_seeds<B: Backend>(
        &self,
        init: &RbeInitializer,
        layout: &BlockLayout,
        fan_in: usize,
        device: &B::Device,
    ) -> Result<Vec<Packed128>, RbeError> {
        each_format!(self, f => f.init_seeds::<B>(init, layout, fan_in, device))
    }

    /// See [`Format::encode`].
    pub fn encode<B: Backend>(
        &self,
        w: &[f64],
        layout: &BlockLayout,
        init: &RbeInitializer,
        device: &B::Device,
    ) -> Result<Encoded, RbeError> {
        each_format!(self, f => f.encode::<B>(w, layout, init, device))
    }

    /// See [`Format::tensor_forward`].
    pub fn tensor_forward<B: Backend>(
        &self,
        x: FloatTensor<B>,
        coords: FloatTensor<B>,
        bits: Tensor<B, 2, Int>,
        layout: &BlockLayout,
    ) -> FloatTensor<B> {
        each_format!(self, f => f.tensor_forward::<B>(x, coords, bits, layout))
    }

    /// See [`Format::tensor_backward`].
    pub fn tensor_backward<B: Backend>(
        &self,
        x: FloatTensor<B>,
        coords: FloatTensor<B>,
        bits: Tensor<B, 2, Int>,
        grad_y: FloatTensor<B>,
        layout: &BlockLayout,
        wanted: Wanted,
    ) -> Grads<FloatTensor<B>> {
        each_format!(self, f => f.tensor_backward::<B>(x, coords, bits, grad_y, layout, wanted))
    }

    /// See [`Format::tensor_decode`].
    pub fn tensor_decode<B: Backend>(
        &self,
        coords: FloatTensor<B>,
        bits: Tensor<B, 2, Int>,
        layout: &BlockLayout,
    ) -> FloatTensor<B> {
        each_format!(self, f => f.tensor_decode::<B>(coords, bits, layout))
    }

    /// See [`Format::cpu_forward`].
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    #[allow(clippy::too_many_arguments)]
    pub fn cpu_forward(
        &self,
        layout: &BlockLayout,
        coords: &[f32],
        bits: &[i32],
        x: &[f32],
        batch: usize,
        y: &mut [f32],
        cache: &DecodeCache,
    ) -> Result<(), KernelError> {
        each_format!(self, f => f.cpu_forward(layout, coords, bits, x, batch, y, cache))
    }

    /// See [`Format::cpu_backward`].
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    #[allow(clippy::too_many_arguments)]
    pub fn cpu_backward(
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
        each_format!(self, f => f.cpu_backward(layout, coords, bits, x, grad_y, batch, wanted, cache))
    }

    /// See [`Format::cpu_decode`].
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    pub fn cpu_decode(
        &self,
        layout: &BlockLayout,
        coords: &[f32],
        bits: &[i32],
    ) -> Result<Vec<f32>, KernelError> {
        each_format!(self, f => f.cpu_decode(layout, coords, bits))
    }

    /// See [`Format::cpu_bits_from_latent`].
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    pub fn cpu_bits_from_latent(
        &self,
        layout: &BlockLayout,
        coords: &[f32],
        latent: &[f32],
    ) -> Option<Result<Vec<i32>, KernelError>> {
        each_format!(self, f => f.cpu_bits_from_latent(layout, coords, latent))
    }

    /// See [`Format::cube_bits_from_latent`].
    pub fn cube_bits_from_latent<R: CubeRuntime>(
        &self,
        client: &ComputeClient<R>,
        dtypes: KernelDtypes,
        latent: &TensorHandle<R>,
        coords: &TensorHandle<R>,
        layout: &BlockLayout,
    ) -> Option<TensorHandle<R>> {
        each_format!(self, f => f.cube_bits_from_latent(client, dtypes, latent, coords, layout))
    }

    /// See [`Format::cube_forward`].
    pub fn cube_forward<R: CubeRuntime>(
        &self,
        client: &ComputeClient<R>,
        dtypes: KernelDtypes,
        x: &TensorHandle<R>,
        coords: &TensorHandle<R>,
        bits: &TensorHandle<R>,
        layout: &BlockLayout,
    ) -> TensorHandle<R> {
        each_format!(self, f => f.cube_forward(client, dtypes, x, coords, bits, layout))
    }

    /// See [`Format::cube_backward`].
    #[allow(clippy::too_many_arguments)]
    pub fn cube_backward<R: CubeRuntime>(
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
        each_format!(self, f => f.cube_backward(client, dtypes, x, grad_y, coords, bits, layout, wanted))
    }

    /// See [`Format::cube_decode`].
    pub fn cube_decode<R: CubeRuntime>(
        &self,
        client: &ComputeClient<R>,
        dtypes: KernelDtypes,
        coords: &TensorHandle<R>,
        bits: &TensorHandle<R>,
        layout: &BlockLayout,
    ) -> Option<TensorHandle<R>> {
        each_format!(self, f => f.cube_decode(client, dtypes, coords, bits, layout))
    }
}

fn format_id_of<F: Format>(_: &F) -> FormatId {
    F::ID
}
