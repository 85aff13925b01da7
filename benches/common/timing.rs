//! Timing one call at a time under criterion.
//!
//! Criterion decides how many calls to make, but in `--quick` mode it keeps only two
//! aggregate samples, too few for a median. Every call is therefore timed on its own, with
//! the device synchronised before and after it, and the median is taken over those calls.

use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode};

use super::grid::Effort;

/// Per-call statistics of one case, in nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub median_ns: f64,
    pub p10_ns: f64,
    pub p90_ns: f64,
    pub samples: usize,
}

impl Stats {
    /// `None` for an empty set (the case was filtered out on the command line).
    pub fn from_samples(mut ns: Vec<f64>) -> Option<Self> {
        if ns.is_empty() {
            return None;
        }
        ns.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let pos = q * (ns.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            ns[lo] + (ns[hi] - ns[lo]) * (pos - lo as f64)
        };
        Some(Self {
            median_ns: at(0.5),
            p10_ns: at(0.1),
            p90_ns: at(0.9),
            samples: ns.len(),
        })
    }

    /// The times divided by `n`: one call that ran `n` layers, reported per layer.
    pub fn per(self, n: usize) -> Self {
        let n = n.max(1) as f64;
        Self {
            median_ns: self.median_ns / n,
            p10_ns: self.p10_ns / n,
            p90_ns: self.p90_ns / n,
            samples: self.samples,
        }
    }
}

/// A criterion group with the sampling this project can afford on 2 cores: flat sampling
/// (every sample the same number of calls) keeps slow cases from running 55x their time.
pub fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
    effort: &Effort,
) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(effort.sample_size)
        .measurement_time(effort.measurement)
        .warm_up_time(Duration::from_millis(500));
    group
}

/// Registers case `id` in `group` and returns its per-call statistics.
///
/// `call(i)` runs call number `i` (use it to rotate inputs); its result is dropped only
/// after the device has finished, outside the timed region. `sync` waits for the device.
pub fn measure<O>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    effort: &Effort,
    sync: impl Fn(),
    mut call: impl FnMut(usize) -> O,
) -> Option<Stats> {
    let mut samples = Vec::new();
    let mut next = 0usize;
    let mut warmed = false;
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            // Warm up lazily, so cases skipped by a criterion filter cost nothing.
            if !warmed {
                for _ in 0..effort.warmup_calls {
                    let out = call(next);
                    next += 1;
                    sync();
                    drop(out);
                }
                warmed = true;
            }
            // Criterion's `--quick` clock includes the warm-up above, so a slow case can be
            // left with one call; the first batch is topped up to `min_calls`, and the
            // total is scaled back so criterion's own per-call mean is unaffected.
            let calls = if samples.is_empty() {
                iters.max(effort.min_calls as u64)
            } else {
                iters
            };
            let mut total = Duration::ZERO;
            for _ in 0..calls {
                sync();
                let start = Instant::now();
                let out = call(next);
                sync();
                let elapsed = start.elapsed();
                drop(out);
                next += 1;
                total += elapsed;
                samples.push(elapsed.as_nanos() as f64);
            }
            total.mul_f64(iters as f64 / calls.max(1) as f64)
        })
    });
    Stats::from_samples(samples)
}

/// `1.2 ms`-style durations for progress lines.
pub fn human(ns: f64) -> String {
    match ns {
        n if n >= 1e9 => format!("{:.2} s", n / 1e9),
        n if n >= 1e6 => format!("{:.2} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.1} us", n / 1e3),
        n => format!("{n:.0} ns"),
    }
}
