//! The keys and values of the positions a decoder has already seen.
//!
//! Without it, each generated token costs a forward pass over the whole window: every
//! projection runs on every position again. With it, a token costs the projections of one
//! position plus attention over the cached keys and values, which is what makes batch-1
//! generation memory-bound on the projections' weights, and so what a compressed weight
//! format can speed up.

use burn::prelude::*;
use std::fmt;

/// Why a cached forward cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvCacheError {
    /// The new tokens would take the cache past the model's position embedding.
    Full {
        /// Positions already cached.
        cached: usize,
        /// Positions asked for.
        new: usize,
        /// The longest sequence the model accepts.
        context: usize,
    },
    /// The cache was made for another model or another batch.
    Mismatch(String),
}

impl fmt::Display for KvCacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full {
                cached,
                new,
                context,
            } => write!(
                f,
                "{cached} cached positions plus {new} new ones exceed the model's context of \
                 {context}"
            ),
            Self::Mismatch(msg) => write!(f, "key/value cache does not fit: {msg}"),
        }
    }
}

impl std::error::Error for KvCacheError {}

/// Per block, the attention keys and values of every position seen so far.
///
/// Cloning is cheap (tensors are reference-counted), so a prompt can be cached once and
/// continued several times.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    /// Per block: `(keys, values)`, each `[batch, heads, len, d_head]`; `None` while empty.
    layers: Vec<Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
    batch: Option<usize>,
    len: usize,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for a model of `n_layers` blocks.
    pub fn new(n_layers: usize) -> Self {
        Self {
            layers: vec![None; n_layers],
            batch: None,
            len: 0,
        }
    }

    /// Positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the cached keys and values hold.
    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .flatten()
            .map(|(k, v)| (k.shape().num_elements() + v.shape().num_elements()) * size_of::<f32>())
            .sum()
    }

    /// Checks that `new` positions of a `batch`-row input fit a model of `n_layers` blocks
    /// and `context` positions.
    pub(super) fn check(
        &self,
        n_layers: usize,
        batch: usize,
        new: usize,
        context: usize,
    ) -> Result<(), KvCacheError> {
        if self.layers.len() != n_layers {
            return Err(KvCacheError::Mismatch(format!(
                "made for {} blocks, the model has {n_layers}",
                self.layers.len()
            )));
        }
        if let Some(cached) = self.batch.filter(|&b| b != batch) {
            return Err(KvCacheError::Mismatch(format!(
                "holds {cached} sequences, the input has {batch}"
            )));
        }
        if self.len + new > context {
            return Err(KvCacheError::Full {
                cached: self.len,
                new,
                context,
            });
        }
        Ok(())
    }

    /// Appends block `layer`'s keys and values of the new positions and returns all of
    /// them, cached and new.
    ///
    /// # Shapes
    /// - key, value: `[batch, heads, new, d_head]`
    /// - output: `[batch, heads, len + new, d_head]` each
    pub(super) fn append(
        &mut self,
        layer: usize,
        key: Tensor<B, 4>,
        value: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let all = match self.layers[layer].take() {
            None => (key, value),
            Some((keys, values)) => (
                Tensor::cat(vec![keys, key], 2),
                Tensor::cat(vec![values, value], 2),
            ),
        };
        self.layers[layer] = Some(all.clone());
        all
    }

    /// Records that every block has appended `new` positions of `batch` sequences.
    pub(super) fn advance(&mut self, batch: usize, new: usize) {
        self.batch = Some(batch);
        self.len += new;
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::backend::Flex;
    use burn::tensor::Tolerance;
    use rbe_burn::BitTraining;

    use super::*;
    use crate::transformer::model::{GptConfig, ProjectionKind};

    type B = Flex<f32, i32>;

    fn config(projections: ProjectionKind) -> GptConfig {
        GptConfig::new(11, 9, 16, 2, 4, projections)
    }

    fn tokens<T: Backend>(batch: usize, seq: usize, device: &T::Device) -> Tensor<T, 2, Int> {
        // Ids cycling through the vocabulary with a different phase per row.
        let ids: Vec<i32> = (0..batch * seq)
            .map(|i| ((i * 7 + i / seq * 3) % 11) as i32)
            .collect();
        Tensor::from_data(TensorData::new(ids, [batch, seq]), device)
    }

    #[test]
    fn pieces_through_the_cache_give_the_logits_of_one_forward() {
        let device = Default::default();
        for projections in [
            ProjectionKind::Dense,
            ProjectionKind::SignBlueprint {
                block_size: 8,
                bit_training: BitTraining::StraightThrough,
            },
        ] {
            B::seed(&device, 5);
            let model = config(projections.clone()).init::<B>(&device).unwrap();
            let input = tokens::<B>(2, 9, &device);
            let whole = model.forward(input.clone());

            let mut cache = model.kv_cache();
            let mut pieces = Vec::new();
            for range in [0..4, 4..5, 5..9] {
                pieces.push(
                    model
                        .forward_cached(input.clone().slice([0..2, range]), &mut cache)
                        .unwrap(),
                );
            }
            assert_eq!(cache.len(), 9);
            assert!(cache.bytes() > 0);
            Tensor::cat(pieces, 1)
                .into_data()
                .assert_approx_eq::<f32>(&whole.into_data(), Tolerance::absolute(1e-4));
        }
    }

    #[test]
    fn a_full_or_foreign_cache_is_refused_and_left_as_it_was() {
        let device = Default::default();
        let model = config(ProjectionKind::Dense).init::<B>(&device).unwrap();
        let mut cache = model.kv_cache();
        model
            .forward_cached(tokens::<B>(1, 8, &device), &mut cache)
            .unwrap();
        let err = model
            .forward_cached(tokens::<B>(1, 2, &device), &mut cache)
            .unwrap_err();
        assert_eq!(
            err,
            KvCacheError::Full {
                cached: 8,
                new: 2,
                context: 9
            }
        );
        assert_eq!(cache.len(), 8);
        assert!(matches!(
            model.forward_cached(tokens::<B>(2, 1, &device), &mut cache),
            Err(KvCacheError::Mismatch(_))
        ));
        let deeper = GptConfig::new(11, 9, 16, 3, 4, ProjectionKind::Dense)
            .init::<B>(&device)
            .unwrap();
        assert!(matches!(
            deeper.forward_cached(tokens::<B>(1, 1, &device), &mut cache),
            Err(KvCacheError::Mismatch(_))
        ));
        // The cache still serves the model it was made for.
        model
            .forward_cached(tokens::<B>(1, 1, &device), &mut cache)
            .unwrap();
        assert_eq!(cache.len(), 9);
    }
}
