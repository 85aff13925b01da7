//! A GPT-style decoder-only character model whose projections are RBE layers.
//!
//! Pre-norm blocks: `x + attention(norm(x))`, then `x + mlp(norm(x))`. Every projection
//! inside a block (query, key, value, output, MLP up and down) is a [`Layer`], here an
//! `RbeLinear` or, for the dense baseline, a Burn `Linear`. The token and position
//! embeddings stay dense; the LM head is dense unless asked otherwise, because at character
//! level it is small and sits right before the softmax.

use burn::nn::{Embedding, EmbeddingConfig, Gelu, LayerNorm, LayerNormConfig, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use rbe_burn::{
    BitTraining, Compressor, PaperFormat, RbeBackend, RbeError, RbeLinearConfig, SignFormat,
    TernaryFormat,
};
use std::fmt;

use super::kv_cache::{KvCache, KvCacheError};
use crate::layer::{FLOAT_BYTES, Layer};
/// Added to masked attention scores; large enough that `exp` underflows to zero, finite so
/// no backend has to handle `-inf - (-inf)`.
const MASKED_SCORE: f32 = -1.0e9;

/// How the linear maps are stored.
#[derive(Config, Debug, PartialEq)]
pub enum ProjectionKind {
    /// A Burn `Linear`: the full `d_output x d_input` weight.
    Dense,
    /// An `RbeLinear` with square blocks.
    Rbe {
        /// Side of the square block each seed generates.
        block_size: usize,
        /// Rank of the dense low-rank residual; 0 is pure RBE.
        residual_rank: usize,
        /// Whether the paper's state transitions move the CORDIC bits during training.
        transitions: bool,
    },
    /// An `RbeLinear` in the sign-blueprint format (docs/math.md §9): one sign bit per cell
    /// of square blocks of at most 64 cells, `w = mu + alpha * (2 bit - 1)`, no residual.
    SignBlueprint {
        /// Side of the square block; at most 8, so that a block fits in the 64 bits.
        block_size: usize,
        /// How the bits learn: straight-through latents or Bop-style flips.
        bit_training: BitTraining,
    },
    /// An `RbeLinear` in the ternary format (docs/math.md §10): a level in {-1, 0, +1} per
    /// cell of square blocks of at most 64 cells and an f16 scale, `w = alpha * t`.
    Ternary {
        /// Side of the square block; at most 8.
        block_size: usize,
        /// How the levels learn: straight-through latents, or frozen.
        bit_training: BitTraining,
    },
}

impl ProjectionKind {
    /// The `RbeLinearConfig` of a `d_input -> d_output` projection of this kind; `None` for
    /// dense. A [`Compressor`] built from it encodes a trained model with the same settings
    /// a model trained from scratch gets.
    pub fn rbe_config(&self, d_input: usize, d_output: usize) -> Option<RbeLinearConfig> {
        match *self {
            Self::Dense => None,
            Self::Rbe {
                block_size,
                residual_rank,
                transitions,
            } => Some(
                RbeLinearConfig::new(d_input, d_output)
                    .with_block_size(block_size)
                    .with_residual_rank(residual_rank)
                    .with_format(
                        PaperFormat::new()
                            .with_transitions_enabled(transitions)
                            .into(),
                    ),
            ),
            Self::SignBlueprint {
                block_size,
                bit_training,
            } => Some(
                RbeLinearConfig::new(d_input, d_output)
                    .with_block_size(block_size)
                    .with_format(SignFormat::new(bit_training).into()),
            ),
            Self::Ternary {
                block_size,
                bit_training,
            } => Some(
                RbeLinearConfig::new(d_input, d_output)
                    .with_block_size(block_size)
                    .with_format(TernaryFormat::new(bit_training).into()),
            ),
        }
    }

    fn validate(&self, d_input: usize, d_output: usize) -> Result<(), RbeError> {
        self.rbe_config(d_input, d_output)
            .map_or(Ok(()), |config| config.validate())
    }

    fn init<B: Backend>(
        &self,
        d_input: usize,
        d_output: usize,
        device: &B::Device,
    ) -> Result<Layer<B>, RbeError> {
        Ok(match self.rbe_config(d_input, d_output) {
            None => Layer::Dense(LinearConfig::new(d_input, d_output).init(device)),
            Some(config) => Layer::Rbe(config.try_init(device)?),
        })
    }
}

/// Multi-head self-attention with a causal mask.
#[derive(Module, Debug)]
pub struct CausalSelfAttention<B: Backend> {
    query: Layer<B>,
    key: Layer<B>,
    value: Layer<B>,
    output: Layer<B>,
    n_heads: usize,
}

impl<B: RbeBackend> CausalSelfAttention<B> {
    /// # Shapes
    /// - input: `[batch, seq, d_model]`
    /// - output: `[batch, seq, d_model]`
    pub fn forward(&self, input: Tensor<B, 3>) -> Tensor<B, 3> {
        let [query, key, value] = self.project(input);
        self.mix(query, key, value, 0)
    }

    /// [`CausalSelfAttention::forward`] of positions that follow those in `cache`, whose
    /// keys and values for block `layer` it extends.
    ///
    /// # Shapes
    /// - input: `[batch, new, d_model]`
    /// - output: `[batch, new, d_model]`
    fn forward_cached(
        &self,
        input: Tensor<B, 3>,
        cache: &mut KvCache<B>,
        layer: usize,
    ) -> Tensor<B, 3> {
        let past = cache.len();
        let [query, key, value] = self.project(input);
        let (key, value) = cache.append(layer, key, value);
        self.mix(query, key, value, past)
    }

    /// Query, key and value, split into heads: `[batch, heads, seq, d_head]` each.
    fn project(&self, input: Tensor<B, 3>) -> [Tensor<B, 4>; 3] {
        let [batch, seq, d_model] = input.dims();
        let d_head = d_model / self.n_heads;
        let split_heads = |x: Tensor<B, 3>| {
            x.reshape([batch, seq, self.n_heads, d_head])
                .swap_dims(1, 2)
        };
        [
            split_heads(self.query.forward(input.clone())),
            split_heads(self.key.forward(input.clone())),
            split_heads(self.value.forward(input)),
        ]
    }

    /// Attention of the queries over the keys, heads merged, then the output projection.
    fn mix(
        &self,
        query: Tensor<B, 4>,
        key: Tensor<B, 4>,
        value: Tensor<B, 4>,
        past: usize,
    ) -> Tensor<B, 3> {
        let [batch, heads, seq, d_head] = query.dims();
        let mixed = causal_attention(query, key, value, past)
            .swap_dims(1, 2)
            .reshape([batch, seq, heads * d_head]);
        self.output.forward(mixed)
    }
}

/// Scaled dot-product attention where query `i` sits at position `past + i` and sees the
/// keys at positions `0..=past + i`.
///
/// # Shapes
/// - query: `[batch, heads, new, d_head]`
/// - key, value: `[batch, heads, past + new, d_head]`
/// - output: `[batch, heads, new, d_head]`
pub fn causal_attention<B: Backend>(
    query: Tensor<B, 4>,
    key: Tensor<B, 4>,
    value: Tensor<B, 4>,
    past: usize,
) -> Tensor<B, 4> {
    let [batch, heads, new, d_head] = query.dims();
    let total = key.dims()[2];
    let scores = query
        .matmul(key.transpose())
        .div_scalar((d_head as f64).sqrt());
    // A single new position may see every key, so it needs no mask.
    let scores = if new > 1 {
        // `tril_mask` is true above the diagonal shifted right by `past`: the future.
        let future = Tensor::<B, 2, Bool>::tril_mask([new, total], past as i64, &scores.device())
            .unsqueeze::<4>()
            .expand([batch, heads, new, total]);
        scores.mask_fill(future, MASKED_SCORE)
    } else {
        scores
    };
    softmax(scores, 3).matmul(value)
}

/// The position-wise feed-forward network.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    up: Layer<B>,
    down: Layer<B>,
    activation: Gelu,
}

