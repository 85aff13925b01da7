//! A model file and its JSON metadata, written and read as one unit.
//!
//! Both examples save a model as two files, `STEM.rbe` (the weights, through a Burn
//! recorder) and `STEM.json` (what is needed to rebuild the model: its configuration, and
//! for the transformer the vocabulary). Two files cannot be replaced by one atomic
//! operation, so [`write`] makes the metadata the commit record:
//!
//! 1. **Stage.** The weights go to `.STEM.staged.rbe` and the metadata, which records the
//!    SHA-256 of those weights (`"weights_sha256"`) and of itself (`"meta_sha256"`, over
//!    the other fields in a canonical form), to `.STEM.staged.json`, both beside `STEM` and
//!    flushed to disk. The previous pair is not touched. An interruption here
//!    (a crash, a full disk, a recorder that refuses the model) leaves the previous pair as
//!    it was, plus staged files that the next save replaces.
//! 2. **Commit.** The staged metadata is renamed over `STEM.json`: one atomic rename, the
//!    commit point.
//! 3. **Finish.** The staged weights are renamed over `STEM.rbe`.
//!
//! An interruption between 2 and 3 leaves the new metadata beside the old weights. The
//! metadata's SHA-256 tells them apart: [`read`] (and the next [`write`]) finds the staged
//! weights that match it and finishes step 3 (roll forward). So a reader gets either the
//! previous pair or the new one, never new metadata with old weights or the reverse, and a
//! pair whose weights do not match their metadata (one file from another run, or a weights
//! file damaged after saving) is refused with an error, as is damaged metadata (a changed
//! character of the vocabulary would otherwise load silently). Metadata written before this
//! scheme (without the two fields) still loads, unchecked.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::record::FileRecorder;
use burn::tensor::backend::Backend;
use sha2::{Digest, Sha256};

/// The metadata field holding the SHA-256 of the weights file.
pub const WEIGHTS_SHA256: &str = "weights_sha256";

/// The metadata field holding the SHA-256 of the metadata's other fields.
pub const META_SHA256: &str = "meta_sha256";

/// The files of one saved model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairPaths {
    /// `STEM.EXT`: the weights, as the recorder writes them.
    pub weights: PathBuf,
    /// `STEM.json`: the metadata.
    pub meta: PathBuf,
    /// Where [`stage`] writes the weights before the commit.
    pub staged_weights: PathBuf,
    /// Where [`stage`] writes the metadata before the commit.
    pub staged_meta: PathBuf,
}

/// `path` with `.ext` appended (not replacing an extension: `run.v2` gives `run.v2.ext`).
fn with_suffix(path: &Path, ext: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

impl PairPaths {
    /// The files of the model saved under `stem`, whose recorder writes files ending in
    /// `.weights_ext`. The staged names end in the same extension, so a Burn file recorder,
    /// which sets its own extension on the path it is given, writes exactly there.
    pub fn new(stem: &Path, weights_ext: &str) -> Self {
        let folder = stem.parent().unwrap_or(Path::new(""));
        let name = stem
            .file_name()
            .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());
        let staged = folder.join(format!(".{name}.staged"));
        Self {
            weights: with_suffix(stem, weights_ext),
            meta: with_suffix(stem, "json"),
            staged_weights: with_suffix(&staged, weights_ext),
            staged_meta: with_suffix(&staged, "json"),
        }
    }

    /// Whether a model (either file) is already saved here.
    pub fn exists(&self) -> bool {
        self.weights.exists() || self.meta.exists()
    }

    fn folder(&self) -> &Path {
        self.meta.parent().unwrap_or(Path::new(""))
    }
}

/// Why a pair could not be written or read.
#[derive(Debug)]
pub enum PairError {
    /// Reading, writing or renaming a file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The recorder could not write the weights.
    Weights {
        /// The staged weights file.
        path: PathBuf,
        /// What the recorder said.
        reason: String,
    },
    /// The metadata is missing or not valid JSON.
    Meta {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The weights file is missing.
    MissingWeights {
        /// The file.
        path: PathBuf,
    },
    /// The weights file is not the one the metadata was saved with.
    Mismatch {
        /// The weights file.
        weights: PathBuf,
        /// The metadata file.
        meta: PathBuf,
        /// The SHA-256 the metadata records.
        expected: String,
        /// The SHA-256 of the weights file.
        found: String,
    },
}

impl fmt::Display for PairError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Weights { path, reason } => {
                write!(f, "writing the weights {}: {reason}", path.display())
            }
            Self::Meta { path, reason } => write!(f, "{}: {reason}", path.display()),
            Self::MissingWeights { path } => {
                write!(f, "{}: weights file not found", path.display())
            }
            Self::Mismatch {
                weights,
                meta,
                expected,
                found,
            } => write!(
                f,
                "{} is not the weights file {} was saved with (SHA-256 {found}, expected \
                 {expected}): it was damaged, or the two files come from different runs",
                weights.display(),
                meta.display()
            ),
        }
    }
}

