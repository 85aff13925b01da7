//! Smoke test of the transformer example: a tiny RBE model trained for a few dozen steps on
//! the first 200 KB of the Shakespeare text must get clearly below the uniform baseline
//! `ln(vocab)`, which the untrained model does not.

// The example's own modules, so the test exercises exactly the code the example runs. The
// example uses more of them than this test does.
#[allow(dead_code)]
#[path = "../../examples/transformer/checkpoint.rs"]
mod checkpoint;
#[allow(dead_code)]
#[path = "../../examples/transformer/data.rs"]
mod data;
#[allow(dead_code)]
#[path = "../../examples/transformer/model.rs"]
mod model;
#[allow(dead_code)]
#[path = "../../examples/transformer/training.rs"]
mod training;

use std::path::Path;
use std::time::Instant;

use burn::backend::{Autodiff, NdArray};
use burn::prelude::*;

use data::Corpus;
use model::{Gpt, GptConfig, Projection, ProjectionKind};
use training::{TrainingConfig, evaluate, train};

/// NdArray is the fastest backend in a debug build on a CPU-only CI machine.
type Train = Autodiff<NdArray<f32>>;

const TEXT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/text/shakespeare.txt"
);
const SLICE_BYTES: usize = 200_000;
const CONTEXT: usize = 32;
const STEPS: usize = 30;
const BATCH: usize = 16;
const LR: f64 = 1e-2;
const EVAL_WINDOWS: usize = 32;
/// Nats below `ln(vocab)` the trained model must reach. The untrained model sits at or above
/// `ln(vocab)`, and the add-one unigram model of this slice is about 0.87 nats below it, so
/// clearing this bar needs real learning, not luck.
const MARGIN_NATS: f64 = 0.5;

/// `(r, theta)` of every RBE layer, flattened.
fn rbe_coords<B: Backend>(model: &Gpt<B>) -> Vec<f32> {
    model
        .projections()
        .into_iter()
        .filter_map(|p| match p {
            Projection::Rbe(rbe) => Some(rbe.seeds.coords().into_data().to_vec::<f32>().ok()?),
            Projection::Dense(_) => None,
        })
        .flatten()
        .collect()
}

#[test]
fn rbe_transformer_learns_below_uniform_baseline() {
    let path = Path::new(TEXT);
    assert!(
        path.is_file(),
        "the transformer smoke test needs the Shakespeare text at {} (shared/data/text/\
         shakespeare.txt beside the repository); it is missing",
        path.display()
    );
    let corpus = Corpus::load(path, Some(SLICE_BYTES), CONTEXT)
        .unwrap_or_else(|err| panic!("loading the smoke-test text: {err}"));
    let device = Default::default();
    Train::seed(&device, 7);
    let config = GptConfig::new(
        corpus.vocab.len(),
        CONTEXT,
        64,
        2,
        4,
        ProjectionKind::Rbe {
            block_size: 16,
            residual_rank: 0,
            transitions: true,
        },
    );
    let model = config
        .init::<Train>(&device)
        .unwrap_or_else(|err| panic!("{err}"));
    let uniform = (corpus.vocab.len() as f64).ln();
    let untrained = evaluate(&model, &corpus.valid, EVAL_WINDOWS);
    let coords_before = rbe_coords(&model);

    let start = Instant::now();
    let training = TrainingConfig::new(STEPS, BATCH, LR)
        .with_seed(7)
        .with_warmup_steps(5)
        .with_log_every(10);
    let trained = train(model, &corpus, &training, &device, |p| {
        eprintln!("step {}/{}: train loss {:.4}", p.step, p.steps, p.loss)
    })
    .unwrap_or_else(|err| panic!("{err}"));
    let trained_loss = evaluate(&trained.model, &corpus.valid, EVAL_WINDOWS);
    eprintln!(
        "vocab {}: ln(vocab) {uniform:.4}, untrained val loss {untrained:.4}, trained val loss \
         {trained_loss:.4} after {STEPS} steps ({:.1} s, {:.0} tokens/s)",
        corpus.vocab.len(),
        start.elapsed().as_secs_f64(),
        trained.tokens_per_s
    );

    assert!(
        untrained > uniform - MARGIN_NATS,
        "the untrained model already clears the bar ({untrained:.4} vs ln(vocab) {uniform:.4}): \
         the test would not detect a model that does not learn"
    );
    assert!(
        trained_loss < uniform - MARGIN_NATS,
        "validation loss {trained_loss:.4} is not below ln(vocab) - {MARGIN_NATS} = {:.4} \
         (untrained {untrained:.4})",
        uniform - MARGIN_NATS
    );
    let coords_after = rbe_coords(&trained.model);
    let moved = coords_before
        .iter()
        .zip(&coords_after)
        .filter(|(a, b)| (*a - *b).abs() > 1e-4)
        .count();
    assert!(
        moved * 2 > coords_before.len(),
        "only {moved} of {} RBE seed coordinates changed: the seeds are not being trained",
        coords_before.len()
    );
}

