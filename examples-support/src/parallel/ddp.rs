//! [`DataParallel`]: data-parallel training with one replica of the `Learner` per device,
//! as a custom strategy for burn-train's `SupervisedTraining`.

use std::sync::Arc;

use burn::data::dataloader::Progress;
use burn::data::dataloader::split::split_dataloader;
use burn::tensor::Device;
use burn::train::metric::store::EventStoreClient;
use burn::train::{
    CloneEarlyStoppingStrategy, EventProcessorTraining, Interrupter, LearnerEvent,
    LearningCheckpointer, LearningComponentsTypes, SupervisedLearningStrategy,
    SupervisedTrainingEventProcessor, TrainLoader, TrainingBackend, TrainingComponents,
    TrainingModel, TrainingStrategy, ValidLoader,
};

use super::error::ParallelError;
use super::fault::FaultInjection;
use super::outcome::ParallelOutcome;
use super::replica::{EpochEnd, Meeting, Replica, Team};
use super::snapshot::Snapshot;
use super::validation::validate;

/// Data-parallel training: one replica of the `Learner` (model and optimizer) per device,
/// each on its own thread and its own share of the training data, kept identical by
/// applying the same summed gradients every step.
///
/// Every step, each replica computes the gradients of its next batch; the gradients are
/// summed in replica order (so every replica gets the same bits, whichever thread sums),
/// and each replica applies the sum with its own optimizer. The RBE transition counts
/// travel with the gradients and are summed too, so the int bits move on every replica by
/// the counts of the whole global batch. An effective batch is the devices times the data
/// loader's batch size, and the gradients are those of a sum over the replicas (not a mean),
/// as in Burn's own multi-device training.
///
/// After every step the replicas' parameters are compared bit for bit (a
/// [`super::Fingerprint`] each): a replica that differs stops training on every replica,
/// and [`ParallelOutcome::result`] names the step, the replica and the first parameter
/// that differs. Nothing is averaged, so a divergence cannot be hidden.
///
/// The training data is cut into one contiguous share per device (Burn's
/// `split_dataloader`; each share shuffles within itself). All replicas take the same
/// number of steps: an epoch ends when the first share runs out, and the last batch of a
/// longer share is then not trained on. The main replica (0) reports progress and metrics
/// for every replica's batches, validates, checkpoints and decides early stopping;
/// interrupts are decided jointly, so a replica never waits for one that has stopped.
///
/// The replicas exchange host values, never tensors: the gradients go through the host to
/// be summed, and each replica rebuilds the learner's model from a host copy on its own
/// thread (a record load: an RBE straight-through layer's latent weights restart from its
/// seeds, as after loading a checkpoint). So no collective operation is needed from the
/// backend, and no tensor is shared between threads (Burn 0.21's fusion streams lose track
/// of a tensor two threads consume). Each step costs every replica a read-back of its
/// gradients and parameters and an upload of the summed gradients, small beside a step of
/// an RBE model, and a synchronisation point on GPUs.
///
/// A device may be listed more than once (replicas as threads on one CPU or GPU). Distinct
/// devices must be able to take the learner's model: the `Learner` moves it with `fork`,
/// and in Burn 0.21 a WGPU tensor cannot move between two devices (CubeCL's WGPU runtime
/// panics with `unimplemented` on the server-to-server copy), so on WGPU list one device
/// several times. Each replica's optimizer starts as a clone of the learner's: state
/// behind an `Arc` (a step counter, say) is shared and sees every replica's steps, and the
/// state of a resumed checkpoint is shared as tensors.
///
/// Burn's own `ddp` feature is not used: it needs collective operations (none on Flex or
/// NdArray, unimplemented on WGPU), and turning it on would make `Autodiff<Flex>` and
/// `Autodiff<NdArray>` stop being autodiff backends across the whole build.
///
/// ```ignore
/// let parallel = DataParallel::new(devices)?;
/// let outcome = parallel.outcome();
/// let result = SupervisedTraining::new(dir, train, valid)
///     .with_training_strategy(parallel.into_strategy())
///     .launch(learner);
/// outcome.result()?; // the replicas stayed identical
/// ```
pub struct DataParallel<LC: LearningComponentsTypes> {
    devices: Vec<Device<TrainingBackend<LC>>>,
    fault: Option<FaultInjection>,
    outcome: ParallelOutcome<TrainingModel<LC>>,
}

impl<LC: LearningComponentsTypes> DataParallel<LC> {
    /// One replica per entry of `devices`; replica 0, on `devices[0]`, is the main one.
    /// A single device trains like Burn's single-device strategy (with the same batches).
    ///
    /// # Errors
    /// [`ParallelError::NoDevices`] for an empty list.
    pub fn new(devices: Vec<Device<TrainingBackend<LC>>>) -> Result<Self, ParallelError> {
        if devices.is_empty() {
            return Err(ParallelError::NoDevices);
        }
        Ok(Self {
            devices,
            fault: None,
            outcome: ParallelOutcome::default(),
        })
    }

    /// The devices, replica by replica.
    pub fn devices(&self) -> &[Device<TrainingBackend<LC>>] {
        &self.devices
    }

    /// A handle to read the outcome of the run once `launch` has returned.
    pub fn outcome(&self) -> ParallelOutcome<TrainingModel<LC>> {
        self.outcome.clone()
    }

