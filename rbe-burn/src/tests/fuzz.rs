//! Fuzzing of everything that decodes saved bytes, on the stable toolchain: random
//! truncations, bit flips, inserted and deleted bytes, and edits next to shape fields, fed to
//! `load_checked` under every file recorder (RbeRecorder, NamedMpk full and half, Bin,
//! PrettyJson) and to `Packed128`'s byte and serde forms.
//!
//! The number of cases per target comes from `RBE_FUZZ_CASES` (default 150, a few seconds);
//! `scripts/fuzz.sh` runs a long campaign. A case passes when it loads an identical model, or
//! fails with an error; a panic escaping, an abort or a hang fails the run. With
//! [`RbeRecorder`]'s checksum, "identical" is exact for every parameter; Burn's own formats
//! have no checksum, so a flipped byte inside a residual or bias value loads as another
//! value there, while the seeds, which must stay exact, are checked bit for bit in every case.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::record::{
    BinFileRecorder, FileRecorder, FullPrecisionSettings, HalfPrecisionSettings,
    NamedMpkFileRecorder, PrettyJsonFileRecorder,
};
use rand::Rng;
use rbe_kernels::Packed128;

use super::*;
use crate::{RbeLinear, RbeLinearConfig, RbeRecorder, load_checked};

type B = Flex;

