//! [`ParallelError`]: what data-parallel training refuses before it starts, and what stops it.

use std::fmt;

/// Why [`super::DataParallel`] refused a configuration, or stopped training.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParallelError {
    /// The device list was empty: there is no replica to train.
    NoDevices,
    /// A fault was asked for on a replica that does not exist.
    NoSuchReplica {
        /// The replica asked for.
        replica: usize,
        /// How many replicas there are.
        replicas: usize,
    },
    /// After `step` optimizer steps, `replica` held parameters that differ from the others'
    /// (every float and int parameter is compared bit for bit). Training stopped on every
    /// replica before the next step was applied.
    ReplicaMismatch {
        /// The optimizer steps every replica had applied when the parameters were compared
        /// (0: they differed before the first step).
        step: usize,
        /// The replica that differs from the majority (with two replicas, replica 1; see
        /// [`super::Fingerprint::odd_one_out`]).
        replica: usize,
        /// The dotted path of the first parameter that differs, e.g. `hidden.seeds.bits`.
        parameter: String,
    },
}

impl fmt::Display for ParallelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoDevices => write!(f, "data-parallel training needs at least one device"),
            Self::NoSuchReplica { replica, replicas } => write!(
                f,
                "no replica {replica} to inject a fault into: there are {replicas}"
            ),
            Self::ReplicaMismatch {
                step,
                replica,
                parameter,
            } => write!(
                f,
                "replica {replica} diverged from the others after step {step}: \
                 `{parameter}` differs"
            ),
        }
    }
}

impl std::error::Error for ParallelError {}
