//! MNIST through burn-dataset's `MnistDataset`, from local files when there are any.
//!
//! `MnistDataset` reads the gunzipped IDX files from `<cache>/burn-dataset/mnist/{train,test}/`
//! (`<cache>` is `dirs::cache_dir()`, usually `~/.cache`) and downloads a file only when it is
//! absent there. [`prepare`] fills that folder from the four canonical `.gz` files in a local
//! directory first (`--data-dir`, `$RBE_MNIST_DIR` or `../shared/data/mnist` beside the
//! repository), checking each file's content, so local files take precedence and nothing is
//! downloaded when they are complete. Files already in the cache are checked in full too
//! (size, header and SHA-256): a damaged one is replaced from the local files, or reported,
//! never used. Only when some file is neither there nor in the cache
//! does [`Mnist::load`] take burn-dataset's own download route (`MnistDataset::train()` /
//! `test()`, from the CVDF mirror), bounded by [`DOWNLOAD_TIMEOUT_ENV`] seconds; if that fails
//! (offline, say) the error names the local options.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once, mpsc};
use std::time::{Duration, SystemTime};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::transform::PartialDataset;
use burn::data::dataset::vision::{MnistDataset, MnistItem};
use burn::prelude::*;
use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

/// Environment variable naming the directory with the four MNIST `.gz` files.
pub const DATA_DIR_ENV: &str = "RBE_MNIST_DIR";

/// Environment variable: seconds the download route may take before the run gives up
/// (default [`DEFAULT_DOWNLOAD_TIMEOUT_S`]).
pub const DOWNLOAD_TIMEOUT_ENV: &str = "RBE_MNIST_DOWNLOAD_TIMEOUT_S";

/// The download route's time limit when [`DOWNLOAD_TIMEOUT_ENV`] is unset: the four files
/// are 11 MB compressed.
pub const DEFAULT_DOWNLOAD_TIMEOUT_S: u64 = 300;

/// Where `MnistDataset` downloads from (burn-dataset 0.21's CVDF mirror), for messages.
const DOWNLOAD_URL: &str = "https://storage.googleapis.com/cvdf-datasets/mnist/";

/// The name of the thread that runs the download, so its panic is reported, not printed.
const DOWNLOAD_THREAD: &str = "mnist-download";

/// Pixels per image (28 x 28).
pub const IMAGE_PIXELS: usize = 28 * 28;
/// Training images in MNIST.
pub const TRAIN_LEN: usize = 60_000;
/// Test images in MNIST.
pub const TEST_LEN: usize = 10_000;

// The usual MNIST normalisation: mean and standard deviation of the training pixels in [0, 1].
const PIXEL_MEAN: f32 = 0.1307;
const PIXEL_STD: f32 = 0.3081;

/// One of the four canonical IDX files.
pub struct IdxFile {
    /// The file name, without `.gz`.
    pub name: &'static str,
    /// `train` or `test`: the cache sub-folder.
    pub split: &'static str,
    /// The IDX magic number: 2051 for images, 2049 for labels.
    pub magic: u32,
    /// Images or labels in the file.
    pub items: u32,
    /// Size of the uncompressed file.
    pub len: u64,
    /// SHA-256 of the uncompressed file, so a re-compressed copy is accepted too.
    pub sha256: &'static str,
}