impl<B: RbeBackend> Mlp<B> {
    /// # Shapes
    /// - input: `[batch, seq, d_model]`
    /// - output: `[batch, seq, d_model]`
    pub fn forward(&self, input: Tensor<B, 3>) -> Tensor<B, 3> {
        self.down
            .forward(self.activation.forward(self.up.forward(input)))
    }
}

/// One pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    norm_attention: LayerNorm<B>,
    attention: CausalSelfAttention<B>,
    norm_mlp: LayerNorm<B>,
    mlp: Mlp<B>,
}

impl<B: RbeBackend> Block<B> {
    /// # Shapes
    /// - input: `[batch, seq, d_model]`
    /// - output: `[batch, seq, d_model]`
    pub fn forward(&self, input: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = input.clone() + self.attention.forward(self.norm_attention.forward(input));
        x.clone() + self.mlp.forward(self.norm_mlp.forward(x))
    }

    /// [`Block::forward`] of positions that follow those in `cache` (block `layer`'s part).
    fn forward_cached(
        &self,
        input: Tensor<B, 3>,
        cache: &mut KvCache<B>,
        layer: usize,
    ) -> Tensor<B, 3> {
        let attended =
            self.attention
                .forward_cached(self.norm_attention.forward(input.clone()), cache, layer);
        let x = input + attended;
        x.clone() + self.mlp.forward(self.norm_mlp.forward(x))
    }
}

