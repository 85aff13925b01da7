//! Moving the bits after a backward pass: the paper's state transitions (docs/math.md §5)
//! and the other formats' bit rules.
//!
//! The backward pass of every RBE layer whose bits learn from a signal leaves that signal in
//! the gradients, keyed by the id of the layer's `bits` parameter (the channel is described
//! in the module `probe`). Applying it is one map over the model: each layer's bits move by
//! its format's rule ([`crate::formats::Format::step_bits`]). The seeds report their format
//! in the container type of `bits`, so the mapper never guesses it. The paper's rule is
//! deterministic: counts are integers and their sums do not depend on order.

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::{GradientsParams, MultiGradientsParams};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor};

use crate::backend::RbeBackend;
use crate::formats::{BitFlips, FormatId};

/// Moves the bits of every RBE layer in `module` by the signal in `grads` (the paper's
/// transition counts, or `dL/dw` per cell for a sign blueprint trained by flips), and
/// removes that signal from `grads`. Call it between `from_grads` and the optimizer step;
/// layers without a signal are left unchanged.
///
/// How the signal gets there: each layer's backward pass computes it (when the layer's
/// bits learn from one) and returns it as the gradient of a float stand-in that the layer
/// passes to the op and shows to visitors under the id of its int `bits` parameter, so
/// `GradientsParams::from_grads` files it under that id. This function then moves every
/// int parameter that has a signal filed under its id by its format's rule, on the device
/// for the paper's transitions.
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
    if !any_signal::<B, M>(&module, |id| grads.get::<B::InnerBackend, 2>(id).is_some()) {
        return module;
    }
    module.map(&mut TransitionMapper::<B, _> {
        take: |id| grads.remove::<B::InnerBackend, 2>(id),
        flips,
        format: None,
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
    let signalled = |id| {
        grads
            .grads
            .iter()
            .any(|(g, _)| g.get::<B::InnerBackend, 2>(id).is_some())
    };
    if !any_signal::<B, M>(&module, signalled) {
        return module;
    }
    module.map(&mut TransitionMapper::<B, _> {
        take: |id| grads.remove::<B::InnerBackend, 2>(id).map(|(t, _)| t),
        flips,
        format: None,
        _backend: core::marker::PhantomData,
    })
}

/// Whether any int parameter of `module` has a signal (`signalled(id)`).
///
/// Mapping a module is not free even where nothing moves: seeds trained through latent
/// weights re-derive their bits from them in every map. Straight-through and frozen bits
/// never carry a signal, so their steps skip the map entirely.
fn any_signal<B, M>(module: &M, signalled: impl Fn(ParamId) -> bool) -> bool
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
{
    struct IntIds(Vec<ParamId>);
    impl<B: burn::tensor::backend::Backend> ModuleVisitor<B> for IntIds {
        fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<B, D, Int>>) {
            self.0.push(param.id);
        }
    }
    let mut ids = IntIds(Vec::new());
    module.visit(&mut ids);
    ids.0.into_iter().any(signalled)
}

/// Moves every int parameter that has a signal filed under its id: Burn never gives an int
/// parameter a gradient, so those are exactly the RBE `bits`, and the container type the
/// seeds report names their format.
struct TransitionMapper<'a, B, F> {
    take: F,
    flips: &'a mut BitFlips,
    format: Option<FormatId>,
    _backend: core::marker::PhantomData<B>,
}

impl<B, F> ModuleMapper<B> for TransitionMapper<'_, B, F>
where
    B: AutodiffBackend,
    B::InnerBackend: RbeBackend,
    F: FnMut(burn::module::ParamId) -> Option<Tensor<B::InnerBackend, 2>>,
{
    fn enter_module(&mut self, _name: &str, container_type: &str) {
        if let Some(format) = FormatId::from_container(container_type) {
            self.format = Some(format);
        }
    }

    fn map_int<const D: usize>(
        &mut self,
        param: Param<Tensor<B, D, Int>>,
    ) -> Param<Tensor<B, D, Int>> {
        if D != 2 {
            return param;
        }
        let Some(format) = self.format.take() else {
            return param;
        };
        let Some(signal) = (self.take)(param.id) else {
            return param;
        };
        let (id, bits, mapper) = param.consume();
        let dims = bits.dims();
        let bits = bits.reshape([dims[0], dims[1]]).inner();
        let moved = format.step_bits(id, bits, signal, self.flips);
        let moved = Tensor::<B, 2, Int>::from_inner(moved);
        Param::from_mapped_value(id, moved.reshape(dims), mapper)
    }
}