/// The four files, train images and labels, then test images and labels.
pub const FILES: [IdxFile; 4] = [
    IdxFile {
        name: "train-images-idx3-ubyte",
        split: "train",
        magic: 2051,
        items: TRAIN_LEN as u32,
        len: 16 + (TRAIN_LEN * IMAGE_PIXELS) as u64,
        sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    },
    IdxFile {
        name: "train-labels-idx1-ubyte",
        split: "train",
        magic: 2049,
        items: TRAIN_LEN as u32,
        len: 8 + TRAIN_LEN as u64,
        sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    IdxFile {
        name: "t10k-images-idx3-ubyte",
        split: "test",
        magic: 2051,
        items: TEST_LEN as u32,
        len: 16 + (TEST_LEN * IMAGE_PIXELS) as u64,
        sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    },
    IdxFile {
        name: "t10k-labels-idx1-ubyte",
        split: "test",
        magic: 2049,
        items: TEST_LEN as u32,
        len: 8 + TEST_LEN as u64,
        sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
];

/// Why the data could not be made ready.
#[derive(Debug)]
pub enum DataError {
    /// No usable copy of some files: neither in the cache nor in the data directory.
    Missing {
        /// The directory searched, if any.
        searched: Option<PathBuf>,
        /// Why that directory was chosen (flag, environment or default).
        origin: &'static str,
        /// The missing file names (without `.gz`).
        files: Vec<&'static str>,
        /// The cache folder `MnistDataset` reads.
        cache: PathBuf,
        /// Why burn-dataset's download did not provide them; `None` if it was not tried.
        download: Option<String>,
    },
    /// A file exists but is not the canonical one.
    Corrupt {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing failed.
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The platform has no cache directory (`dirs::cache_dir()` is `None`).
    NoCacheDir,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing {
                searched,
                origin,
                files,
                cache,
                download,
            } => {
                match download {
                    Some(_) => writeln!(
                        f,
                        "MNIST data not found locally, and burn-dataset's download failed."
                    )?,
                    None => writeln!(f, "MNIST data not found.")?,
                }
                match searched {
                    Some(dir) => writeln!(f, "  looked in {} ({origin})", dir.display())?,
                    None => writeln!(
                        f,
                        "  no data directory: no --data-dir, ${DATA_DIR_ENV} unset, and {} \
                         does not exist",
                        default_dir().display()
                    )?,
                }
                writeln!(
                    f,
                    "  and in burn-dataset's cache {}/{{train,test}}",
                    cache.display()
                )?;
                writeln!(f, "  missing: {}", files.join(".gz, ") + ".gz")?;
                if let Some(reason) = download {
                    writeln!(f, "  download from {DOWNLOAD_URL}: {reason}")?;
                }
                write!(
                    f,
                    "  to run without a download, put the four canonical MNIST files \
                     (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, \
                     t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in a directory and \
                     pass --data-dir DIR or set {DATA_DIR_ENV}=DIR, or put them in {}, or put \
                     them gunzipped in {} and {}",
                    default_dir().display(),
                    cache.join("train").display(),
                    cache.join("test").display()
                )
            }
            Self::Corrupt { path, reason } => {
                write!(
                    f,
                    "{} is not the canonical MNIST file: {reason} (remove it, or replace it \
                     with the canonical file, e.g. with --data-dir DIR)",
                    path.display()
                )
            }
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::NoCacheDir => write!(
                f,
                "this platform has no cache directory for burn-dataset (set XDG_CACHE_HOME)"
            ),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The directory the data is taken from, and why.
#[derive(Debug, Clone)]
pub struct DataDir {
    /// The directory; `None` when nothing was given and the default does not exist.
    pub path: Option<PathBuf>,
    /// `"--data-dir"`, `"$RBE_MNIST_DIR"` or `"default"`.
    pub origin: &'static str,
}

impl DataDir {
    /// `flag`, else `$RBE_MNIST_DIR`, else `../shared/data/mnist` next to this repository
    /// when that exists.
    pub fn resolve(flag: Option<PathBuf>) -> Self {
        if let Some(path) = flag {
            return Self {
                path: Some(path),
                origin: "--data-dir",
            };
        }
        if let Some(path) = std::env::var_os(DATA_DIR_ENV).filter(|p| !p.is_empty()) {
            return Self {
                path: Some(PathBuf::from(path)),
                origin: "$RBE_MNIST_DIR",
            };
        }
        let default = default_dir();
        Self {
            path: default.is_dir().then_some(default),
            origin: "default",
        }
    }
}

/// `../shared/data/mnist` beside this repository (this crate sits one folder below its root).
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mnist")
}

/// The folder `MnistDataset` reads (and would download into).
pub fn cache_dir() -> Result<PathBuf, DataError> {
    // The same call burn-dataset 0.21 makes, so both sides agree on the location.
    Ok(dirs::cache_dir()
        .ok_or(DataError::NoCacheDir)?
        .join("burn-dataset")
        .join("mnist"))
}

/// Makes sure the four gunzipped files `MnistDataset` reads are in its cache folder, copying
/// them from `dir` where they are absent or wrong. Returns the cache folder.
pub fn prepare(dir: &DataDir) -> Result<PathBuf, DataError> {
    let cache = cache_dir()?;
    prepare_in(dir, &cache)?;
    Ok(cache)
}

/// [`prepare`] with the cache folder given: every cached file is checked in full (size, IDX
/// header and SHA-256 of the content, see [`check_cached`]). A file that is absent or fails
/// is installed from `dir` when `dir` has a verified copy; a damaged cached file without one
/// is an error ([`DataError::Corrupt`]), never used.
pub fn prepare_in(dir: &DataDir, cache: &Path) -> Result<(), DataError> {
    let mut missing = Vec::new();
    for file in &FILES {
        let dest = cache.join(file.split).join(file.name);
        let cached = match check_cached(&dest, file) {
            Ok(()) => continue,
            Err(err) => err,
        };
        match dir.path.as_deref().and_then(|d| find_source(d, file)) {
            Some(source) => {
                install(&source, &dest, file)?;
                if let DataError::Corrupt { reason, .. } = &cached {
                    eprintln!(
                        "MNIST: the cached {} was damaged ({reason}); replaced it with the \
                         verified {}",
                        dest.display(),
                        source.display()
                    );
                }
            }
            // A damaged cached file with nothing to replace it is worth naming as such.
            None if matches!(cached, DataError::Corrupt { .. }) => return Err(cached),
            None => missing.push(file.name),
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(DataError::Missing {
            searched: dir.path.clone(),
            origin: dir.origin,
            files: missing,
            cache: cache.to_path_buf(),
            download: None,
        })
    }
}

/// `<name>.gz`, else the gunzipped `<name>`, in `dir`.
fn find_source(dir: &Path, file: &IdxFile) -> Option<PathBuf> {
    [format!("{}.gz", file.name), file.name.to_string()]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
}

/// Files this process has verified in full: path, length and modification time. A file is
/// hashed again when any of them changes.
static VERIFIED: Mutex<Vec<(PathBuf, u64, SystemTime)>> = Mutex::new(Vec::new());

/// Full check of a cached file: size and IDX header first (cheap, and they name the usual
/// damage), then the SHA-256 of the whole content, so a file of the right size and header
/// with altered images or labels is rejected too.
///
/// Hashing all four files (55 MB) takes a fraction of a second, in a debug build too (a
/// whole debug-build `--eval-only` run, hashing included, took 0.96 s here); a file verified
/// once is not hashed again by the same process while its length and modification time stay
/// the same.
pub fn check_cached(path: &Path, file: &IdxFile) -> Result<(), DataError> {
    let corrupt = |reason: String| DataError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let meta = fs::metadata(path).map_err(io_error(path))?;
    let len = meta.len();
    if len != file.len {
        return Err(corrupt(format!("{len} bytes, expected {}", file.len)));
    }
    let stamp = meta
        .modified()
        .ok()
        .map(|modified| (path.to_path_buf(), len, modified));
    let verified = || VERIFIED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(stamp) = &stamp
        && verified().contains(stamp)
    {
        return Ok(());
    }
    let mut reader = fs::File::open(path).map_err(io_error(path))?;
    let mut header = [0u8; 8];
    reader.read_exact(&mut header).map_err(io_error(path))?;
    check_header_bytes(&header, file).map_err(corrupt)?;
    let mut hasher = Sha256::new();
    hasher.update(header);
    io::copy(&mut reader, &mut hasher).map_err(io_error(path))?;
    let digest = hex(&hasher.finalize());
    if digest != file.sha256 {
        return Err(corrupt(format!(
            "right size and header, but the SHA-256 of the content is {digest}, expected {}",
            file.sha256
        )));
    }
    if let Some(stamp) = stamp {
        verified().push(stamp);
    }
    Ok(())
}

fn check_header_bytes(header: &[u8], file: &IdxFile) -> Result<(), String> {
    let word = |i: usize| {
        header
            .get(i..i + 4)
            .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
    };
    if word(0) != Some(file.magic) || word(4) != Some(file.items) {
        return Err(format!(
            "IDX header is not magic {} with {} items",
            file.magic, file.items
        ));
    }
    Ok(())
}

/// Gunzips (if needed) and verifies `source`, then moves it into place atomically, so runs
/// that prepare the data concurrently never see a half-written file.
fn install(source: &Path, dest: &Path, file: &IdxFile) -> Result<(), DataError> {
    let raw = fs::read(source).map_err(io_error(source))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(file.len as usize);
        GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|err| DataError::Corrupt {
                path: source.to_path_buf(),
                reason: format!("gunzip failed: {err}"),
            })?;
        out
    } else {
        raw
    };
    check_content(&bytes, file).map_err(|reason| DataError::Corrupt {
        path: source.to_path_buf(),
        reason,
    })?;

    let folder = dest.parent().expect("cache paths have a parent");
    fs::create_dir_all(folder).map_err(io_error(folder))?;
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tmp = folder.join(format!(
        ".{}.{}.{unique}.tmp",
        file.name,
        std::process::id()
    ));
    fs::write(&tmp, &bytes).map_err(io_error(&tmp))?;
    fs::rename(&tmp, dest).map_err(|source| {
        let _ = fs::remove_file(&tmp);
        DataError::Io {
            path: dest.to_path_buf(),
            source,
        }
    })
}

/// Full check of an uncompressed file: size, IDX header and SHA-256.
fn check_content(bytes: &[u8], file: &IdxFile) -> Result<(), String> {
    if bytes.len() as u64 != file.len {
        return Err(format!(
            "{} bytes uncompressed, expected {}",
            bytes.len(),
            file.len
        ));
    }
    check_header_bytes(bytes, file)?;
    let digest = hex(&Sha256::digest(bytes));
    if digest != file.sha256 {
        return Err(format!(
            "SHA-256 of the content is {digest}, expected {}",
            file.sha256
        ));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The download route's time limit: [`DOWNLOAD_TIMEOUT_ENV`] seconds, else
/// [`DEFAULT_DOWNLOAD_TIMEOUT_S`].
fn download_timeout() -> Duration {
    let secs = std::env::var(DOWNLOAD_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(DEFAULT_DOWNLOAD_TIMEOUT_S);
    Duration::from_secs(secs)
}

/// Loads both splits with `MnistDataset::train()` and `test()`, which download whatever file
/// is absent from the cache.
///
/// burn-dataset panics when the download fails (its HTTP client unwraps), and its client has
/// no time limit, so the call runs on its own thread: a panic comes back as the error, and
/// after `timeout` the run stops waiting (the thread is left behind; the examples exit right
/// after an error).
pub fn download(timeout: Duration) -> Result<(MnistDataset, MnistDataset), String> {
    quiet_download_panics();
    let (send, receive) = mpsc::channel();
    std::thread::Builder::new()
        .name(DOWNLOAD_THREAD.into())
        .spawn(move || {
            let loaded = std::panic::catch_unwind(|| (MnistDataset::train(), MnistDataset::test()))
                .map_err(|panic| panic_message(panic.as_ref()));
            // The receiver is gone only after a time-out.
            let _ = send.send(loaded);
        })
        .map_err(|err| format!("could not start the download thread: {err}"))?;
    match receive.recv_timeout(timeout) {
        Ok(loaded) => loaded,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "no result after {} s (set {DOWNLOAD_TIMEOUT_ENV} to wait longer)",
            timeout.as_secs()
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err("the download thread ended without a result".into())
        }
    }
}

/// The text of a panic payload, shortened: burn-dataset's panics carry the HTTP error.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "it panicked".into());
    const MAX: usize = 600;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// Keeps the default panic hook from printing the download thread's panic: [`download`]
/// reports it as an error instead. Other threads' panics print as before.
fn quiet_download_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() != Some(DOWNLOAD_THREAD) {
                previous(info);
            }
        }));
    });
}

