//! Character-level data: the vocabulary, the 90/10 split by position, and batches of
//! windows.
//!
//! Ids are `u32` on the host and become Burn `Int` tensors only when a batch is built, so
//! the corpus can be shared by every backend.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use rand::Rng;

/// The id every character outside the training vocabulary maps to.
pub const UNK_ID: u32 = 0;
/// How `<unk>` is printed when generated text contains it.
pub const UNK_CHAR: char = '\u{FFFD}';
/// Share of the text, by position, that goes to training; the rest is validation.
pub const TRAIN_FRACTION: f64 = 0.9;

/// Why a corpus could not be built.
#[derive(Debug)]
pub enum DataError {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not UTF-8.
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Byte offset of the first invalid sequence.
        valid_up_to: usize,
    },
    /// One of the splits is shorter than one window.
    TooShort {
        /// Characters in the whole text.
        chars: usize,
        /// Characters one window needs in each split (`context + 1`).
        needed: usize,
    },
    /// A saved vocabulary lists a character twice.
    DuplicateChar(char),
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Self::NotUtf8 { path, valid_up_to } => write!(
                f,
                "{} is not UTF-8 text (invalid bytes at offset {valid_up_to})",
                path.display()
            ),
            Self::TooShort { chars: 0, .. } => write!(f, "the text is empty"),
            Self::TooShort { chars, needed } => write!(
                f,
                "the text has {chars} characters; the 90/10 split needs at least {needed} \
                 characters in the validation part (context + 1), i.e. about {} in total",
                needed * 10
            ),
            Self::DuplicateChar(c) => write!(f, "vocabulary lists {c:?} twice"),
        }
    }
}

impl std::error::Error for DataError {}

/// The characters of the training split, plus `<unk>` at id 0.
#[derive(Debug, Clone)]
pub struct Vocab {
    chars: Vec<char>,
    index: HashMap<char, u32>,
}

impl Vocab {
    /// The distinct characters of `text`, sorted so ids do not depend on text order.
    pub fn from_text(text: &str) -> Self {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        Self::from_unique(chars)
    }

    /// A vocabulary with exactly these characters at ids `1..`, as saved by
    /// [`Vocab::as_string`].
    pub fn from_chars(chars: impl IntoIterator<Item = char>) -> Result<Self, DataError> {
        let chars: Vec<char> = chars.into_iter().collect();
        let mut seen = std::collections::HashSet::new();
        if let Some(&dup) = chars.iter().find(|c| !seen.insert(**c)) {
            return Err(DataError::DuplicateChar(dup));
        }
        Ok(Self::from_unique(chars))
    }

    fn from_unique(chars: Vec<char>) -> Self {
        let index = chars
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as u32 + 1))
            .collect();
        Self { chars, index }
    }

    /// Number of ids, `<unk>` included (so never zero).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.chars.len() + 1
    }

    /// The known characters in id order (without `<unk>`), for saving.
    pub fn as_string(&self) -> String {
        self.chars.iter().collect()
    }

    /// Ids of `text`; characters outside the vocabulary become [`UNK_ID`].
    pub fn encode(&self, text: &str) -> Vec<u32> {
        text.chars()
            .map(|c| self.index.get(&c).copied().unwrap_or(UNK_ID))
            .collect()
    }

    /// Text of `ids`; `<unk>` and out-of-range ids print as [`UNK_CHAR`].
    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter()
            .map(|&id| {
                (id as usize)
                    .checked_sub(1)
                    .and_then(|i| self.chars.get(i))
                    .copied()
                    .unwrap_or(UNK_CHAR)
            })
            .collect()
    }
}

/// A text split 90/10 by position, encoded with the vocabulary of the training part.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// Built from [`Corpus::train`] only.
    pub vocab: Vocab,
    /// The first 90% of the characters.
    pub train: Vec<u32>,
    /// The last 10%; may contain [`UNK_ID`].
    pub valid: Vec<u32>,
}

