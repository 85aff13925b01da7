//! Saving a trained model with everything needed to reload it.
//!
//! A checkpoint `PATH` is two files: `PATH.mpk`, the weights through [`ModelRecorder`], and
//! `PATH.json`, the architecture and the vocabulary ([`CheckpointMeta`]). RBE seeds are f32
//! `(r, theta)` and i32 halves of the state bits, so the full-precision recorder stores them
//! bit for bit.

use std::fmt;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, RecorderError};

use super::data::{DataError, Vocab};
use super::model::{Gpt, GptConfig, ModelError};

/// The recorder for the weights; an alias so a checksummed recorder can replace it.
pub type ModelRecorder = NamedMpkFileRecorder<FullPrecisionSettings>;

/// What is saved beside the weights.
#[derive(Config, Debug)]
pub struct CheckpointMeta {
    /// The architecture.
    pub model: GptConfig,
    /// The known characters in id order; `<unk>` (id 0) is implicit.
    pub vocab: String,
    /// Optimizer steps the weights were trained for.
    pub steps: usize,
}

/// Why a checkpoint could not be written or read.
#[derive(Debug)]
pub enum CheckpointError {
    /// Reading or writing `PATH.json` failed.
    Meta {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The recorder failed on `PATH.mpk`.
    Weights {
        /// The file.
        path: PathBuf,
        /// What the recorder said.
        source: RecorderError,
    },
    /// The saved architecture is invalid.
    Model(ModelError),
    /// The saved vocabulary is invalid.
    Vocab(DataError),
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Meta { path, reason } => write!(f, "{}: {reason}", path.display()),
            Self::Weights { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Model(err) => write!(f, "checkpoint architecture: {err}"),
            Self::Vocab(err) => write!(f, "checkpoint vocabulary: {err}"),
        }
    }
}

impl std::error::Error for CheckpointError {}

/// `PATH` without a trailing `.mpk` or `.json`, so either file names the checkpoint.
fn stem(path: &Path) -> PathBuf {
    match path.extension().and_then(|e| e.to_str()) {
        Some("mpk" | "json") => path.with_extension(""),
        _ => path.to_path_buf(),
    }
}

fn meta_path(path: &Path) -> PathBuf {
    stem(path).with_extension("json")
}

fn weights_path(path: &Path) -> PathBuf {
    stem(path).with_extension("mpk")
}

/// Writes `PATH.json` and `PATH.mpk`, creating the parent directory; returns the weights'
/// file.
pub fn save<B: Backend>(
    model: Gpt<B>,
    meta: &CheckpointMeta,
    path: &Path,
) -> Result<PathBuf, CheckpointError> {
    let meta_file = meta_path(path);
    if let Some(dir) = meta_file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|err| CheckpointError::Meta {
            path: dir.to_path_buf(),
            reason: err.to_string(),
        })?;
    }
    meta.save(&meta_file).map_err(|err| CheckpointError::Meta {
        path: meta_file.clone(),
        reason: err.to_string(),
    })?;
    // The recorder appends its own extension to the stem.
    let weights = weights_path(path);
    model
        .save_file(stem(path), &ModelRecorder::new())
        .map_err(|source| CheckpointError::Weights {
            path: weights.clone(),
            source,
        })?;
    Ok(weights)
}

/// Reads a checkpoint written by [`save`].
pub fn load<B: Backend>(
    path: &Path,
    device: &B::Device,
) -> Result<(Gpt<B>, Vocab, CheckpointMeta), CheckpointError> {
    let meta_file = meta_path(path);
    let meta = CheckpointMeta::load(&meta_file).map_err(|err| CheckpointError::Meta {
        path: meta_file,
        reason: err.to_string(),
    })?;
    let vocab = Vocab::from_chars(meta.vocab.chars()).map_err(CheckpointError::Vocab)?;
    if vocab.len() != meta.model.vocab_size {
        return Err(CheckpointError::Meta {
            path: meta_path(path),
            reason: format!(
                "vocabulary has {} ids but the model expects {}",
                vocab.len(),
                meta.model.vocab_size
            ),
        });
    }
    let weights = weights_path(path);
    if !weights.is_file() {
        return Err(CheckpointError::Meta {
            path: weights,
            reason: "weights file not found".into(),
        });
    }
    let model = meta
        .model
        .init::<B>(device)
        .map_err(CheckpointError::Model)?
        .load_file(stem(path), &ModelRecorder::new(), device)
        .map_err(|source| CheckpointError::Weights {
            path: weights,
            source,
        })?;
    Ok((model, vocab, meta))
}