/// Checks every file `MnistDataset` downloaded in full (size, header and SHA-256); a wrong
/// one is removed so the next run downloads it again.
fn verify_download(cache: &Path) -> Result<(), String> {
    for file in &FILES {
        let path = cache.join(file.split).join(file.name);
        let bytes = fs::read(&path).map_err(|err| format!("{}: {err}", path.display()))?;
        if let Err(reason) = check_content(&bytes, file) {
            let _ = fs::remove_file(&path);
            return Err(format!(
                "{} is not the canonical MNIST file ({reason}); removed it",
                path.display()
            ));
        }
    }
    Ok(())
}

/// A contiguous range of one MNIST split.
pub type MnistSlice = PartialDataset<Arc<MnistDataset>, MnistItem>;

/// Both splits, loaded once and sliced without copying.
pub struct Mnist {
    train: Arc<MnistDataset>,
    test: Arc<MnistDataset>,
}

impl Mnist {
    /// Prepares the cache from `dir` (see [`prepare`]) and loads both splits. When some file
    /// is neither in `dir` nor in the cache, takes burn-dataset's download route instead
    /// (see [`download`]).
    pub fn load(dir: &DataDir) -> Result<Self, DataError> {
        let (train, test) = match prepare(dir) {
            // The files are in place and verified, so `MnistDataset` takes its no-download
            // path.
            Ok(_) => (MnistDataset::train(), MnistDataset::test()),
            Err(DataError::Missing {
                searched,
                origin,
                files,
                cache,
                download: _,
            }) => {
                eprintln!(
                    "MNIST: no local copy of {}.gz; downloading with burn-dataset's \
                     MnistDataset into {} (--data-dir DIR or ${DATA_DIR_ENV} use local files \
                     instead)",
                    files.join(".gz, "),
                    cache.display()
                );
                let downloaded = download(download_timeout())
                    .and_then(|datasets| verify_download(&cache).map(|()| datasets));
                match downloaded {
                    Ok(datasets) => datasets,
                    Err(reason) => {
                        return Err(DataError::Missing {
                            searched,
                            origin,
                            files,
                            cache,
                            download: Some(reason),
                        });
                    }
                }
            }
            Err(err) => return Err(err),
        };
        Ok(Self {
            train: Arc::new(train),
            test: Arc::new(test),
        })
    }

