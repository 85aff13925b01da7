//! Collecting records and writing `benches/results/<bench>-<backend>-<machine>.json`.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use super::bound;
use super::grid::{self, Effort};
use super::machine;
use super::schema::{BackendInfo, MemoryRecord, Record, RunFile, SCHEMA_VERSION};
use super::timing::{Stats, human};

/// Overrides the output folder (default `benches/results` of this package).
pub const OUT_ENV: &str = "RBE_BENCH_OUT";

/// What identifies a case, besides its timing.
#[derive(Debug, Clone)]
pub struct Case {
    pub variant: String,
    pub d_input: usize,
    pub d_output: usize,
    /// Rows per call; 0 where there is no input.
    pub batch: usize,
    pub block: Option<usize>,
}

impl Case {
    /// The record key and criterion id: `784x10/batch64/b8/rbe-closed-form`; batch 0
    /// (no input, as in weight generation) is left out.
    pub fn key(&self) -> String {
        let batch = match self.batch {
            0 => String::new(),
            b => format!("/batch{b}"),
        };
        let block = self.block.map_or(String::new(), |b| format!("/b{b}"));
        format!(
            "{}x{}{batch}{block}/{}",
            self.d_input, self.d_output, self.variant
        )
    }
}

/// The records of one bench on one backend, written when done.
pub struct Results {
    file: RunFile,
    git_rev: String,
    quick: bool,
}

impl Results {
    pub fn new(bench: &str, backend: BackendInfo, effort: &Effort) -> Self {
        Self {
            file: RunFile {
                schema: SCHEMA_VERSION,
                bench: bench.into(),
                machine: machine::detect(),
                backend,
                records: Vec::new(),
            },
            git_rev: machine::git_rev(),
            quick: effort.quick,
        }
    }

    /// Adds a measured case and prints a progress line. `dense` is the same run's baseline.
    pub fn push(
        &mut self,
        case: &Case,
        stats: Stats,
        dense: Option<Stats>,
        memory: Option<MemoryRecord>,
    ) -> &mut Record {
        let speedup = dense.map(|d| d.median_ns / stats.median_ns);
        let mut line = format!(
            "[{}] {}: median {} ({} calls)",
            self.file.backend.name,
            case.key(),
            human(stats.median_ns),
            stats.samples
        );
        if let Some(s) = speedup {
            line.push_str(&format!(", {s:.2}x vs dense"));
        }
        if let Some(load) = machine::load_average() {
            line.push_str(&format!(", load {load:.1}"));
        }
        if let Some(m) = &memory {
            line.push_str(&format!(
                ", forward peak <= {:.2} MiB (dense weight {:.1} MiB)",
                m.forward_peak_bytes as f64 / MIB,
                m.dense_weight_bytes as f64 / MIB
            ));
        }
        eprintln!("{line}");
        self.file.records.push(Record {
            case: case.key(),
            variant: case.variant.clone(),
            d_input: case.d_input,
            d_output: case.d_output,
            batch: case.batch,
            block: case.block,
            median_ns: stats.median_ns,
            p10_ns: stats.p10_ns,
            p90_ns: stats.p90_ns,
            samples: stats.samples,
            dense_median_ns: dense.map(|d| d.median_ns),
            speedup_vs_dense: speedup,
            weights_per_second: None,
            memory,
            git_rev: self.git_rev.clone(),
            unix_time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            quick: self.quick,
            load_1m: machine::load_average(),
            macs: None,
            compute_bound: None,
            model: None,
            transitions: None,
            training_memory: None,
            devices: None,
            ddp: None,
        });
        self.file.records.last_mut().expect("just pushed")
    }

    /// Sets every RBE record's compute bound from the best dense rate of this run (see
    /// [`bound`]) and prints it with each bound; returns the rate and its dense case.
    pub fn apply_compute_bound(&mut self) -> Option<(f64, String)> {
        let name = self.file.backend.name.clone();
        let Some((rate, case)) = bound::apply(&mut self.file.records) else {
            eprintln!("[{name}] no dense case measured: no compute bound");
            return None;
        };
        eprintln!(
            "[{name}] compute bound from the best dense rate of this run: {:.2} G multiply-adds/s ({case})",
            rate / 1e9
        );
        for r in &self.file.records {
            if let Some(b) = &r.compute_bound {
                eprintln!(
                    "[{name}] {}: bound {}, median {}, {:.2}x its bound",
                    r.case,
                    human(b.bound_ns),
                    human(r.median_ns),
                    b.ratio
                );
            }
        }
        Some((rate, case))
    }

    /// Merges into the existing file (same cases replaced, others kept) and writes it.
    pub fn write(self) {
        if grid::test_mode() {
            eprintln!("test mode (no `--bench`): results not written");
            return;
        }
        if self.file.records.is_empty() {
            eprintln!(
                "[{}] nothing measured, nothing written",
                self.file.backend.name
            );
            return;
        }
        let dir = std::env::var_os(OUT_ENV).map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/results"),
            PathBuf::from,
        );
        std::fs::create_dir_all(&dir).expect("create the results folder");
        let path = dir.join(format!(
            "{}-{}-{}.json",
            self.file.bench, self.file.backend.name, self.file.machine.label
        ));
        let mut file = self.file;
        let old = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str::<RunFile>(&text).ok())
            .filter(|old| old.schema == SCHEMA_VERSION);
        if let Some(old) = old {
            let kept: Vec<Record> = old
                .records
                .into_iter()
                .filter(|r| !file.records.iter().any(|n| n.case == r.case))
                .collect();
            file.records.splice(0..0, kept);
        }
        file.records.sort_by_key(order_key);
        let text = serde_json::to_string_pretty(&file).expect("serialise results");
        std::fs::write(&path, text + "\n").expect("write results");
        eprintln!("wrote {}", path.display());
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// Sorts by shape, batch, block, then variant, so diffs between runs stay readable.
fn order_key(r: &Record) -> (usize, usize, usize, usize, Option<usize>, String) {
    (
        r.d_input * r.d_output,
        r.d_input,
        r.d_output,
        r.batch,
        r.block.map(|b| usize::MAX - b),
        r.variant.clone(),
    )
}
