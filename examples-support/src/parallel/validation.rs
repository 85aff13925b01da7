//! The validation epoch the main replica runs after each training epoch, as Burn's own
//! strategies do (theirs is not public).

use burn::data::dataloader::Progress;
use burn::module::AutodiffModule;
use burn::train::{
    EventProcessorTraining, InferenceStep, Interrupter, LearnerEvent, LearningComponentsTypes,
    SupervisedTrainingEventProcessor, TrainingItem, TrainingModel, ValidLoader,
};

/// Runs `model` (without autodiff) over `loader`, reporting each batch and the end of the
/// epoch to `events`; an interrupt ends it early.
pub(crate) fn validate<LC: LearningComponentsTypes>(
    model: &TrainingModel<LC>,
    loader: &ValidLoader<LC>,
    epoch: &Progress,
    events: &mut SupervisedTrainingEventProcessor<LC>,
    interrupter: &Interrupter,
) {
    let model = model.valid();
    let mut batches = loader.iter();
    let mut iteration = 0;
    while let Some(batch) = batches.next() {
        let progress = batches.progress();
        iteration += 1;
        let item = model.step(batch);
        events.process_valid(LearnerEvent::ProcessedItem(TrainingItem::new(
            item,
            progress,
            epoch.clone(),
            Some(iteration),
            None,
        )));
        if interrupter.should_stop() {
            break;
        }
    }
    events.process_valid(LearnerEvent::EndEpoch(epoch.items_processed));
}
