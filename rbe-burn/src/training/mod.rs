//! Training the seeds: the channel that carries the bits' signal from a backward pass to
//! the optimizer ([`TransitionProbe`], `probe`), the bit rules applied before each step
//! (`bits`), the optimizer wrapper ([`RbeOptimizer`]) and the finiteness checks (`finite`).

mod bits;
mod finite;
mod optimizer;
mod probe;

pub use bits::{
    apply_state_transitions, apply_state_transitions_multi, apply_state_transitions_multi_with,
    apply_state_transitions_with,
};
pub use finite::check_finite;
pub(crate) use finite::first_non_finite;
pub use optimizer::RbeOptimizer;
pub(crate) use probe::{ParamPath, TransitionProbe};
