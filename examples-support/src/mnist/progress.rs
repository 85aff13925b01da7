//! A compact line-based progress renderer for the `Learner`.
//!
//! Without the `tui` feature burn-train falls back to a renderer that prints one `Debug` line
//! per batch and no metric values. This one prints the running loss and accuracy about ten
//! times per epoch and once after each validation pass, on stderr, so stdout stays free for
//! the final JSON line.

use std::collections::HashMap;

use burn::train::metric::{MetricDefinition, MetricEntry, MetricId};
use burn::train::renderer::{
    EvaluationName, EvaluationProgress, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining, ProgressType, TrainingProgress,
};

/// Prints progress lines such as
/// `[train] epoch 1/5  40% | Accuracy: epoch 91.02 % - batch 93.75 % | Loss: ...`.
#[derive(Default)]
pub struct LineRenderer {
    names: HashMap<MetricId, String>,
    train: Vec<(MetricId, String)>,
    valid: Vec<(MetricId, String)>,
    last_tenth: Option<(usize, usize)>,
}

impl LineRenderer {
    /// A renderer with no metrics registered yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn line(&self, split: &str, item: &TrainingProgress, entries: &[(MetricId, String)]) {
        let percent = item
            .progress
            .as_ref()
            .map_or(100, |p| 100 * p.items_processed / p.items_total.max(1));
        let metrics: Vec<String> = entries
            .iter()
            .map(|(id, text)| {
                let name = self.names.get(id).map_or("?", String::as_str);
                format!("{name}: {text}")
            })
            .collect();
        eprintln!(
            "[{split}] epoch {}/{} {percent:>3}% | {}",
            item.global_progress.items_processed,
            item.global_progress.items_total,
            metrics.join(" | ")
        );
    }
}

fn record(entries: &mut Vec<(MetricId, String)>, state: MetricState) {
    let entry: MetricEntry = match state {
        MetricState::Generic(entry) | MetricState::Numeric(entry, _) => entry,
    };
    let text = entry.serialized_entry.formatted;
    match entries.iter_mut().find(|(id, _)| *id == entry.metric_id) {
        Some(slot) => slot.1 = text,
        None => entries.push((entry.metric_id, text)),
    }
}

impl MetricsRendererTraining for LineRenderer {
    fn update_train(&mut self, state: MetricState) {
        record(&mut self.train, state);
    }

    fn update_valid(&mut self, state: MetricState) {
        record(&mut self.valid, state);
    }

    fn render_train(&mut self, item: TrainingProgress, _indicators: Vec<ProgressType>) {
        let Some(progress) = &item.progress else {
            return;
        };
        // One line per tenth of an epoch: enough to see learning, few enough to read.
        let tenth = 10 * progress.items_processed / progress.items_total.max(1);
        let key = (item.global_progress.items_processed, tenth);
        if self.last_tenth != Some(key) {
            self.last_tenth = Some(key);
            self.line("train", &item, &self.train);
        }
    }

    fn render_valid(&mut self, item: TrainingProgress, _indicators: Vec<ProgressType>) {
        if item
            .progress
            .as_ref()
            .is_some_and(|p| p.items_processed >= p.items_total)
        {
            self.line("valid", &item, &self.valid);
        }
    }
}

impl MetricsRendererEvaluation for LineRenderer {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}

    fn render_test(&mut self, _item: EvaluationProgress, _indicators: Vec<ProgressType>) {}
}

impl MetricsRenderer for LineRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        self.names.insert(definition.metric_id, definition.name);
    }
}