    /// Training images `start..end`.
    pub fn train(&self, start: usize, end: usize) -> MnistSlice {
        PartialDataset::new(self.train.clone(), start, end.min(TRAIN_LEN))
    }

    /// Test images `start..end`.
    pub fn test(&self, start: usize, end: usize) -> MnistSlice {
        PartialDataset::new(self.test.clone(), start, end.min(TEST_LEN))
    }
}

/// A batch of flattened, normalised images and their labels.
#[derive(Clone, Debug)]
pub struct MnistBatch<B: Backend> {
    /// `[batch, 784]`.
    pub images: Tensor<B, 2>,
    /// `[batch]`, the digit of each image.
    pub targets: Tensor<B, 1, Int>,
}

/// Turns [`MnistItem`]s into an [`MnistBatch`].
#[derive(Clone, Debug, Default)]
pub struct MnistBatcher;

impl<B: Backend> Batcher<B, MnistItem, MnistBatch<B>> for MnistBatcher {
    fn batch(&self, items: Vec<MnistItem>, device: &B::Device) -> MnistBatch<B> {
        let n = items.len();
        let pixels: Vec<f32> = items
            .iter()
            .flat_map(|item| item.image.iter().flatten())
            .map(|&p| (p / 255.0 - PIXEL_MEAN) / PIXEL_STD)
            .collect();
        let labels: Vec<i32> = items.iter().map(|item| i32::from(item.label)).collect();
        MnistBatch {
            images: Tensor::from_data(TensorData::new(pixels, [n, IMAGE_PIXELS]), device),
            targets: Tensor::from_data(TensorData::new(labels, [n]), device),
        }
    }
}