fn cases() -> usize {
    std::env::var("RBE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150)
}

fn config() -> RbeLinearConfig {
    RbeLinearConfig::new(12, 10)
        .with_block_size(4)
        .with_residual_rank(2)
}

/// One random damage to `bytes`.
fn mutate(rng: &mut StdRng, bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let at = |rng: &mut StdRng, len: usize| rng.random_range(0..len.max(1));
    match rng.random_range(0..6) {
        0 => out.truncate(at(rng, bytes.len())),
        1 => {
            let i = at(rng, out.len());
            if let Some(b) = out.get_mut(i) {
                *b ^= 1 << rng.random_range(0..8);
            }
        }
        2 => {
            let i = at(rng, out.len() + 1).min(out.len());
            out.insert(i, rng.random());
        }
        3 => {
            if !out.is_empty() {
                let i = at(rng, out.len());
                out.remove(i);
            }
        }
        4 => {
            // Several bytes at once: a burst.
            for _ in 0..rng.random_range(2..16) {
                let i = at(rng, out.len());
                if let Some(b) = out.get_mut(i) {
                    *b = rng.random();
                }
            }
        }
        _ => {
            // Right after a `shape` key (or anywhere when there is none): edits dimensions
            // and ranks in the MessagePack and JSON forms.
            let key = b"shape";
            let hits: Vec<usize> = out
                .windows(key.len())
                .enumerate()
                .filter(|(_, w)| w == key)
                .map(|(i, _)| i + key.len())
                .collect();
            let base = if hits.is_empty() {
                at(rng, out.len())
            } else {
                hits[rng.random_range(0..hits.len())]
            };
            let i = (base + rng.random_range(0..6)).min(out.len().saturating_sub(1));
            if let Some(b) = out.get_mut(i) {
                *b = [0x00, 0x01, 0x7f, 0x90, 0x93, 0xcc, 0xcf, 0xff][rng.random_range(0..8)];
            }
        }
    }
    out
}

/// The seeds and the outputs on a fixed input.
fn fingerprint(model: &RbeLinear<B>) -> (Vec<Packed128>, Vec<f64>) {
    let x = tensor::<B, 2>(
        &(0..24)
            .map(|i| f64::from(i) / 7.0 - 1.0)
            .collect::<Vec<_>>(),
        [2, 12],
        &Default::default(),
    );
    (model.seeds_packed().unwrap(), to_vec(model.forward(x)))
}

/// Saves one model with `recorder`, then loads `cases()` damaged copies of the file.
fn fuzz_recorder<R: FileRecorder<B>>(recorder: R, name: &str, checksummed: bool, seed: u64) {
    let device = Default::default();
    let dir = std::env::temp_dir().join(format!("rbe-fuzz-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = config().init::<B>(&device);
    let (seeds, outputs) = fingerprint(&model);
    let original: PathBuf = dir.join(format!("model.{}", R::file_extension()));
    model.save_file(dir.join("model"), &recorder).unwrap();
    let bytes = std::fs::read(&original).unwrap();
    let damaged = dir.join(format!("damaged.{}", R::file_extension()));
    let mut rng = rng(seed);
    let (mut loaded, mut refused) = (0, 0);
    for case in 0..cases() {
        let bad = mutate(&mut rng, &bytes);
        std::fs::write(&damaged, &bad).unwrap();
        match load_checked(config().init::<B>(&device), &damaged, &recorder, &device) {
            Err(_) => refused += 1,
            Ok(m) => {
                loaded += 1;
                let (s, y) = fingerprint(&m);
                assert_eq!(s, seeds, "{name} case {case}: seeds altered");
                if checksummed || bad == bytes {
                    assert_eq!(y, outputs, "{name} case {case}: model altered");
                }
            }
        }
    }
    eprintln!("{name}: {loaded} loaded, {refused} refused");
    assert!(refused > 0, "{name}: no damaged file was refused");
    remove(&dir);
}

fn remove(dir: &Path) {
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn rbe_recorder_records() {
    fuzz_recorder(RbeRecorder::<FullPrecisionSettings>::new(), "rbe", true, 1);
}

#[test]
fn named_mpk_records() {
    fuzz_recorder(
        NamedMpkFileRecorder::<FullPrecisionSettings>::new(),
        "mpk",
        false,
        2,
    );
}

#[test]
fn named_mpk_half_records() {
    fuzz_recorder(
        NamedMpkFileRecorder::<HalfPrecisionSettings>::new(),
        "mpk-half",
        false,
        3,
    );
}

#[test]
fn bin_records() {
    fuzz_recorder(
        BinFileRecorder::<FullPrecisionSettings>::new(),
        "bin",
        false,
        4,
    );
}

#[test]
fn pretty_json_records() {
    fuzz_recorder(
        PrettyJsonFileRecorder::<FullPrecisionSettings>::new(),
        "json",
        false,
        6,
    );
}

#[test]
fn packed128_bytes_and_serde() {
    let mut rng = rng(5);
    let seed = Packed128::from_parts_unchecked(rng.random(), 0.75, -1.5);
    let bytes = seed.to_le_bytes();
    let json = serde_json::to_vec(&seed).unwrap();
    for _ in 0..cases() * 20 {
        let bad = mutate(&mut rng, &bytes);
        if let Ok(s) = Packed128::from_le_bytes(&bad) {
            s.validate().unwrap();
            assert_eq!(s.to_le_bytes().as_slice(), bad.as_slice());
        }
        let bad = mutate(&mut rng, &json);
        if let Ok(s) = serde_json::from_slice::<Packed128>(&bad) {
            s.validate().unwrap();
        }
    }
}

/// Loads the file named by `RBE_FUZZ_REPLAY` (a `damaged.*` left behind by a crashed
/// campaign) with the recorder its extension names; does nothing without the variable.
#[test]
fn replay() {
    let Ok(path) = std::env::var("RBE_FUZZ_REPLAY") else {
        return;
    };
    let path = PathBuf::from(path);
    let device = Default::default();
    let model = config().init::<B>(&device);
    let result = match path.extension().and_then(|e| e.to_str()) {
        Some("bin") => load_checked(
            model,
            &path,
            &BinFileRecorder::<FullPrecisionSettings>::new(),
            &device,
        )
        .map(drop),
        Some("json") => load_checked(
            model,
            &path,
            &PrettyJsonFileRecorder::<FullPrecisionSettings>::new(),
            &device,
        )
        .map(drop),
        Some("mpk") => load_checked(
            model,
            &path,
            &NamedMpkFileRecorder::<FullPrecisionSettings>::new(),
            &device,
        )
        .map(drop),
        _ => load_checked(
            model,
            &path,
            &RbeRecorder::<FullPrecisionSettings>::new(),
            &device,
        )
        .map(drop),
    };
    eprintln!("replay {}: {result:?}", path.display());
}