impl Corpus {
    /// Reads a UTF-8 file, keeping at most its first `max_bytes` bytes (cut at a character
    /// boundary) when given.
    pub fn load(path: &Path, max_bytes: Option<usize>, context: usize) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|err| DataError::NotUtf8 {
            path: path.to_path_buf(),
            valid_up_to: err.utf8_error().valid_up_to(),
        })?;
        Self::from_text(prefix(&text, max_bytes.unwrap_or(usize::MAX)), context)
    }

    /// Splits `text` by character position and encodes both parts.
    pub fn from_text(text: &str, context: usize) -> Result<Self, DataError> {
        let chars = text.chars().count();
        let cut = (chars as f64 * TRAIN_FRACTION).round() as usize;
        let needed = context + 1;
        if cut < needed || chars - cut < needed {
            return Err(DataError::TooShort { chars, needed });
        }
        let cut_byte = text.char_indices().nth(cut).map_or(text.len(), |(b, _)| b);
        let (train_text, valid_text) = text.split_at(cut_byte);
        let vocab = Vocab::from_text(train_text);
        Ok(Self {
            train: vocab.encode(train_text),
            valid: vocab.encode(valid_text),
            vocab,
        })
    }

    /// Bits per character of the add-one-smoothed unigram model of the training split,
    /// measured on the validation split: the bar a model must clear to use any context.
    pub fn unigram_bpc(&self) -> f64 {
        let mut counts = vec![1.0f64; self.vocab.len()];
        for &id in &self.train {
            counts[id as usize] += 1.0;
        }
        let total: f64 = counts.iter().sum();
        let nats: f64 = self
            .valid
            .iter()
            .map(|&id| -(counts[id as usize] / total).ln())
            .sum();
        nats / self.valid.len() as f64 / std::f64::consts::LN_2
    }

    /// Bits per character of the add-one-smoothed bigram model of the training split (the
    /// next character from the current one), measured on the validation split: what a model
    /// reaches without using more than one character of context.
    pub fn bigram_bpc(&self) -> f64 {
        let v = self.vocab.len();
        let mut pairs = vec![0u32; v * v];
        let mut firsts = vec![0u32; v];
        for w in self.train.windows(2) {
            pairs[w[0] as usize * v + w[1] as usize] += 1;
            firsts[w[0] as usize] += 1;
        }
        let bits: f64 = self
            .valid
            .windows(2)
            .map(|w| {
                let pair = f64::from(pairs[w[0] as usize * v + w[1] as usize]) + 1.0;
                let first = f64::from(firsts[w[0] as usize]) + v as f64;
                -(pair / first).log2()
            })
            .sum();
        bits / (self.valid.len() - 1) as f64
    }

    /// Bits per character of the uniform model over the vocabulary, `log2(vocab)`.
    pub fn uniform_bpc(&self) -> f64 {
        (self.vocab.len() as f64).log2()
    }
}

/// The longest prefix of `text` of at most `max_bytes` bytes that ends on a character.
pub fn prefix(text: &str, max_bytes: usize) -> &str {
    if max_bytes >= text.len() {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Next-character prediction pairs: `targets[b, t] = inputs[b, t + 1]` in the text.
#[derive(Debug, Clone)]
pub struct TokenBatch<B: Backend> {
    /// `[batch, context]`.
    pub inputs: Tensor<B, 2, Int>,
    /// `[batch, context]`.
    pub targets: Tensor<B, 2, Int>,
}

impl<B: Backend> TokenBatch<B> {
    /// The windows of `context + 1` ids starting at `starts`.
    ///
    /// The caller guarantees `start + context < ids.len()` for every start.
    pub fn from_windows(ids: &[u32], starts: &[usize], context: usize, device: &B::Device) -> Self {
        let mut inputs = Vec::with_capacity(starts.len() * context);
        let mut targets = Vec::with_capacity(starts.len() * context);
        for &start in starts {
            let window = &ids[start..start + context + 1];
            inputs.extend(window[..context].iter().map(|&id| id as i32));
            targets.extend(window[1..].iter().map(|&id| id as i32));
        }
        let shape = [starts.len(), context];
        Self {
            inputs: Tensor::from_data(TensorData::new(inputs, shape), device),
            targets: Tensor::from_data(TensorData::new(targets, shape), device),
        }
    }

    /// `batch_size` windows at uniformly random positions of `ids`.
    pub fn random(
        ids: &[u32],
        batch_size: usize,
        context: usize,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> Self {
        let last_start = ids.len() - context - 1;
        let starts: Vec<usize> = (0..batch_size)
            .map(|_| rng.random_range(0..=last_start))
            .collect();
        Self::from_windows(ids, &starts, context, device)
    }
}

/// Starts of the non-overlapping windows that cover `len` ids, thinned evenly to at most
/// `max_windows` so a long validation split can be sampled across its whole length.
pub fn eval_windows(len: usize, context: usize, max_windows: usize) -> Vec<usize> {
    let all = (len - 1) / context;
    let take = all.min(max_windows.max(1));
    (0..take).map(|k| k * all / take * context).collect()
}
