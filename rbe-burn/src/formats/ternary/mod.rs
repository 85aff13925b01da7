//! The ternary format (docs/math.md §10): a level `t ∈ {-1, 0, +1}` per cell of a block of
//! at most 64 cells and an f16 scale, `w_ij = alpha * t_ij`. Its kernels live in
//! `rbe_kernels::formats::ternary`.
//!
//! The stored seed is one 128-bit value (the 64 levels as a base-3 integer, `alpha` as
//! f16); the device form is `coords = (alpha, 0)` and four i32 words of 2-bit codes, so this
//! format overrides [`Format::BIT_WORDS`], [`Format::to_packed`], [`Format::from_packed`]
//! and [`Format::validate_packed`].
//!
//! - [`TernaryFormat`]: the settings and the [`Format`] impl;
//! - `levels`: the codes as per-cell tensors (latent weights for straight-through training);
//! - `ops`: the layer in tensor ops; `init`: fresh seeds.

mod init;
mod levels;
mod ops;

use burn::module::ParamId;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Int, Tensor};
use burn_cubecl::CubeRuntime;
use cubecl::prelude::ComputeClient;
use cubecl::std::tensor::TensorHandle;
use rbe_kernels::cube::KernelDtypes;
use rbe_kernels::formats::ternary::{
    self as ternary, ALPHA_MAX, ALPHA_MIN, TERNARY_CELLS, kernels,
};
use rbe_kernels::{BlockLayout, Grads, KernelError, Packed128};
use serde::{Deserialize, Serialize};

#[cfg(any(feature = "flex", feature = "ndarray"))]
use rbe_kernels::DecodeCache;
#[cfg(any(feature = "flex", feature = "ndarray"))]
use rbe_kernels::formats::ternary::cpu;

use super::{BitFlips, BitTraining, Encoded, Format, FormatId, RbeInitializer, Wanted};
use crate::RbeError;

/// `2^13 + 1`: Veltkamp's splitter for rounding an f32 (24 significant bits) to f16's 11.
const SPLITTER: f32 = 8193.0;

/// The settings of the ternary format.
///
/// `alpha` has an exact gradient and is trained by the optimizer; the levels learn by
/// `bit_training`: [`BitTraining::StraightThrough`] (a latent weight per cell, each level
/// the nearest one of its latent weight after every update) or [`BitTraining::Frozen`].
/// [`BitTraining::Flip`] (the sign blueprint's Bop rule) has no ternary counterpart and is
/// refused by [`Format::validate`].
///
/// ```
/// use rbe_burn::{BitTraining, RbeLinearConfig, SeedFormat, TernaryFormat};
/// let config = RbeLinearConfig::new(784, 256)
///     .with_block_size(8)
///     .with_format(SeedFormat::Ternary(TernaryFormat::new(BitTraining::StraightThrough)));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TernaryFormat {
    /// How the levels learn.
    pub bit_training: BitTraining,
}

impl TernaryFormat {
    /// The ternary format with levels trained by `bit_training`.
    pub fn new(bit_training: BitTraining) -> Self {
        Self { bit_training }
    }
}

/// `x` rounded to f16's 11 significant bits in f32 arithmetic (Veltkamp splitting): exact
/// for values in f16's normal range, which the caller clamps to first. Burn has no f16 cast
/// that every backend takes, and the rounding must be exact so that the trained `alpha` is
/// the stored one.
fn round_to_f16<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let c = x.clone().mul_scalar(SPLITTER);
    c.clone() - (c - x)
}

impl Format for TernaryFormat {
    const ID: FormatId = FormatId::Ternary;
    const NAME: &'static str = "ternary";
    const CONTAINER: &'static str = "Struct:RbeSeeds:ternary";
    const BIT_WORDS: usize = ternary::TERNARY_BIT_WORDS;

    fn to_packed(seed: usize, coords: [f32; 2], bits: &[i64]) -> Result<Packed128, KernelError> {
        ternary::from_device(seed, coords, bits)
    }

    fn from_packed(
        seed: &Packed128,
        coords: &mut Vec<f32>,
        bits: &mut Vec<i32>,
    ) -> Result<(), KernelError> {
        let (c, words) = ternary::to_device(seed)?;
        coords.extend(c);
        bits.extend(words);
        Ok(())
    }

    fn validate_packed(seed: &Packed128) -> Result<(), KernelError> {
        ternary::validate(seed)
    }

    fn validate(&self, layout: &BlockLayout) -> Result<(), RbeError> {
        if self.bit_training == BitTraining::Flip {
            return Err(RbeError::Config(
                "the ternary format trains its levels straight-through or keeps them frozen; \
                 BitTraining::Flip is the sign blueprint's rule"
                    .into(),
            ));
        }
        Ok(ternary::check_block(layout)?)
    }