/// Why a model configuration cannot be built.
#[derive(Debug)]
pub enum ModelError {
    /// A size is zero or the heads do not divide `d_model`.
    Shape(String),
    /// An RBE layer rejected its configuration.
    Rbe(RbeError),
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Shape(msg) => write!(f, "invalid model configuration: {msg}"),
            Self::Rbe(err) => write!(f, "invalid RBE layer: {err}"),
        }
    }
}

impl std::error::Error for ModelError {}

impl From<RbeError> for ModelError {
    fn from(err: RbeError) -> Self {
        Self::Rbe(err)
    }
}

/// The model's architecture; saved beside the weights so they can be reloaded.
#[derive(Config, Debug)]
pub struct GptConfig {
    /// Number of token ids, `<unk>` included.
    pub vocab_size: usize,
    /// Longest sequence the position embedding covers.
    pub context: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// Attention heads per block; must divide `d_model`.
    pub n_heads: usize,
    /// Hidden width of the MLP over `d_model`.
    #[config(default = 4)]
    pub mlp_ratio: usize,
    /// How the block projections are stored.
    pub projections: ProjectionKind,
    /// How the LM head is stored.
    #[config(default = "ProjectionKind::Dense")]
    pub head: ProjectionKind,
}

impl GptConfig {
    /// Checks every size and every RBE layer this configuration would build.
    pub fn validate(&self) -> Result<(), ModelError> {
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("context", self.context),
            ("d_model", self.d_model),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("mlp_ratio", self.mlp_ratio),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(ModelError::Shape(format!("{name} must be positive")));
        }
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(ModelError::Shape(format!(
                "n_heads {} must divide d_model {}",
                self.n_heads, self.d_model
            )));
        }
        let (d, hidden) = (self.d_model, self.d_model * self.mlp_ratio);
        self.projections.validate(d, d)?;
        self.projections.validate(d, hidden)?;
        self.projections.validate(hidden, d)?;
        self.head.validate(d, self.vocab_size)?;
        Ok(())
    }

    /// Builds a freshly initialised model (draws use the backend's RNG: seed it first).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Gpt<B>, ModelError> {
        self.validate()?;
        let (d, hidden) = (self.d_model, self.d_model * self.mlp_ratio);
        let projection = |d_in, d_out| self.projections.init(d_in, d_out, device);
        let blocks = (0..self.n_layers)
            .map(|_| {
                Ok(Block {
                    norm_attention: LayerNormConfig::new(d).init(device),
                    attention: CausalSelfAttention {
                        query: projection(d, d)?,
                        key: projection(d, d)?,
                        value: projection(d, d)?,
                        output: projection(d, d)?,
                        n_heads: self.n_heads,
                    },
                    norm_mlp: LayerNormConfig::new(d).init(device),
                    mlp: Mlp {
                        up: projection(d, hidden)?,
                        down: projection(hidden, d)?,
                        activation: Gelu::new(),
                    },
                })
            })
            .collect::<Result<Vec<_>, RbeError>>()?;
        Ok(Gpt {
            token_embedding: EmbeddingConfig::new(self.vocab_size, d).init(device),
            position_embedding: EmbeddingConfig::new(self.context, d).init(device),
            blocks,
            norm: LayerNormConfig::new(d).init(device),
            head: self.head.init(d, self.vocab_size, device)?,
            context: self.context,
        })
    }
}

