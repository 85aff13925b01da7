//! One training round across the replicas: what each hands in ([`Contribution`]), how the
//! contributions are combined ([`combine`]), and what each takes back ([`Verdict`]).
//!
//! Every decision that could differ between threads is taken here, once, for all replicas:
//! whether the parameters still agree, whether to stop (an interrupt seen by any replica),
//! whether the epoch is over (any replica out of batches), and the summed gradients. That
//! is what keeps the replicas in step: none can take a step, or leave, that the others do
//! not.

use std::sync::Arc;

use burn::data::dataloader::Progress;

use super::error::ParallelError;
use super::fingerprint::Fingerprint;
use super::grads::HostGrads;

/// What one replica hands in for a round. `O` is the model's training output.
pub(crate) struct Contribution<O> {
    /// The replica's parameters as they are now, after `steps` optimizer steps.
    pub fingerprint: Fingerprint,
    pub steps: usize,
    pub vote: Vote<O>,
}

/// What a replica asks for.
pub(crate) enum Vote<O> {
    /// It computed the gradients of its next batch.
    Step {
        grads: HostGrads,
        item: O,
        /// Its own data loader's progress after that batch.
        progress: Progress,
    },
    /// Its data loader has no batch left this epoch.
    Exhausted,
    /// It was asked to stop (an interrupt, or the main replica's early stopping).
    Stop,
}

/// What one replica takes back from a round.
pub(crate) enum Verdict<O> {
    /// Apply `grads`, the sum of every replica's (one value shared by all replicas). The
    /// main replica (0) also gets every replica's output `items` (in replica order) and the
    /// progress summed over the data loaders; the others get no items.
    Step {
        grads: Arc<HostGrads>,
        items: Vec<O>,
        progress: Progress,
    },
    /// A replica ran out of batches: the epoch ends for all, so that all take the same
    /// number of steps (the batches left on the others are not trained on).
    EndEpoch,
    /// Stop training, on every replica.
    Stop,
}

/// Combines one round's contributions (indexed by replica) into one verdict per replica,
/// and the divergence that stopped training, if any.
///
/// Precedence: diverged parameters, then a stop, then the end of the epoch, then a step.
pub(crate) fn combine<O>(
    contributions: Vec<Contribution<O>>,
) -> (Vec<Verdict<O>>, Option<ParallelError>) {
    let replicas = contributions.len();
    let everyone = |verdict: fn() -> Verdict<O>| (0..replicas).map(|_| verdict()).collect();

    let prints: Vec<Fingerprint> = contributions
        .iter()
        .map(|c| c.fingerprint.clone())
        .collect();
    if let Some((replica, parameter)) = Fingerprint::odd_one_out(&prints) {
        let error = ParallelError::ReplicaMismatch {
            step: contributions[0].steps,
            replica,
            parameter,
        };
        return (everyone(|| Verdict::Stop), Some(error));
    }
    if contributions.iter().any(|c| matches!(c.vote, Vote::Stop)) {
        return (everyone(|| Verdict::Stop), None);
    }
    if contributions
        .iter()
        .any(|c| matches!(c.vote, Vote::Exhausted))
    {
        return (everyone(|| Verdict::EndEpoch), None);
    }

    let mut grads = Vec::with_capacity(replicas);
    let mut items = Vec::with_capacity(replicas);
    let mut progress = Progress::new(0, 0);
    for contribution in contributions {
        if let Vote::Step {
            grads: g,
            item,
            progress: p,
        } = contribution.vote
        {
            grads.push(g);
            items.push(item);
            progress.items_processed += p.items_processed;
            progress.items_total += p.items_total;
        }
    }
    let sum = Arc::new(HostGrads::sum(grads));
    let mut verdicts = vec![Verdict::Step {
        grads: sum.clone(),
        items,
        progress: progress.clone(),
    }];
    verdicts.extend((1..replicas).map(|_| Verdict::Step {
        grads: sum.clone(),
        items: Vec::new(),
        progress: progress.clone(),
    }));
    (verdicts, None)
}