/// A model small enough for exact checks in a debug build.
fn tiny_config(projections: ProjectionKind) -> GptConfig {
    GptConfig::new(10, 8, 32, 1, 4, projections)
}

fn tokens<B: Backend>(ids: &[i32], device: &B::Device) -> Tensor<B, 2, Int> {
    Tensor::from_data(TensorData::new(ids.to_vec(), [1, ids.len()]), device)
}

#[test]
fn attention_does_not_see_the_future() {
    type Infer = NdArray<f32>;
    let device = Default::default();
    for projections in [
        ProjectionKind::Dense,
        ProjectionKind::Rbe {
            block_size: 16,
            residual_rank: 2,
            transitions: true,
        },
    ] {
        Infer::seed(&device, 3);
        let model = tiny_config(projections.clone())
            .init::<Infer>(&device)
            .unwrap_or_else(|err| panic!("{err}"));
        let a = model.forward(tokens(&[1, 2, 3, 4, 5, 6, 7, 8], &device));
        let b = model.forward(tokens(&[1, 2, 3, 4, 9, 9, 9, 9], &device));
        let past = (a.clone().slice([0..1, 0..4, 0..10]) - b.clone().slice([0..1, 0..4, 0..10]))
            .abs()
            .max()
            .into_scalar();
        let changed = (a.slice([0..1, 4..5, 0..10]) - b.slice([0..1, 4..5, 0..10]))
            .abs()
            .max()
            .into_scalar();
        assert!(
            past < 1e-5,
            "{projections:?}: positions 0..4 changed by {past} when only later tokens did"
        );
        assert!(
            changed > 1e-4,
            "{projections:?}: position 4 did not react to its own token"
        );
    }
}

#[test]
fn corpus_splits_by_position_and_maps_unseen_characters_to_unk() {
    // 90 characters of training text, then 10 of validation with two characters it lacks.
    let text = format!("{}{}", "ab".repeat(45), "abzaby!bab");
    let corpus = Corpus::from_text(&text, 4).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!((corpus.train.len(), corpus.valid.len()), (90, 10));
    assert_eq!(corpus.vocab.len(), 3, "a, b and <unk>");
    let unknown = corpus
        .valid
        .iter()
        .filter(|&&id| id == data::UNK_ID)
        .count();
    assert_eq!(unknown, 3, "z, y and ! are not in the training split");
    assert_eq!(
        corpus.vocab.decode(&corpus.vocab.encode("abz")),
        "ab\u{FFFD}"
    );

    assert!(matches!(
        Corpus::from_text("tiny", 4),
        Err(data::DataError::TooShort { .. })
    ));
    assert!(matches!(
        Corpus::load(Path::new("/nonexistent/text.txt"), None, 4),
        Err(data::DataError::Io { .. })
    ));
}

#[test]
fn checkpoint_round_trip_reproduces_the_logits() {
    type Infer = NdArray<f32>;
    let device = Default::default();
    Infer::seed(&device, 5);
    let config = tiny_config(ProjectionKind::Rbe {
        block_size: 16,
        residual_rank: 2,
        transitions: true,
    })
    .with_head(ProjectionKind::Rbe {
        block_size: 16,
        residual_rank: 0,
        transitions: true,
    });
    let model = config
        .init::<Infer>(&device)
        .unwrap_or_else(|err| panic!("{err}"));
    let input = [3, 1, 4, 1, 5, 9, 2, 6];
    let before = model.forward(tokens(&input, &device));

    let dir = std::env::temp_dir().join(format!("rbe-transformer-test-{}", std::process::id()));
    let path = dir.join("tiny");
    let vocab = data::Vocab::from_text("abcdefghi");
    let meta = checkpoint::CheckpointMeta::new(config, vocab.as_string(), 0);
    checkpoint::save(model, &meta, &path).unwrap_or_else(|err| panic!("{err}"));
    let (loaded, loaded_vocab, _) =
        checkpoint::load::<Infer>(&path, &device).unwrap_or_else(|err| panic!("{err}"));
    let after = loaded.forward(tokens(&input, &device));
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(loaded_vocab.as_string(), "abcdefghi");
    before.into_data().assert_eq(&after.into_data(), true);
    assert!(checkpoint::load::<Infer>(&dir.join("missing"), &device).is_err());
}