    fn signal_width(&self) -> usize {
        TERNARY_CELLS
    }

    fn learns_bits_by_signal(&self) -> bool {
        false
    }

    fn check_seed(&self, seed: &Packed128) -> Result<(), RbeError> {
        Ok(ternary::validate(seed)?)
    }

    fn constrain<B: Backend>(&self, coords: Tensor<B, 2>) -> Tensor<B, 2> {
        let n = coords.dims()[0];
        let alpha = coords
            .clone()
            .slice([0..n, 0..1])
            .clamp(ALPHA_MIN, ALPHA_MAX);
        // The second float is unused; keeping it 0 keeps the device form canonical.
        Tensor::cat(
            vec![round_to_f16(alpha), coords.slice([0..n, 1..2]).zeros_like()],
            1,
        )
    }

    fn latent<B: Backend>(
        &self,
        coords: Tensor<B, 2>,
        bits: Tensor<B, 2, Int>,
    ) -> Option<Tensor<B, 2>> {
        (self.bit_training == BitTraining::StraightThrough)
            .then(|| levels::latent_from_seeds(coords, bits))
    }

    fn bits_from_latent<B: Backend>(
        &self,
        latent: Tensor<B, 2>,
        coords: Tensor<B, 2>,
        layout: &BlockLayout,
    ) -> Tensor<B, 2, Int> {
        levels::bits_from_latent(latent, coords, layout)
    }

    fn step_bits<B: Backend>(
        _id: ParamId,
        bits: Tensor<B, 2, Int>,
        _signal: Tensor<B, 2>,
        _state: &mut BitFlips,
    ) -> Tensor<B, 2, Int> {
        // The levels never learn through the signal channel (see `learns_bits_by_signal`).
        bits
    }

    fn init_seeds<B: Backend>(
        &self,
        init: &RbeInitializer,
        layout: &BlockLayout,
        fan_in: usize,
        device: &B::Device,
    ) -> Result<Vec<Packed128>, RbeError> {
        init::seeds::<B>(init, layout, fan_in, device)
    }

    fn encode<B: Backend>(
        &self,
        w: &[f64],
        layout: &BlockLayout,
        _init: &RbeInitializer,
        _device: &B::Device,
    ) -> Result<Encoded, RbeError> {
        // The exact least-squares fit per block, alpha then rounded to f16 and the levels
        // re-chosen for it (docs/math.md §10).
        let (seeds, report) = ternary::encode_dense(w, layout)?;
        let generated = ternary::decode_dense(&seeds, layout)?;
        Ok(Encoded {
            seeds,
            generated,
            clamped_low: report.clamped_low,
            clamped_high: report.clamped_high,
        })
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
        ops::backward(x, coords, bits, grad_y, layout, wanted)
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
        cpu::backward(
            layout,
            coords,
            bits,
            x,
            grad_y,
            batch,
            wanted.x,
            wanted.signal,
            cache,
        )
    }

    #[cfg(any(feature = "flex", feature = "ndarray"))]
    fn cpu_decode(
        &self,
        layout: &BlockLayout,
        coords: &[f32],
        bits: &[i32],
    ) -> Result<Vec<f32>, KernelError> {
        Ok(cpu::decode(layout, coords, bits)?.w)
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
        kernels::forward(client, dtypes, x, coords, bits, layout)
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
        kernels::backward(
            client,
            dtypes,
            x,
            grad_y,
            coords,
            bits,
            layout,
            wanted.x,
            wanted.signal,
        )
    }

    #[cfg(any(feature = "flex", feature = "ndarray"))]
    fn cpu_bits_from_latent(
        &self,
        layout: &BlockLayout,
        coords: &[f32],
        latent: &[f32],
    ) -> Option<Result<Vec<i32>, KernelError>> {
        Some(cpu::latent_bits(layout, coords, latent))
    }

    fn cube_bits_from_latent<R: CubeRuntime>(
        &self,
        client: &ComputeClient<R>,
        dtypes: KernelDtypes,
        latent: &TensorHandle<R>,
        coords: &TensorHandle<R>,
        layout: &BlockLayout,
    ) -> Option<TensorHandle<R>> {
        Some(kernels::latent_bits(client, dtypes, latent, coords, layout))
    }

    fn cube_decode<R: CubeRuntime>(
        &self,
        _client: &ComputeClient<R>,
        _dtypes: KernelDtypes,
        _coords: &TensorHandle<R>,
        _bits: &TensorHandle<R>,
        _layout: &BlockLayout,
    ) -> Option<TensorHandle<R>> {
        None
    }
}