    /// For tests of the consistency check: makes one replica diverge on purpose (see
    /// [`FaultInjection`]).
    ///
    /// # Errors
    /// [`ParallelError::NoSuchReplica`] if `fault.replica` is not a replica.
    pub fn with_fault(self, fault: FaultInjection) -> Result<Self, ParallelError> {
        if fault.replica >= self.devices.len() {
            return Err(ParallelError::NoSuchReplica {
                replica: fault.replica,
                replicas: self.devices.len(),
            });
        }
        Ok(Self {
            fault: Some(fault),
            ..self
        })
    }

    /// This strategy, for `SupervisedTraining::with_training_strategy`.
    pub fn into_strategy(self) -> TrainingStrategy<LC>
    where
        LC: 'static,
    {
        TrainingStrategy::Custom(Arc::new(self))
    }
}

impl<LC: LearningComponentsTypes> SupervisedLearningStrategy<LC> for DataParallel<LC> {
    fn fit(
        &self,
        components: TrainingComponents<LC>,
        learner: burn::train::Learner<LC>,
        dataloader_train: TrainLoader<LC>,
        dataloader_valid: ValidLoader<LC>,
        starting_epoch: usize,
    ) -> (TrainingModel<LC>, SupervisedTrainingEventProcessor<LC>) {
        self.outcome.reset();
        let devices = &self.devices;
        let last_epoch = components.num_epochs;
        let shares = match devices.len() {
            // `split_dataloader` leaves a single share where it was.
            1 => vec![dataloader_train.to_device(&devices[0])],
            _ => split_dataloader(dataloader_train, devices),
        };
        let main = Main::<LC> {
            epochs: (starting_epoch, last_epoch),
            valid: dataloader_valid.to_device(&devices[0]),
            checkpointer: components.checkpointer,
            early_stopping: components.early_stopping,
            event_store: components.event_store,
        };
        let mut events = components.event_processor;
        let meeting = Meeting::<LC>::new(devices.len());
        let start = Snapshot::of(&learner.model());
        let team = Team {
            devices,
            interrupter: &components.interrupter,
            outcome: &self.outcome,
            fault: self.fault,
            accumulation: components.grad_accumulation.unwrap_or(1),
        };

        // Whatever fails first, a replica that stops closes the meeting: the main replica
        // is seated before any follower starts, and each follower before its first work.
        let (model, steps, mut replicas) = std::thread::scope(|scope| {
            let clones: Vec<_> = shares[1..].iter().map(|_| learner.clone()).collect();
            let replica = Replica::new(0, learner, shares[0].clone(), &start, &meeting, &team);
            let followers: Vec<_> = clones
                .into_iter()
                .zip(&shares[1..])
                .enumerate()
                .map(|(offset, (learner, share))| {
                    let index = offset + 1;
                    let share = share.clone();
                    let (start, meeting, team) = (&start, &meeting, &team);
                    std::thread::Builder::new()
                        .name(format!("replica-{index}"))
                        .spawn_scoped(scope, move || {
                            let replica = Replica::new(index, learner, share, start, meeting, team);
                            follow(replica, starting_epoch, last_epoch)
                        })
                        .expect("the OS starts a replica's thread")
                })
                .collect();
            let (model, steps) = main.lead(replica, &mut events, team.interrupter);
            let models: Vec<_> = followers
                .into_iter()
                .map(|follower| match follower.join() {
                    Ok(model) => model,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect();
            (model, steps, models)
        });
        replicas.insert(0, model.clone());
        self.outcome.finish(steps, replicas);
        (model, events)
    }
}

/// What only the main replica does between epochs.
struct Main<LC: LearningComponentsTypes> {
    /// The first epoch and the last, counted from 1.
    epochs: (usize, usize),
    valid: ValidLoader<LC>,
    checkpointer: Option<LearningCheckpointer<LC>>,
    early_stopping: Option<Box<dyn CloneEarlyStoppingStrategy>>,
    event_store: Arc<EventStoreClient>,
}

impl<LC: LearningComponentsTypes> Main<LC> {
    /// Trains replica 0 through every epoch, reporting, validating, checkpointing and
    /// deciding early stopping; returns its model and optimizer steps.
    fn lead(
        mut self,
        mut replica: Replica<'_, LC>,
        events: &mut SupervisedTrainingEventProcessor<LC>,
        interrupter: &Interrupter,
    ) -> (TrainingModel<LC>, usize) {
        let (first, last) = self.epochs;
        for epoch in first..=last {
            let progress = Progress::new(epoch, last);
            let end = replica.train_epoch(&progress, Some(events));
            events.process_train(LearnerEvent::EndEpoch(epoch));
            if let EpochEnd::Stopped = end {
                break;
            }
            validate::<LC>(
                &replica.learner().model(),
                &self.valid,
                &progress,
                events,
                interrupter,
            );
            if let Some(checkpointer) = &mut self.checkpointer {
                checkpointer.checkpoint(replica.learner(), epoch, &self.event_store);
            }
            if let Some(early_stopping) = &mut self.early_stopping
                && early_stopping.should_stop(epoch, &self.event_store)
            {
                if epoch < last {
                    replica.stop_the_others();
                }
                break;
            }
        }
        replica.finish()
    }
}

/// Trains a replica other than the main one through every epoch; returns its model.
fn follow<LC: LearningComponentsTypes>(
    mut replica: Replica<'_, LC>,
    first: usize,
    last: usize,
) -> TrainingModel<LC> {
    for epoch in first..=last {
        if let EpochEnd::Stopped = replica.train_epoch(&Progress::new(epoch, last), None) {
            break;
        }
    }
    replica.finish().0
}
