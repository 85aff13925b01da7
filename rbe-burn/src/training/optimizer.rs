//! [`RbeOptimizer`]: any Burn optimizer, with the bits moved before each step and
//! non-finite steps refused after it.

use burn::module::{AutodiffModule, Module};
use burn::optim::{GradientsParams, LearningRate, MultiGradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use rbe_kernels::formats::sign::BopConfig;

use super::bits::{apply_state_transitions_multi_with, apply_state_transitions_with};
use super::finite::first_non_finite;
use crate::RbeError;
use crate::backend::RbeBackend;
use crate::formats::BitFlips;

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
