//! [`Replica`]: one copy of the `Learner` (model and optimizer) on its device, training in
//! lockstep with the others.

use burn::data::dataloader::Progress;
use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::Device;
use burn::train::{
    EventProcessorTraining, Interrupter, Learner, LearnerEvent, LearningComponentsTypes,
    SupervisedTrainingEventProcessor, TrainLoader, TrainStep, TrainingBackend, TrainingItem,
    TrainingModel,
};

use super::exchange::{Closed, Exchange, Seat};
use super::fault::{FaultInjection, FlipFirstBits};
use super::fingerprint::Fingerprint;
use super::grads::HostGrads;
use super::outcome::ParallelOutcome;
use super::round::{Contribution, Verdict, Vote, combine};
use super::snapshot::Snapshot;

/// The model's training output.
pub(crate) type Output<LC> = <TrainingModel<LC> as TrainStep>::Output;

/// The exchange the replicas of one run meet at.
pub(crate) type Meeting<LC> = Exchange<Contribution<Output<LC>>, Verdict<Output<LC>>>;

/// What every replica of a run shares.
pub(crate) struct Team<'a, LC: LearningComponentsTypes> {
    /// Replica `r` trains on `devices[r]`.
    pub devices: &'a [Device<TrainingBackend<LC>>],
    pub interrupter: &'a Interrupter,
    pub outcome: &'a ParallelOutcome<TrainingModel<LC>>,
    pub fault: Option<FaultInjection>,
    /// Rounds whose summed gradients make one optimizer step (Burn's gradient
    /// accumulation; 1 without it).
    pub accumulation: usize,
}

/// How an epoch ended for a replica (the same way for all of them).
pub(crate) enum EpochEnd {
    /// Some replica ran out of batches.
    Completed,
    /// Training stops: an interrupt, the main replica's early stopping, diverged
    /// parameters, or a replica that is gone.
    Stopped,
}

pub(crate) struct Replica<'a, LC: LearningComponentsTypes> {
    index: usize,
    learner: Learner<LC>,
    loader: TrainLoader<LC>,
    seat: Seat<'a, Contribution<Output<LC>>, Verdict<Output<LC>>>,
    team: &'a Team<'a, LC>,
    steps: usize,
}

impl<'a, LC: LearningComponentsTypes> Replica<'a, LC> {
    /// Replica `index`, with `learner` forked to its device and its parameters rebuilt
    /// from `start` (the main model's), and `loader` its share of the training data.
    ///
    /// Call it on the replica's own thread: the rebuilt tensors are then this thread's
    /// alone. Every replica, the main one included, is rebuilt the same way (a record load,
    /// which for instance restarts straight-through latent weights from the seeds), so all
    /// start identical.
    pub fn new(
        index: usize,
        mut learner: Learner<LC>,
        loader: TrainLoader<LC>,
        start: &Snapshot,
        meeting: &'a Meeting<LC>,
        team: &'a Team<'a, LC>,
    ) -> Self {
        // Seated first: should building the replica fail, the others are released.
        let seat = meeting.seat(index);
        let device = &team.devices[index];
        learner.fork(device);
        let own = start.restore(learner.model(), device);
        learner.load_model(own.into_record());
        Self {
            index,
            learner,
            loader,
            seat,
            team,
            steps: 0,
        }
    }

    /// The replica's learner (its model and optimizer).
    pub fn learner(&self) -> &Learner<LC> {
        &self.learner
    }

    /// The model and the optimizer steps it took; leaving closes the meeting for the
    /// others, who must not be waiting for this replica any more.
    pub fn finish(self) -> (TrainingModel<LC>, usize) {
        (self.learner.model(), self.steps)
    }

    /// Trains one epoch in lockstep with the other replicas. The main replica passes the
    /// `events` that report progress and metrics, for the batches of all replicas.
    pub fn train_epoch(
        &mut self,
        epoch: &Progress,
        mut events: Option<&mut SupervisedTrainingEventProcessor<LC>>,
    ) -> EpochEnd {
        // Its own handle: the iterator borrows it while the optimizer steps change `self`.
        let loader = self.loader.clone();
        let mut batches = loader.iter();
        let mut accumulated = GradientsAccumulator::<TrainingModel<LC>>::new();
        let mut pending = 0;
        let mut iteration = 0;
        loop {
            let vote = match batches.next() {
                None => Vote::Exhausted,
                Some(_) if self.team.interrupter.should_stop() => Vote::Stop,
                Some(batch) => {
                    let progress = batches.progress();
                    let output = self.learner.train_step(batch);
                    Vote::Step {
                        grads: HostGrads::download(&self.learner.model(), output.grads),
                        item: output.item,
                        progress,
                    }
                }
            };
            let (grads, items, progress) = match self.round(vote) {
                Ok(Verdict::Step {
                    grads,
                    items,
                    progress,
                }) => (grads, items, progress),
                Ok(Verdict::EndEpoch) => return EpochEnd::Completed,
                Ok(Verdict::Stop) | Err(Closed) => return EpochEnd::Stopped,
            };
            self.learner.lr_step();
            let grads = grads.upload(&self.learner.model(), &self.team.devices[self.index]);
            if self.team.accumulation <= 1 {
                self.apply(grads);
            } else {
                accumulated.accumulate(&self.learner.model(), grads);
                pending += 1;
                if pending >= self.team.accumulation {
                    self.apply(accumulated.grads());
                    pending = 0;
                }
            }
            if let Some(events) = events.as_deref_mut() {
                for item in items {
                    iteration += 1;
                    events.process_train(LearnerEvent::ProcessedItem(TrainingItem::new(
                        item,
                        progress.clone(),
                        epoch.clone(),
                        Some(iteration),
                        Some(self.learner.lr_current()),
                    )));
                }
            }
        }
    }

    /// From between two epochs, has every replica stop (the main replica's early stopping;
    /// the others are waiting in the next epoch's first round). The parameters are still
    /// compared in that round.
    pub fn stop_the_others(&self) {
        // Closed: the others are gone already, which is what was asked.
        let _ = self.round(Vote::Stop);
    }

    /// Hands this replica's parameters and `vote` in, and takes its verdict back; the last
    /// replica to arrive combines them all, and records a divergence.
    fn round(&self, vote: Vote<Output<LC>>) -> Result<Verdict<Output<LC>>, Closed> {
        let contribution = Contribution {
            fingerprint: Fingerprint::of(&self.learner.model()),
            steps: self.steps,
            vote,
        };
        self.seat.round(contribution, |all| {
            let (verdicts, error) = combine(all);
            if let Some(error) = error {
                self.team.outcome.fail(error);
            }
            verdicts
        })
    }

    /// One optimizer step with the summed gradients, then the injected fault, if it is due.
    fn apply(&mut self, grads: GradientsParams) {
        self.learner.optimizer_step(grads);
        self.steps += 1;
        let due = FaultInjection {
            replica: self.index,
            step: self.steps,
        };
        if self.team.fault == Some(due) {
            let diverged = self.learner.model().map(&mut FlipFirstBits);
            self.learner.load_model(diverged.into_record());
        }
    }
}
