//! The transition channel: how the state-transition counts of a backward pass reach the
//! CORDIC bits of each layer (docs/math.md §5).
//!
//! Burn's autodiff hands a backward step's results to parameters as gradients, and
//! optimizers see gradients only for float parameters. The bits are an int parameter, so the
//! counts travel on a float stand-in, the [`TransitionProbe`]:
//!
//! 1. On an autodiff backend every [`crate::RbeSeeds`] owns a probe, an `[n_blocks, 4]` zero
//!    leaf that tracks gradients (`[n_blocks, 64]` for a sign-blueprint layer that flips its
//!    bits; a straight-through one passes its latent weights instead and has an untracked
//!    probe). Inner (validation) modules own an untracked one.
//! 2. [`crate::RbeLinear`] passes it to [`crate::RbeBackend::rbe_forward`] as `probe`.
//!    `Autodiff<B>` makes it the third parent of the op.
//! 3. The backward step computes the net counts (only when the layer has a threshold and the
//!    probe is tracked) and registers them as the probe's gradient.
//! 4. [`crate::RbeSeeds`] shows the probe to visitors as a float parameter that carries the
//!    [`ParamId`] of its `bits`, so `GradientsParams::from_grads` files the counts under the
//!    id of the tensor they move.
//! 5. [`crate::apply_state_transitions`] (which [`crate::RbeOptimizer`] calls before every
//!    step) maps each int parameter; one with a gradient under its id is RBE bits, and the
//!    container type the seeds reported names their format. The signal is removed from the
//!    gradients, so the wrapped optimizer never sees it, and applied by the format's bit
//!    rule ([`crate::formats::Format::step_bits`]).
//!
//! Other visitors (records, finiteness checks) skip the probe through [`ParamPath`]: it is
//! the float parameter whose id is that of the int parameter visited just before it. No name
//! or container string is involved.
//!
//! The probe is never saved and never changes; its values are ignored.

use burn::module::{ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// The float stand-in that carries one layer's transition counts as its gradient.
#[derive(Debug, Clone)]
pub(crate) struct TransitionProbe<B: Backend> {
    leaf: Tensor<B, 2>,
}

impl<B: Backend> TransitionProbe<B> {
    /// A zero `[n_blocks, width]` probe (`width`: [`crate::formats::Format::signal_width`]);
    /// `tracked` on autodiff backends that train. An untracked probe holds `[0, width]`.
    pub fn new(n_blocks: usize, width: usize, device: &B::Device, tracked: bool) -> Self {
        // An untracked probe never reaches the op. Zeros for every block would cost 16 bytes
        // per seed in the paper's format and 256 in the sign blueprint's, where a 4096x4096
        // layer at inference (or straight-through training) would hold 64 MiB of them, as
        // much as the dense weight the seeds replace.
        let rows = if tracked { n_blocks } else { 0 };
        let leaf = Tensor::zeros([rows, width], device);
        Self {
            leaf: if tracked { leaf.require_grad() } else { leaf },
        }
    }

    /// Whether the probe receives gradients.
    pub fn is_tracked(&self) -> bool {
        self.leaf.is_require_grad()
    }

    /// The same kind of probe for `n_blocks` seeds on `device`.
    pub fn on(&self, n_blocks: usize, device: &B::Device) -> Self {
        Self::new(n_blocks, self.leaf.dims()[1], device, self.is_tracked())
    }

    /// The tensor to hand to the op, when the probe is tracked.
    pub fn op_input(&self) -> Option<Tensor<B, 2>> {
        self.is_tracked().then(|| self.leaf.clone())
    }

    /// Shows a tracked probe to `visitor` as a float parameter with the id of `bits`.
    pub fn visit<V: ModuleVisitor<B>>(&self, bits: ParamId, visitor: &mut V) {
        if self.is_tracked() {
            visitor.visit_float(&Param::initialized(bits, self.leaf.clone()));
        }
    }
}

/// Where a [`ModuleVisitor`] is: the dotted path of the current parameter, and whether a
/// float parameter is a transition probe (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct ParamPath {
    names: Vec<String>,
    last_int: Option<ParamId>,
}

impl ParamPath {
    /// Call from [`ModuleVisitor::enter_module`].
    pub fn enter(&mut self, name: &str) {
        self.names.push(name.to_string());
    }

    /// Call from [`ModuleVisitor::exit_module`].
    pub fn exit(&mut self) {
        self.names.pop();
    }

    /// Call from [`ModuleVisitor::visit_int`].
    pub fn saw_int(&mut self, id: ParamId) {
        self.last_int = Some(id);
    }

    /// Whether the float parameter `id` is a transition probe: Burn gives every parameter
    /// its own id, so only a probe shares the id of an int parameter.
    pub fn is_probe(&self, id: ParamId) -> bool {
        self.last_int == Some(id)
    }

    /// The current path, e.g. `hidden.seeds.coords`.
    pub fn dotted(&self) -> String {
        self.names.join(".")
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::backend::Autodiff;

    use super::TransitionProbe;
    use burn::backend::Flex;

    #[test]
    fn only_a_tracked_probe_holds_a_row_per_block() {
        let device = &Default::default();
        let tracked = TransitionProbe::<Autodiff<Flex>>::new(10, 64, device, true);
        assert_eq!(tracked.leaf.dims(), [10, 64]);
        assert!(tracked.op_input().is_some());
        // Untracked: inference, or straight-through training (whose latent weights carry the
        // signal instead).
        let untracked = TransitionProbe::<Autodiff<Flex>>::new(10, 64, device, false);
        assert_eq!(untracked.leaf.dims(), [0, 64]);
        assert!(untracked.op_input().is_none());
        // Resizing keeps both the width and whether it is tracked.
        assert_eq!(untracked.on(7, device).leaf.dims(), [0, 64]);
        assert_eq!(tracked.on(7, device).leaf.dims(), [7, 64]);
    }
}
