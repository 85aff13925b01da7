//! Applying the paper's state transitions after a backward pass (docs/math.md §5).
//!
//! The backward pass of every RBE layer leaves its net transition counts in the gradients,
//! keyed by the id of the layer's `bits` parameter (the channel is described in the module
//! `probe`). Applying them is one map over the model: each slot's 2-bit state moves by its
//! count, modulo 4. The map is deterministic: counts are integers and their sums do not
//! depend on order.

use burn::module::{AutodiffModule, Module, ModuleMapper, Param};
use burn::optim::LearningRate;
use burn::optim::{GradientsParams, MultiGradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};

use crate::RbeError;
use crate::backend::RbeBackend;
use crate::finite::first_non_finite;

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
pub fn apply_state_transitions<B, M>(module: M, grads: &mut GradientsParams) -> M
where
    B: AutodiffBackend,
    B::InnerBackend: RbeBackend,
    M: AutodiffModule<B>,
{
    module.map(&mut TransitionMapper::<B, _> {
        take: |id| grads.remove::<B::InnerBackend, 2>(id),
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
    module.map(&mut TransitionMapper::<B, _> {
        take: |id| grads.remove::<B::InnerBackend, 2>(id).map(|(t, _)| t),
        _backend: core::marker::PhantomData,
    })
}

/// Moves every int parameter that has transition counts filed under its id: Burn never
/// gives an int parameter a gradient, so those are exactly the RBE `bits`.
struct TransitionMapper<B, F> {
    take: F,
    _backend: core::marker::PhantomData<B>,
}

impl<B, F> ModuleMapper<B> for TransitionMapper<B, F>
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
        let bits = bits.reshape([dims[0], dims[1]]).inner().into_primitive();
        let moved = B::InnerBackend::rbe_apply_transitions(bits, counts.into_primitive().tensor());
        let moved = Tensor::<B, 2, Int>::from_inner(Tensor::from_primitive(moved));
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
}

impl<O> RbeOptimizer<O> {
    /// Wraps `inner`: each of its steps is then preceded by the state transitions and
    /// followed by the finiteness check.
    pub fn new(inner: O) -> Self {
        Self {
            inner,
            rejected: None,
        }
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
        let module = apply_state_transitions(module, &mut grads);
        let after = self.inner.step(lr, module, grads);
        self.keep_finite::<B, M>(before, after)
    }

    fn step_multi(&mut self, lr: LearningRate, module: M, mut grads: MultiGradientsParams) -> M {
        let before = module.clone();
        let module = apply_state_transitions_multi(module, &mut grads);
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
        }
    }
}
