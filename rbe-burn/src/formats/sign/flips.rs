//! The Bop flip rule's state ([`BitTraining::Flip`](super::BitTraining::Flip)).

use std::collections::HashMap;

use burn::module::ParamId;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rbe_kernels::formats::sign::{BopConfig, SIGN_CELLS, bop_block};

use crate::RbeError;
use crate::halves::{halves_to_hi, hi_to_halves};

/// The state of the Bop flip rule ([`crate::BitTraining::Flip`]): its hyper-parameters and
/// the moving average of `dL/dw` of every cell of every layer, keyed by the id of the
/// layer's bits. [`crate::RbeOptimizer`] owns one; a custom loop keeps one across steps and passes
/// it to [`crate::apply_state_transitions_with`].
///
/// The rule runs on the host (download the signal and the bits, flip, upload the bits):
/// `2 * 4 + 64 * 4` bytes per block and step each way, small beside the layer's matmuls on
/// CPU backends and a synchronisation point on GPUs.
#[derive(Debug, Clone)]
pub struct BitFlips {
    config: BopConfig,
    momentum: HashMap<ParamId, Vec<[f64; SIGN_CELLS]>>,
    flipped: usize,
}

impl BitFlips {
    /// Empty averages and the given `gamma` (in `(0, 1]`) and `tau` (`>= 0`).
    ///
    /// # Errors
    /// [`RbeError::Config`] for values outside those ranges.
    pub fn new(config: BopConfig) -> Result<Self, RbeError> {
        if !(config.gamma > 0.0
            && config.gamma <= 1.0
            && config.tau >= 0.0
            && config.tau.is_finite())
        {
            return Err(RbeError::Config(format!(
                "bit flips need 0 < gamma <= 1 and finite tau >= 0, got gamma {} and tau {}",
                config.gamma, config.tau
            )));
        }
        Ok(Self {
            config,
            momentum: HashMap::new(),
            flipped: 0,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> BopConfig {
        self.config
    }

    /// Bits flipped since the previous call.
    pub fn take_flipped(&mut self) -> usize {
        std::mem::take(&mut self.flipped)
    }

    /// One Bop step on the bits `[n_blocks, 2]` of the layer `id` given its signal
    /// `[n_blocks, 64]`. Cells outside the matrix have a zero signal and never flip.
    pub(crate) fn step<B: Backend>(
        &mut self,
        id: ParamId,
        bits: Tensor<B, 2, Int>,
        signal: Tensor<B, 2>,
    ) -> Tensor<B, 2, Int> {
        let [n, _] = bits.dims();
        let device = bits.device();
        let halves = bits.into_data().convert::<i64>();
        let halves = halves.as_slice::<i64>().expect("converted to i64");
        let signal = signal.into_data().convert::<f64>();
        let signal = signal.as_slice::<f64>().expect("converted to f64");
        let momentum = self
            .momentum
            .entry(id)
            .or_insert_with(|| vec![[0.0; SIGN_CELLS]; n]);
        if momentum.len() != n {
            *momentum = vec![[0.0; SIGN_CELLS]; n];
        }
        let mut moved = Vec::with_capacity(2 * n);
        for (s, m) in momentum.iter_mut().enumerate() {
            let mut hi = halves_to_hi(halves[2 * s], halves[2 * s + 1]);
            let g: &[f64; SIGN_CELLS] = signal[s * SIGN_CELLS..(s + 1) * SIGN_CELLS]
                .try_into()
                .expect("64 cells per seed");
            // alpha >= 0 is kept by the seeds' clamp, so bit 1 is the upper level.
            self.flipped += bop_block(&mut hi, m, g, u64::MAX, 1.0, self.config);
            moved.extend(hi_to_halves(hi));
        }
        Tensor::from_data(TensorData::new(moved, [n, 2]), &device)
    }
}

impl Default for BitFlips {
    /// `gamma = 1e-2`, `tau = 1e-6`: an average over about 100 steps; see the MNIST example
    /// in the README for how they were chosen.
    fn default() -> Self {
        Self::new(BopConfig {
            gamma: 1e-2,
            tau: 1e-6,
        })
        .expect("valid defaults")
    }
}
