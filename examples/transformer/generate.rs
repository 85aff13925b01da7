//! Sampling text from a trained model.

use burn::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rbe::RbeBackend;

use rbe_examples::transformer::data::{UNK_ID, Vocab};
use rbe_examples::transformer::kv_cache::KvCacheError;
use rbe_examples::transformer::model::Gpt;

/// How to sample.
#[derive(Debug, Clone)]
pub struct SampleConfig {
    /// Text the sample continues; characters outside the vocabulary become `<unk>`.
    pub prompt: String,
    /// Characters to generate.
    pub len: usize,
    /// Softmax temperature; 0 picks the most likely character every time.
    pub temperature: f64,
    /// Seeds the sampler, so the same model and settings print the same text.
    pub seed: u64,
}

/// The prompt followed by `config.len` sampled characters.
///
/// Generation runs on a key/value cache: each character costs the projections of one
/// position. The model sees at most `context` characters; when the cache is full it is
/// refilled with the last `context / 2` characters, so the text goes on with at least that
/// much of what came before.
///
/// # Errors
/// Only if the model's own context checks fail, which the refill rules out.
pub fn generate<B: RbeBackend>(
    model: &Gpt<B>,
    vocab: &Vocab,
    config: &SampleConfig,
) -> Result<String, KvCacheError> {
    let device = model.device();
    let context = model.context();
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut ids = vocab.encode(&config.prompt);
    let prompt_len = ids.len();
    if ids.is_empty() {
        // The model needs one position to predict from; `<unk>` stands for "no text".
        ids.push(UNK_ID);
    }
    let mut cache = model.kv_cache();
    // The ids not yet in the cache start here.
    let mut fed = ids.len().saturating_sub(context);
    for _ in 0..config.len {
        if cache.len() + (ids.len() - fed) > context {
            cache = model.kv_cache();
            fed = ids.len() - (context / 2).max(1);
        }
        let new = &ids[fed..];
        let tokens = Tensor::<B, 2, Int>::from_data(
            TensorData::new(new.iter().map(|&id| id as i32).collect(), [1, new.len()]),
            &device,
        );
        let logits = model.forward_cached(tokens, &mut cache)?;
        let [_, seq, vocab_size] = logits.dims();
        fed = ids.len();
        let last = logits
            .slice([0..1, seq - 1..seq, 0..vocab_size])
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .unwrap_or_default();
        ids.push(sample(&last, config.temperature, &mut rng));
    }
    let mut text = config.prompt.clone();
    text.push_str(&vocab.decode(&ids[prompt_len.max(1)..]));
    Ok(text)
}

/// One draw from `softmax(logits / temperature)`; the argmax when the temperature is 0.
fn sample(logits: &[f32], temperature: f64, rng: &mut impl Rng) -> u32 {
    let argmax = || {
        logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i as u32)
    };
    if temperature <= 0.0 {
        return argmax();
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f64> = logits
        .iter()
        .map(|&l| ((f64::from(l) - f64::from(max)) / temperature).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    if !(total.is_finite() && total > 0.0) {
        return argmax();
    }
    let mut u = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        u -= w;
        if u <= 0.0 {
            return i as u32;
        }
    }
    (weights.len() - 1) as u32
}
