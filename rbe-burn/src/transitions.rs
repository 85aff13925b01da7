//! Applying the paper's state transitions after a backward pass (docs/math.md §5).
//!
//! The backward pass of every RBE layer leaves its net transition counts in the gradients,
//! keyed by the id of the layer's `bits` parameter (the channel is described in the module
//! `probe`). Applying them is one map over the model: each slot's 2-bit state moves by its
//! count, modulo 4. The map is deterministic: counts are integers and their sums do not
//! depend on order.
//!
//! Sign-blueprint layers trained with [`crate::BitTraining::Flip`] send `dL/dw` per cell
//! through the same channel (`[n_blocks, 64]` instead of `[n_blocks, 4]`); their bits move
//! by the Bop rule, whose per-cell moving averages live in a [`BitFlips`].

use std::collections::HashMap;

use burn::module::{AutodiffModule, Module, ModuleMapper, Param, ParamId};
use burn::optim::LearningRate;
use burn::optim::{GradientsParams, MultiGradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use rbe_cubecl::sign_blueprint::{BopConfig, SIGN_CELLS, bop_block};

use crate::RbeError;
use crate::backend::RbeBackend;
use crate::finite::first_non_finite;
use crate::seeds::{halves_to_hi, hi_to_halves};

/// The state of the Bop flip rule ([`crate::BitTraining::Flip`]): its hyper-parameters and
/// the moving average of `dL/dw` of every cell of every layer, keyed by the id of the
/// layer's bits. [`RbeOptimizer`] owns one; a custom loop keeps one across steps and passes
/// it to [`apply_state_transitions_with`].
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
    fn step<B: Backend>(
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

/// Moves the CORDIC state bits of every RBE layer in `module` by the transition counts in
/// `grads`, and removes those counts from `grads`. Call it between `from_grads` and the
/// optimizer step; layers without counts are left unchanged.
///
/// How the counts get there: each layer's backward pass computes them (when its config has
/// a transition threshold) and returns them as the gradient of a float stand-in that the
/// layer passes to the op and shows to visitors under the id of its int `bits` parameter,
/// so `GradientsParams::from_grads` files them under that id. This function then moves
/// every int parameter that has counts filed under its id, with one backend op per layer
/// ([`crate::RbeBackend::rbe_apply_transitions`]).
///
/// Sign-blueprint layers trained with [`crate::BitTraining::Flip`] need the moving averages
/// of a [`BitFlips`] kept across steps: this function starts fresh ones at every call, so
/// use [`apply_state_transitions_with`] (or [`RbeOptimizer`]) for them.
pub fn apply_state_transitions<B, M>(module: M, grads: &mut GradientsParams) -> M
where
    B: AutodiffBackend,
    B::InnerBackend: RbeBackend,
    M: AutodiffModule<B>,
{
    apply_state_transitions_with(module, grads, &mut BitFlips::default())
}

/// [`apply_state_transitions`], with the Bop state of sign-blueprint layers kept in `flips`.
pub fn apply_state_transitions_with<B, M>(
    module: M,
    grads: &mut GradientsParams,
    flips: &mut BitFlips,
) -> M
where
    B: AutodiffBackend,
    B::InnerBackend: RbeBackend,
    M: AutodiffModule<B>,
{
    module.map(&mut TransitionMapper::<B, _> {
        take: |id| grads.remove::<B::InnerBackend, 2>(id),
        flips,
        _backend: core::marker::PhantomData,
    })
}

/// [`apply_state_transitions`] for gradients gathered on several devices: counts are summed.
pub fn apply_state_transitions_multi<B, M>(module: M, grads: &mut MultiGradientsParams) -> M
where
    B: AutodiffBackend,
    B::InnerBackend: RbeBackend,
    M: AutodiffModule<B>,
{
    apply_state_transitions_multi_with(module, grads, &mut BitFlips::default())
}

/// [`apply_state_transitions_multi`], with the Bop state kept in `flips`.
pub fn apply_state_transitions_multi_with<B, M>(
    module: M,
    grads: &mut MultiGradientsParams,
    flips: &mut BitFlips,
) -> M
where
    B: AutodiffBackend,
    B::InnerBackend: RbeBackend,
    M: AutodiffModule<B>,
{
    module.map(&mut TransitionMapper::<B, _> {
        take: |id| grads.remove::<B::InnerBackend, 2>(id).map(|(t, _)| t),
        flips,
        _backend: core::marker::PhantomData,
    })
}

/// Moves every int parameter that has transition counts filed under its id: Burn never
/// gives an int parameter a gradient, so those are exactly the RBE `bits`.
struct TransitionMapper<'a, B, F> {
    take: F,
    flips: &'a mut BitFlips,
    _backend: core::marker::PhantomData<B>,
}

impl<B, F> ModuleMapper<B> for TransitionMapper<'_, B, F>
where
    B: AutodiffBackend,
    B::InnerBackend: RbeBackend,
    F: FnMut(burn::module::ParamId) -> Option<Tensor<B::InnerBackend, 2>>,
{
    fn map_int<const D: usize>(
        &mut self,
        param: Param<Tensor<B, D, Int>>,
    ) -> Param<Tensor<B, D, Int>> {
        if D != 2 {
            return param;
        }
        let Some(counts) = (self.take)(param.id) else {
            return param;
        };
        let (id, bits, mapper) = param.consume();
        let dims = bits.dims();
        let bits = bits.reshape([dims[0], dims[1]]).inner();
        let moved = if counts.dims()[1] == SIGN_CELLS {
            self.flips.step(id, bits, counts)
        } else {
            let moved = B::InnerBackend::rbe_apply_transitions(
                bits.into_primitive(),
                counts.into_primitive().tensor(),
            );
            Tensor::from_primitive(moved)
        };
        let moved = Tensor::<B, 2, Int>::from_inner(moved);
        Param::from_mapped_value(id, moved.reshape(dims), mapper)
    }
}

/// Wraps any Burn optimizer so that each step first applies the RBE state transitions.
///
/// ```
/// # use burn::optim::AdamConfig;
/// use rbe_burn::RbeOptimizer;
/// let optim = RbeOptimizer::new(AdamConfig::new().init::<burn::backend::Autodiff<burn::backend::NdArray>, rbe_burn::RbeLinear<_>>());
/// # let _ = optim;
/// ```
///
/// Hand the wrapped optimizer to burn-train's `Learner` like any other.
///
/// # Non-finite updates
/// A step that leaves any float parameter (seeds, residual, bias, other layers) holding NaN
/// or infinity, typically from a learning rate that is too large, is refused: `step` returns
/// the module as it was before the step, logs a warning, and
/// [`RbeOptimizer::take_rejected`] reports it. The inner optimizer's own state (e.g. Adam's
/// moments) has still seen the step. Checking costs one small device readback per step.
#[derive(Clone)]
pub struct RbeOptimizer<O> {
    inner: O,
    rejected: Option<String>,
    flips: BitFlips,
}

impl<O> RbeOptimizer<O> {
    /// Wraps `inner`: each of its steps is then preceded by the state transitions and
    /// followed by the finiteness check.
    pub fn new(inner: O) -> Self {
        Self {
            inner,
            rejected: None,
            flips: BitFlips::default(),
        }
    }

    /// The Bop hyper-parameters for sign-blueprint layers trained with
    /// [`crate::BitTraining::Flip`] (default: [`BitFlips::default`]).
    ///
    /// # Errors
    /// As [`BitFlips::new`].
    pub fn with_bit_flips(self, config: BopConfig) -> Result<Self, RbeError> {
        Ok(Self {
            flips: BitFlips::new(config)?,
            ..self
        })
    }

    /// The Bop state: hyper-parameters, averages and the count of flips.
    pub fn bit_flips(&mut self) -> &mut BitFlips {
        &mut self.flips
    }

    /// The last refused step since the previous call, as [`RbeError::NonFinite`] naming the
    /// first parameter the step made non-finite.
    pub fn take_rejected(&mut self) -> Option<RbeError> {
        self.rejected
            .take()
            .map(|path| RbeError::NonFinite(format!("{path} (optimizer step refused)")))
    }

    /// `after` if all its float parameters are finite, else `before`, remembering why.
    fn keep_finite<B: Backend, M: Module<B>>(&mut self, before: M, after: M) -> M {
        match first_non_finite::<B, M>(&after) {
            None => after,
            Some(path) => {
                log::warn!("RbeOptimizer: step refused, it made `{path}` non-finite");
                self.rejected = Some(path);
                before
            }
        }
    }

    /// Unwraps the inner optimizer, e.g. to read its record on its own.
    pub fn into_inner(self) -> O {
        self.inner
    }
}

impl<O, M, B> Optimizer<M, B> for RbeOptimizer<O>
where
    O: Optimizer<M, B>,
    M: AutodiffModule<B>,
    B: AutodiffBackend,
    B::InnerBackend: RbeBackend,
{
    type Record = O::Record;

    fn step(&mut self, lr: LearningRate, module: M, mut grads: GradientsParams) -> M {
        let before = module.clone();
        let module = apply_state_transitions_with(module, &mut grads, &mut self.flips);
        let after = self.inner.step(lr, module, grads);
        self.keep_finite::<B, M>(before, after)
    }

    fn step_multi(&mut self, lr: LearningRate, module: M, mut grads: MultiGradientsParams) -> M {
        let before = module.clone();
        let module = apply_state_transitions_multi_with(module, &mut grads, &mut self.flips);
        let after = self.inner.step_multi(lr, module, grads);
        self.keep_finite::<B, M>(before, after)
    }

    fn to_record(&self) -> Self::Record {
        self.inner.to_record()
    }

    fn load_record(self, record: Self::Record) -> Self {
        Self {
            inner: self.inner.load_record(record),
            rejected: None,
            flips: self.flips,
        }
    }
}
