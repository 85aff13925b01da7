//! Saving a trained model with everything needed to reload it.
//!
//! A checkpoint `PATH` is two files: `PATH.rbe`, the weights through [`ModelRecorder`]
//! (Burn's full-precision named MessagePack behind a length and CRC-32 header, so RBE seeds
//! round-trip bit for bit and a damaged file is an error), and `PATH.json`, the architecture
//! and the vocabulary ([`CheckpointMeta`]) plus the SHA-256 of the weights file.
//!
//! The two files are written as one unit (see [`saved_pair`] for the scheme): an
//! interrupted or failed save leaves a checkpoint saved there before as it was, and a model
//! holding NaN or infinity is refused before any file is touched. Loading goes through
//! [`rbe_burn::load_checked`], so a damaged or mismatched checkpoint is an error, never a panic or
//! a silently different model. Checkpoints from before this format (`PATH.mpk`) still load.

use std::fmt;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::record::{FileRecorder, FullPrecisionSettings, NamedMpkFileRecorder};
use rbe_burn::RbeError;

use super::data::{DataError, Vocab};
use super::model::{Gpt, GptConfig, ModelError};
use crate::saved_pair::{self, PairError, PairPaths};

/// The recorder for the weights.
pub type ModelRecorder = rbe_burn::RbeRecorder;

/// The recorder of checkpoints written before [`ModelRecorder`] (`PATH.mpk`), for loading.
type LegacyRecorder = NamedMpkFileRecorder<FullPrecisionSettings>;

/// What is saved beside the weights.
#[derive(Config, Debug)]
pub struct CheckpointMeta {
    /// The architecture, so a load rebuilds the model before it reads the weights.
    pub model: GptConfig,
    /// The known characters in id order; `<unk>` (id 0) is implicit.
    pub vocab: String,
    /// Optimizer steps the weights were trained for.
    pub steps: usize,
}

/// Why a checkpoint could not be written or read.
#[derive(Debug)]
pub enum CheckpointError {
    /// `PATH.json` is missing or invalid.
    Meta {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Writing the checkpoint failed; one saved there before is unchanged.
    Save {
        /// The weights file.
        path: PathBuf,
        /// What went wrong.
        source: PairError,
    },
    /// The files are missing, damaged, or do not belong together.
    Files(PairError),
    /// The weights could not be loaded into the architecture `PATH.json` describes: damaged,
    /// another architecture, or non-finite.
    Weights {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: RbeError,
    },
    /// The model holds NaN or infinity, so it was not saved.
    NonFinite {
        /// The weights file that was not written.
        path: PathBuf,
        /// What `rbe_burn::check_finite` found.
        source: RbeError,
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
            Self::Save { path, source } => write!(
                f,
                "cannot save the checkpoint {}: {source} (a checkpoint saved there before is \
                 unchanged)",
                path.display()
            ),
            Self::Files(err) => write!(f, "checkpoint: {err}"),
            Self::Weights { path, source } => {
                write!(f, "cannot load the weights {}: {source}", path.display())
            }
            Self::NonFinite { path, source } => write!(
                f,
                "not saving the checkpoint {}: {source} (training diverged; try a lower --lr). \
                 A checkpoint saved there before is unchanged",
                path.display()
            ),
            Self::Model(err) => write!(f, "checkpoint architecture: {err}"),
            Self::Vocab(err) => write!(f, "checkpoint vocabulary: {err}"),
        }
    }
}

impl std::error::Error for CheckpointError {}

/// `PATH` without a trailing `.rbe`, `.mpk` or `.json`, so either file names the checkpoint.
fn stem(path: &Path) -> PathBuf {
    match path.extension().and_then(|e| e.to_str()) {
        Some("rbe" | "mpk" | "json") => path.with_extension(""),
        _ => path.to_path_buf(),
    }
}

/// The files of the checkpoint `path` (the stem or either file).
pub fn paths<B: Backend>(path: &Path) -> PairPaths {
    PairPaths::new(
        &stem(path),
        <ModelRecorder as FileRecorder<B>>::file_extension(),
    )
}

/// `PATH.mpk`, the weights of a checkpoint from before [`ModelRecorder`].
fn legacy_weights_path(path: &Path) -> PathBuf {
    stem(path).with_extension("mpk")
}

/// Whether a checkpoint (any of its files) exists at `path`.
pub fn exists<B: Backend>(path: &Path) -> bool {
    paths::<B>(path).exists() || legacy_weights_path(path).exists()
}

/// Writes `PATH.json` and `PATH.rbe` together, creating the parent directory; returns the
/// weights' file. A model holding NaN or infinity is refused ([`CheckpointError::NonFinite`])
/// and an interrupted or failed save keeps the previous checkpoint (see [`saved_pair`]).
pub fn save<B: Backend>(
    model: Gpt<B>,
    meta: &CheckpointMeta,
    path: &Path,
) -> Result<PathBuf, CheckpointError> {
    let paths = paths::<B>(path);
    rbe_burn::check_finite(&model).map_err(|source| CheckpointError::NonFinite {
        path: paths.weights.clone(),
        source,
    })?;
    saved_pair::write_module(&paths, meta, model, &ModelRecorder::new()).map_err(|source| {
        CheckpointError::Save {
            path: paths.weights.clone(),
            source,
        }
    })?;
    Ok(paths.weights)
}

/// Reads a checkpoint written by [`save`]: checks that the two files belong together,
/// rebuilds the architecture from `PATH.json` and loads the weights through
/// [`rbe_burn::load_checked`] (integrity, every parameter's shape and layer structure,
/// finiteness).
pub fn load<B: Backend>(
    path: &Path,
    device: &B::Device,
) -> Result<(Gpt<B>, Vocab, CheckpointMeta), CheckpointError> {
    let paths = paths::<B>(path);
    let legacy = legacy_weights_path(path);
    let use_legacy = !paths.weights.exists() && !paths.staged_weights.exists() && legacy.is_file();
    let json = if use_legacy {
        std::fs::read_to_string(&paths.meta)
            .map_err(|err| err.to_string())
            .and_then(|text| serde_json::from_str(&text).map_err(|err| err.to_string()))
            .map_err(|reason| CheckpointError::Meta {
                path: paths.meta.clone(),
                reason,
            })?
    } else {
        saved_pair::read(&paths).map_err(CheckpointError::Files)?
    };
    let meta: CheckpointMeta =
        serde_json::from_value(json).map_err(|err| CheckpointError::Meta {
            path: paths.meta.clone(),
            reason: err.to_string(),
        })?;
    let vocab = Vocab::from_chars(meta.vocab.chars()).map_err(CheckpointError::Vocab)?;
    if vocab.len() != meta.model.vocab_size {
        return Err(CheckpointError::Meta {
            path: paths.meta.clone(),
            reason: format!(
                "vocabulary has {} ids but the model expects {}",
                vocab.len(),
                meta.model.vocab_size
            ),
        });
    }
    let model = meta
        .model
        .init::<B>(device)
        .map_err(CheckpointError::Model)?;
    let loaded = if use_legacy {
        rbe_burn::load_checked(model, &legacy, &LegacyRecorder::new(), device)
    } else {
        rbe_burn::load_checked(model, &paths.weights, &ModelRecorder::new(), device)
    };
    let weights = if use_legacy { legacy } else { paths.weights };
    let model = loaded.map_err(|source| CheckpointError::Weights {
        path: weights,
        source,
    })?;
    Ok((model, vocab, meta))
}