impl std::error::Error for PairError {}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> PairError + '_ {
    move |source| PairError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// JSON text of `value` with every object's keys sorted, so its hash does not depend on the
/// order a parser keeps.
fn canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                canonical(&map[key.as_str()], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// SHA-256 of the metadata without its [`META_SHA256`] field.
fn meta_sha256(meta: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut rest = meta.clone();
    rest.remove(META_SHA256);
    let mut text = String::new();
    canonical(&serde_json::Value::Object(rest), &mut text);
    hex(&Sha256::digest(text.as_bytes()))
}

/// SHA-256 of a file, in lowercase hex.
pub fn file_sha256(path: &Path) -> Result<String, PairError> {
    let mut file = fs::File::open(path).map_err(io_error(path))?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).map_err(io_error(path))?;
    Ok(hex(&hasher.finalize()))
}

/// Removes `path`; a file that is not there is fine.
fn remove_if_present(path: &Path) -> Result<(), PairError> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(io_error(path)(err)),
        _ => Ok(()),
    }
}

/// Flushes a file's content to disk.
fn sync_file(path: &Path) -> Result<(), PairError> {
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io_error(path))
}

/// Flushes the renames in `folder` to disk, where the platform allows it (best effort).
fn sync_folder(folder: &Path) {
    #[cfg(unix)]
    {
        let folder = if folder.as_os_str().is_empty() {
            Path::new(".")
        } else {
            folder
        };
        if let Ok(dir) = fs::File::open(folder) {
            let _ = dir.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = folder;
}

fn read_meta(path: &Path) -> Result<serde_json::Value, PairError> {
    let text = fs::read_to_string(path).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => PairError::Meta {
            path: path.to_path_buf(),
            reason: "not found".into(),
        },
        _ => io_error(path)(err),
    })?;
    let meta: serde_json::Value = serde_json::from_str(&text).map_err(|err| PairError::Meta {
        path: path.to_path_buf(),
        reason: format!("not valid JSON: {err}"),
    })?;
    let Some(object) = meta.as_object() else {
        return Err(PairError::Meta {
            path: path.to_path_buf(),
            reason: "not a JSON object".into(),
        });
    };
    if let Some(recorded) = object.get(META_SHA256) {
        let found = meta_sha256(object);
        if recorded.as_str() != Some(found.as_str()) {
            return Err(PairError::Meta {
                path: path.to_path_buf(),
                reason: format!(
                    "damaged or edited: the SHA-256 of its fields is {found}, but it records \
                     {recorded}"
                ),
            });
        }
    }
    Ok(meta)
}

fn recorded_sha256(meta: &serde_json::Value) -> Option<&str> {
    meta.get(WEIGHTS_SHA256).and_then(|v| v.as_str())
}

/// Finishes a save interrupted between its commit and its last rename: when the committed
/// metadata names staged weights rather than the current ones, moves the staged weights into
/// place. Returns whether it did.
pub fn recover(paths: &PairPaths) -> Result<bool, PairError> {
    let Ok(meta) = read_meta(&paths.meta) else {
        return Ok(false);
    };
    let Some(expected) = recorded_sha256(&meta) else {
        return Ok(false);
    };
    if paths.weights.is_file() && file_sha256(&paths.weights)? == expected {
        return Ok(false);
    }
    if paths.staged_weights.is_file() && file_sha256(&paths.staged_weights)? == expected {
        fs::rename(&paths.staged_weights, &paths.weights).map_err(io_error(&paths.weights))?;
        sync_folder(paths.folder());
        eprintln!(
            "note: finished an interrupted save: moved {} to {}",
            paths.staged_weights.display(),
            paths.weights.display()
        );
        return Ok(true);
    }
    Ok(false)
}