/// The decoder-only language model.
#[derive(Module, Debug)]
pub struct Gpt<B: Backend> {
    token_embedding: Embedding<B>,
    position_embedding: Embedding<B>,
    blocks: Vec<Block<B>>,
    norm: LayerNorm<B>,
    head: Layer<B>,
    context: usize,
}

/// Stored bytes of a model, split by what RBE can compress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelBytes {
    /// Everything the model stores.
    pub total: usize,
    /// The dense model of the same architecture.
    pub dense_total: usize,
    /// The attention and MLP projections of all blocks, as stored.
    pub projections: usize,
    /// The same projections if they were dense.
    pub dense_projections: usize,
}

impl<B: Backend> Gpt<B> {
    /// Longest input the model accepts.
    pub fn context(&self) -> usize {
        self.context
    }

    /// The device the parameters live on.
    pub fn device(&self) -> B::Device {
        self.token_embedding.weight.val().device()
    }

    /// Every block projection (attention query, key, value, output, MLP up, down), in
    /// order; the head is counted apart.
    pub fn projections(&self) -> Vec<&Layer<B>> {
        self.blocks
            .iter()
            .flat_map(|block| {
                let attention = &block.attention;
                [
                    &attention.query,
                    &attention.key,
                    &attention.value,
                    &attention.output,
                    &block.mlp.up,
                    &block.mlp.down,
                ]
            })
            .collect()
    }

    /// Replaces the block projections (see [`Gpt::projections`]), and the head too when
    /// `head` is set, by what `f` makes of each, in order; `f` gets the layer's name:
    /// `block{i}.attention.query`, `.key`, `.value`, `.output`, `block{i}.mlp.up`, `.down`,
    /// and `head`. Stops at the first error.
    pub fn try_map_layers<E>(
        mut self,
        head: bool,
        mut f: impl FnMut(&str, Layer<B>) -> Result<Layer<B>, E>,
    ) -> Result<Self, E> {
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for (i, block) in std::mem::take(&mut self.blocks).into_iter().enumerate() {
            let Block {
                norm_attention,
                attention,
                norm_mlp,
                mlp,
            } = block;
            let mut name = |part: &str, layer| f(&format!("block{i}.{part}"), layer);
            let attention = CausalSelfAttention {
                query: name("attention.query", attention.query)?,
                key: name("attention.key", attention.key)?,
                value: name("attention.value", attention.value)?,
                output: name("attention.output", attention.output)?,
                n_heads: attention.n_heads,
            };
            let mlp = Mlp {
                up: name("mlp.up", mlp.up)?,
                down: name("mlp.down", mlp.down)?,
                activation: mlp.activation,
            };
            blocks.push(Block {
                norm_attention,
                attention,
                norm_mlp,
                mlp,
            });
        }
        self.blocks = blocks;
        if head {
            self.head = f("head", self.head)?;
        }
        Ok(self)
    }

    /// Encodes every block projection of a trained dense model into an `RbeLinear` with the
    /// compressor's settings; the compressor keeps each layer's report under its name (see
    /// [`Gpt::try_map_layers`]). Embeddings, norms and the head are kept as they are.
    ///
    /// # Errors
    /// [`RbeError::Layer`] naming the first layer that is not dense or could not be
    /// encoded.
    pub fn compress(self, compressor: &mut Compressor) -> Result<Self, RbeError> {
        self.compress_layers(compressor, false)
    }

    /// [`Gpt::compress`], and the LM head too when `head` is set.
    pub fn compress_layers(
        self,
        compressor: &mut Compressor,
        head: bool,
    ) -> Result<Self, RbeError> {
        self.try_map_layers(head, |name, layer| match layer {
            Layer::Dense(linear) => compressor.linear(name, &linear).map(Layer::Rbe),
            other => Err(RbeError::Layer {
                name: name.to_string(),
                source: Box::new(RbeError::Config(format!(
                    "only a dense Linear can be encoded, this layer is {}",
                    other.kind_name()
                ))),
            }),
        })
    }

