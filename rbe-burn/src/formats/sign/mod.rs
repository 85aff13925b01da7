//! The sign blueprint (docs/math.md §9): one sign bit per cell of a block of at most 64
//! cells, `coords = (alpha, mu)`, `w_ij = mu + alpha (2 bit_ij - 1)`. Its kernels live in
//! `rbe_kernels::formats::sign`.
//!
//! - [`SignFormat`]: the settings ([`BitTraining`]) and the [`Format`] impl;
//! - `cells`: the bits as per-cell tensors (latent weights for straight-through training);
//! - `ops`: the layer in tensor ops; `init`: fresh seeds; [`BitFlips`]: the Bop rule's state.

pub(super) mod cells;
mod flips;
mod init;
pub(super) mod ops;

use burn::module::ParamId;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Int, Tensor};
use burn_cubecl::CubeRuntime;
use cubecl::prelude::ComputeClient;
use cubecl::std::tensor::TensorHandle;
use rbe_kernels::cube::KernelDtypes;
use rbe_kernels::formats::sign::{self as blueprint, SIGN_CELLS, SignFit, kernels};
use rbe_kernels::{BlockLayout, Grads, Packed128};
use serde::{Deserialize, Serialize};

#[cfg(any(feature = "flex", feature = "ndarray"))]
use rbe_kernels::formats::sign::cpu;
#[cfg(any(feature = "flex", feature = "ndarray"))]
use rbe_kernels::{DecodeCache, KernelError};

pub use flips::BitFlips;

use super::{Encoded, Format, FormatId, RbeInitializer, Wanted};
use crate::RbeError;

/// How the bits of a sign-blueprint layer learn (docs/math.md §9).
///
/// `alpha` and `mu` have exact gradients and are trained by the optimizer either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum BitTraining {
    /// Straight-through: during training each cell has a latent f32 weight, a float
    /// parameter of the seeds that the optimizer moves by `dL/dw` of its cell; after every
    /// update a bit is `latent >= mu`. The latent is never saved: the stored model is the
    /// seeds, and a loaded model starts a fresh latent from its seeds.
    #[default]
    StraightThrough,
    /// Bop-style flips without a latent weight: [`crate::RbeOptimizer`] keeps a moving
    /// average `m` of `dL/dw` per cell, `m <- (1 - gamma) m + gamma g`, and flips a bit when
    /// `|m| > tau` and the average pushes the weight towards the other level
    /// ([`rbe_kernels::formats::sign::bop_step`]; `gamma` and `tau` are the optimizer's,
    /// [`crate::RbeOptimizer::with_bit_flips`]).
    Flip,
    /// The bits stay as they are; only `alpha` and `mu` train.
    Frozen,
}

/// The settings of the sign blueprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SignFormat {
    /// How the bits learn.
    pub bit_training: BitTraining,
}

impl SignFormat {
    /// The sign blueprint with bits trained by `bit_training`.
    pub fn new(bit_training: BitTraining) -> Self {
        Self { bit_training }
    }
}

impl Format for SignFormat {
    const ID: FormatId = FormatId::SignBlueprint;
    const NAME: &'static str = "sign-blueprint";
    const CONTAINER: &'static str = "Struct:RbeSeeds:sign-blueprint";

    fn validate(&self, layout: &BlockLayout) -> Result<(), RbeError> {
        Ok(blueprint::check_block(layout)?)
    }

    fn signal_width(&self) -> usize {
        SIGN_CELLS
    }

    fn learns_bits_by_signal(&self) -> bool {
        self.bit_training == BitTraining::Flip
    }

    fn check_seed(&self, seed: &Packed128) -> Result<(), RbeError> {
        seed.validate()?;
        // Bit 1 is the upper level only for alpha >= 0; the encoder and the clamp keep it so.
        let [alpha, _] = seed.floats();
        if alpha < 0.0 {
            return Err(RbeError::Config(format!(
                "sign-blueprint alpha must be >= 0, got {alpha}"
            )));
        }
        Ok(())
    }

    fn constrain<B: Backend>(&self, coords: Tensor<B, 2>) -> Tensor<B, 2> {
        let n = coords.dims()[0];
        let alpha = coords.clone().slice([0..n, 0..1]).clamp_min(0.0);
        coords.slice_assign([0..n, 0..1], alpha)
    }

    fn latent<B: Backend>(
        &self,
        coords: Tensor<B, 2>,
        bits: Tensor<B, 2, Int>,
    ) -> Option<Tensor<B, 2>> {
        (self.bit_training == BitTraining::StraightThrough)
            .then(|| cells::latent_from_seeds(coords, bits))
    }

    fn bits_from_latent<B: Backend>(
        &self,
        latent: Tensor<B, 2>,
        coords: Tensor<B, 2>,
        layout: &BlockLayout,
    ) -> Tensor<B, 2, Int> {
        cells::bits_from_latent(latent, coords, layout)
    }

    fn step_bits<B: Backend>(
        id: ParamId,
        bits: Tensor<B, 2, Int>,
        signal: Tensor<B, 2>,
        state: &mut BitFlips,
    ) -> Tensor<B, 2, Int> {
        state.step(id, bits, signal)
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
        // Per block: mu the mean, alpha the mean absolute deviation from it, each bit the
        // sign of w - mu (closed form, docs/math.md §9).
        let (seeds, _) = blueprint::encode_dense(w, layout, SignFit::Moments)?;
        // What the stored (f32) seeds actually generate.
        let generated = blueprint::decode_dense(&seeds, layout)?;
        Ok(Encoded {
            seeds,
            generated,
            clamped_low: 0,
            clamped_high: 0,
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
        _cache: &DecodeCache,
    ) -> Result<(), KernelError> {
        // The bits are read in place (one bit per weight); there is nothing worth caching.
        cpu::forward(layout, coords, bits, x, batch, y)
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
        _cache: &DecodeCache,
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
        )
    }

    #[cfg(any(feature = "flex", feature = "ndarray"))]
    fn cpu_decode(
        &self,
        layout: &BlockLayout,
        coords: &[f32],
        bits: &[i32],
    ) -> Result<Vec<f32>, KernelError> {
        KernelError::check_len("coords", coords.len(), 2 * layout.num_blocks())?;
        KernelError::check_len("bits", bits.len(), 2 * layout.num_blocks())?;
        let seeds: Vec<Packed128> = coords
            .chunks_exact(2)
            .zip(bits.chunks_exact(2))
            .map(|(c, b)| {
                let hi = crate::halves::halves_to_hi(b[0].into(), b[1].into());
                Packed128::from_parts_unchecked(hi, c[0], c[1])
            })
            .collect();
        let w = blueprint::decode_dense(&seeds, layout)?;
        Ok(w.into_iter().map(|v| v as f32).collect())
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
        // One launch for (alpha, mu) and the per-cell signal, one for `G W`.
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
