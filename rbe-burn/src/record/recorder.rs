//! [`RbeRecorder`]: Burn's named-MessagePack record behind a length and a CRC-32.
//!
//! Seeds need no special recorder: their record item stores them exactly under every Burn
//! recorder and precision setting (see [`crate::RbeSeedsRecord`]). What Burn's recorders
//! cannot do is notice a flipped byte inside a tensor: that loads silently as a different
//! weight. This recorder can.

use std::io::Write;
use std::marker::PhantomData;
use std::path::PathBuf;

use burn::record::{
    FileRecorder, FullPrecisionSettings, NamedMpkBytesRecorder, PrecisionSettings, Recorder,
    RecorderError,
};
use burn::tensor::backend::Backend;
use serde::Serialize;
use serde::de::DeserializeOwned;

const MAGIC: &[u8; 8] = b"RBEREC01";
const HEADER: usize = MAGIC.len() + 8 + 4;

/// A Burn [`FileRecorder`] (extension `.rbe`) that stores Burn's named-MessagePack record
/// behind `RBEREC01 | payload length (u64 LE) | CRC-32 of the payload (u32 LE)`.
///
/// Loading fails with [`RecorderError::DeserializeError`] when the file is truncated,
/// extended or altered. Saving writes a temporary file and renames it, so an interrupted
/// save leaves the previous file intact. It plugs in wherever Burn takes a recorder,
/// including the `Learner`'s checkpointer.
#[derive(Debug, Clone, Default)]
pub struct RbeRecorder<S: PrecisionSettings = FullPrecisionSettings> {
    _settings: PhantomData<S>,
}

impl<S: PrecisionSettings> RbeRecorder<S> {
    /// A recorder at precision `S` (full precision by default, as Burn's recorders).
    pub fn new() -> Self {
        Self {
            _settings: PhantomData,
        }
    }
}

fn file_path(path: PathBuf) -> PathBuf {
    if path.extension().is_some() {
        path
    } else {
        path.with_extension("rbe")
    }
}

impl<S: PrecisionSettings, B: Backend> Recorder<B> for RbeRecorder<S> {
    type Settings = S;
    type RecordArgs = PathBuf;
    type RecordOutput = ();
    type LoadArgs = PathBuf;

    fn save_item<I: Serialize>(&self, item: I, path: PathBuf) -> Result<(), RecorderError> {
        let payload = Recorder::<B>::save_item(&NamedMpkBytesRecorder::<S>::default(), item, ())?;
        let path = file_path(path);
        let tmp = path.with_extension("rbe.tmp");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(MAGIC)?;
            file.write_all(&(payload.len() as u64).to_le_bytes())?;
            file.write_all(&crc32fast::hash(&payload).to_le_bytes())?;
            file.write_all(&payload)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| RecorderError::Unknown(format!("{}: {e}", path.display())))
    }

    fn load_item<I: DeserializeOwned>(&self, path: &mut PathBuf) -> Result<I, RecorderError> {
        let path = file_path(path.clone());
        let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RecorderError::FileNotFound(path.display().to_string()),
            _ => RecorderError::Unknown(format!("{}: {e}", path.display())),
        })?;
        let mut payload = verified_payload(&bytes)
            .map_err(|reason| {
                RecorderError::DeserializeError(format!("{}: {reason}", path.display()))
            })?
            .to_vec();
        Recorder::<B>::load_item(&NamedMpkBytesRecorder::<S>::default(), &mut payload)
    }
}

impl<S: PrecisionSettings, B: Backend> FileRecorder<B> for RbeRecorder<S> {
    fn file_extension() -> &'static str {
        "rbe"
    }
}

/// The payload of a record file, or why the file is not intact.
fn verified_payload(bytes: &[u8]) -> Result<&[u8], String> {
    if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not an RBE record (bad or missing header)".into());
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
    let payload = &bytes[HEADER..];
    if payload.len() as u64 != len {
        return Err(format!(
            "truncated or extended: header says {len} payload bytes, file has {}",
            payload.len()
        ));
    }
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch: the file was altered".into());
    }
    Ok(payload)
}