/// Step 1 of [`write`]: writes the weights with `write_weights` (given the staged path) and
/// the metadata `meta` (a JSON object, to which the weights' SHA-256 is added) to the staged
/// files. The saved pair is not touched; on error the staged files are removed.
pub fn stage(
    paths: &PairPaths,
    meta: serde_json::Value,
    write_weights: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), PairError> {
    let folder = paths.folder();
    if !folder.as_os_str().is_empty() {
        fs::create_dir_all(folder).map_err(io_error(folder))?;
    }
    // A save interrupted after its commit must be finished before its staged weights are
    // replaced.
    recover(paths)?;
    remove_if_present(&paths.staged_weights)?;
    remove_if_present(&paths.staged_meta)?;
    let staged = (|| {
        write_weights(&paths.staged_weights).map_err(|reason| PairError::Weights {
            path: paths.staged_weights.clone(),
            reason,
        })?;
        if !paths.staged_weights.is_file() {
            return Err(PairError::Weights {
                path: paths.staged_weights.clone(),
                reason: "the recorder wrote no file there".into(),
            });
        }
        sync_file(&paths.staged_weights)?;
        let mut meta = meta;
        let Some(object) = meta.as_object_mut() else {
            return Err(PairError::Meta {
                path: paths.staged_meta.clone(),
                reason: "the metadata is not a JSON object".into(),
            });
        };
        object.remove(META_SHA256);
        object.insert(
            WEIGHTS_SHA256.into(),
            file_sha256(&paths.staged_weights)?.into(),
        );
        let own = meta_sha256(object);
        object.insert(META_SHA256.into(), own.into());
        let text = serde_json::to_string_pretty(&meta).map_err(|err| PairError::Meta {
            path: paths.staged_meta.clone(),
            reason: err.to_string(),
        })?;
        let mut file =
            fs::File::create(&paths.staged_meta).map_err(io_error(&paths.staged_meta))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io_error(&paths.staged_meta))
    })();
    if staged.is_err() {
        let _ = fs::remove_file(&paths.staged_weights);
        let _ = fs::remove_file(&paths.staged_meta);
    }
    staged
}

/// Steps 2 and 3 of [`write`]: renames the staged metadata, then the staged weights, into
/// place.
pub fn commit(paths: &PairPaths) -> Result<(), PairError> {
    fs::rename(&paths.staged_meta, &paths.meta).map_err(io_error(&paths.meta))?;
    fs::rename(&paths.staged_weights, &paths.weights).map_err(io_error(&paths.weights))?;
    sync_folder(paths.folder());
    Ok(())
}

/// Saves the pair: [`stage`], then [`commit`] (see the module docs for why an interrupted
/// save keeps the previous pair).
pub fn write(
    paths: &PairPaths,
    meta: serde_json::Value,
    write_weights: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), PairError> {
    stage(paths, meta, write_weights)?;
    commit(paths)
}

/// Saves `module` through `recorder` with `meta`, serialised to JSON, as its metadata: the
/// [`write`] of a Burn module.
pub fn write_module<B, M, R>(
    paths: &PairPaths,
    meta: &impl serde::Serialize,
    module: M,
    recorder: &R,
) -> Result<(), PairError>
where
    B: Backend,
    M: Module<B>,
    R: FileRecorder<B>,
{
    let meta = serde_json::to_value(meta).map_err(|err| PairError::Meta {
        path: paths.meta.clone(),
        reason: err.to_string(),
    })?;
    write(paths, meta, |staged| {
        module
            .save_file(staged.to_path_buf(), recorder)
            .map_err(|err| err.to_string())
    })
}

/// Reads the metadata of a saved pair after checking that the weights file is the one it was
/// saved with (finishing an interrupted save first, see [`recover`]). The caller then loads
/// the weights from `paths.weights`.
pub fn read(paths: &PairPaths) -> Result<serde_json::Value, PairError> {
    recover(paths)?;
    let meta = read_meta(&paths.meta)?;
    if !paths.weights.is_file() {
        return Err(PairError::MissingWeights {
            path: paths.weights.clone(),
        });
    }
    if let Some(expected) = recorded_sha256(&meta) {
        let found = file_sha256(&paths.weights)?;
        if found != expected {
            return Err(PairError::Mismatch {
                weights: paths.weights.clone(),
                meta: paths.meta.clone(),
                expected: expected.to_string(),
                found,
            });
        }
    }
    Ok(meta)
}

/// Writes `content` to `path` through a temporary file beside it and a rename, so an
/// interrupted write leaves the previous file whole. Used for the examples' tables.
pub fn write_atomically(path: &Path, content: &str) -> Result<(), String> {
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = fs::File::create(&tmp)
        .and_then(|mut file| {
            file.write_all(content.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path));
    written.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("{}: {e}", path.display())
    })
}
