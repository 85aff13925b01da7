//! [`ParallelOutcome`]: what a data-parallel run leaves behind besides the model the
//! `Learner` returns.

use std::sync::{Arc, Mutex, MutexGuard};

use super::error::ParallelError;

/// A handle to the outcome of [`super::DataParallel`]'s last run, readable after
/// `SupervisedTraining::launch` returns (the strategy itself has moved into the training by
/// then). Clones share the same outcome.
///
/// `M` is the training model type.
pub struct ParallelOutcome<M> {
    shared: Arc<Mutex<Recorded<M>>>,
}

struct Recorded<M> {
    error: Option<ParallelError>,
    steps: usize,
    replicas: Vec<M>,
}

impl<M> Clone for ParallelOutcome<M> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<M> Default for ParallelOutcome<M> {
    fn default() -> Self {
        Self {
            shared: Arc::new(Mutex::new(Recorded {
                error: None,
                steps: 0,
                replicas: Vec::new(),
            })),
        }
    }
}

impl<M> ParallelOutcome<M> {
    /// `Ok` if training ran (to the end, or until an interrupt or early stopping) with
    /// every replica holding the same parameters after every step.
    ///
    /// # Errors
    /// [`ParallelError::ReplicaMismatch`] if the replicas diverged; training stopped there
    /// and the `Learner`'s model is replica 0's at that point.
    pub fn result(&self) -> Result<(), ParallelError> {
        match &self.lock().error {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// The optimizer steps each replica applied (they all apply the same number). An
    /// optimizer shared by reference between the replicas, such as a step counter behind an
    /// `Arc`, sees this many steps times the number of replicas.
    pub fn optimizer_steps(&self) -> usize {
        self.lock().steps
    }

    /// Every replica's model at the end, in replica order (replica 0's is the one the
    /// `Learner` returns); empty before a run has ended.
    pub fn replicas(&self) -> Vec<M>
    where
        M: Clone,
    {
        self.lock().replicas.clone()
    }

    /// Forgets a previous run.
    pub(crate) fn reset(&self) {
        let mut recorded = self.lock();
        recorded.error = None;
        recorded.steps = 0;
        recorded.replicas.clear();
    }

    /// Records the divergence that stopped training (the first one, if several).
    pub(crate) fn fail(&self, error: ParallelError) {
        self.lock().error.get_or_insert(error);
    }

    /// Records the end of a run.
    pub(crate) fn finish(&self, steps: usize, replicas: Vec<M>) {
        let mut recorded = self.lock();
        recorded.steps = steps;
        recorded.replicas = replicas;
    }

    fn lock(&self) -> MutexGuard<'_, Recorded<M>> {
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