    /// Stored bytes, and what the dense model of the same shape would store.
    pub fn bytes(&self) -> ModelBytes {
        let projections = self.projections();
        let always_dense = self.token_embedding.num_params()
            + self.position_embedding.num_params()
            + self.norm.num_params()
            + self
                .blocks
                .iter()
                .map(|b| b.norm_attention.num_params() + b.norm_mlp.num_params())
                .sum::<usize>();
        let stored: usize = projections.iter().map(|p| p.bytes().total()).sum();
        let dense: usize = projections.iter().map(|p| p.dense_bytes()).sum();
        let others = FLOAT_BYTES * always_dense;
        ModelBytes {
            total: others + self.head.bytes().total() + stored,
            dense_total: others + self.head.dense_bytes() + dense,
            projections: stored,
            dense_projections: dense,
        }
    }
}

impl<B: RbeBackend> Gpt<B> {
    /// Next-character logits at every position.
    ///
    /// # Shapes
    /// - tokens: `[batch, seq]` with `seq <= context`
    /// - output: `[batch, seq, vocab_size]`
    pub fn forward(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let mut x = self.embed(tokens, 0);
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.head.forward(self.norm.forward(x))
    }

    /// Next-character logits at the positions that follow those in `cache`, which is
    /// extended with their keys and values: feeding a sequence in pieces gives the logits
    /// [`Gpt::forward`] gives for the whole of it.
    ///
    /// # Shapes
    /// - tokens: `[batch, new]`, `batch` the same on every call with one cache
    /// - output: `[batch, new, vocab_size]`
    ///
    /// # Errors
    /// [`KvCacheError::Full`] when the cache and the new tokens exceed the context,
    /// [`KvCacheError::Mismatch`] for a cache of another model or batch; the cache is
    /// then left as it was.
    pub fn forward_cached(
        &self,
        tokens: Tensor<B, 2, Int>,
        cache: &mut KvCache<B>,
    ) -> Result<Tensor<B, 3>, KvCacheError> {
        let [batch, new] = tokens.dims();
        cache.check(self.blocks.len(), batch, new, self.context)?;
        let mut x = self.embed(tokens, cache.len());
        for (layer, block) in self.blocks.iter().enumerate() {
            x = block.forward_cached(x, cache, layer);
        }
        cache.advance(batch, new);
        Ok(self.head.forward(self.norm.forward(x)))
    }

    /// An empty key/value cache for [`Gpt::forward_cached`].
    pub fn kv_cache(&self) -> KvCache<B> {
        KvCache::new(self.blocks.len())
    }

    /// Token plus position embeddings of tokens at positions `first..first + seq`.
    fn embed(&self, tokens: Tensor<B, 2, Int>, first: usize) -> Tensor<B, 3> {
        let [_, seq] = tokens.dims();
        let positions =
            Tensor::<B, 1, Int>::arange(first as i64..(first + seq) as i64, &tokens.device())
                .unsqueeze::<2>();
        self.token_embedding.forward(tokens) + self.position_embedding.forward(positions)
    }

    /// Mean cross-entropy of the next-character predictions, in nats.
    ///
    /// # Shapes
    /// - inputs, targets: `[batch, seq]`
    /// - output: `[1]`
    pub fn loss(&self, inputs: Tensor<B, 2, Int>, targets: Tensor<B, 2, Int>) -> Tensor<B, 1> {
        cross_entropy(self.forward(inputs), targets)
    }
}

/// Mean cross-entropy of next-character logits against the targets, in nats.
///
/// # Shapes
/// - logits: `[batch, seq, vocab_size]`
/// - targets: `[batch, seq]`
/// - output: `[1]`
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>) -> Tensor<B, 1> {
    let [batch, seq, vocab] = logits.dims();
    let log_probs = log_softmax(logits.reshape([batch * seq, vocab]), 1);
    log_probs
        .gather(1, targets.reshape([batch * seq, 1]))
        .mean()
        .neg()
}
