//! The rate at which this process reads host memory: the physical bound of a batch-1
//! generation step on the CPU, which must read every stored weight once per token.

use std::hint::black_box;
use std::time::Instant;

use super::schema::StreamRate;

/// 256 MiB: far beyond any CPU cache, as the weights of a large model are.
const BUFFER_BYTES: usize = 256 << 20;

/// Passes over the buffer; the best one is kept.
const PASSES: usize = 5;

/// Sums a large buffer on every core, several times, and returns the best rate.
pub fn host_read_rate() -> StreamRate {
    let words = BUFFER_BYTES / size_of::<u64>();
    // Distinct non-zero values, so no page is the shared zero page.
    let buffer: Vec<u64> = (0..words as u64).map(|i| i | 1).collect();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = words.div_ceil(threads);
    let mut best = 0.0f64;
    for _ in 0..PASSES {
        let start = Instant::now();
        let total: u64 = std::thread::scope(|scope| {
            let handles: Vec<_> = buffer
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        // Four independent sums keep the adds from serialising on one
                        // register, so the loop waits on memory only.
                        let mut sums = [0u64; 4];
                        for quad in part.chunks_exact(4) {
                            for (s, &v) in sums.iter_mut().zip(quad) {
                                *s = s.wrapping_add(v);
                            }
                        }
                        sums.iter().fold(0u64, |a, &b| a.wrapping_add(b))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a summing thread panicked"))
                .fold(0u64, u64::wrapping_add)
        });
        let seconds = start.elapsed().as_secs_f64();
        black_box(total);
        best = best.max(BUFFER_BYTES as f64 / seconds);
    }
    StreamRate {
        bytes_per_second: best,
        buffer_bytes: BUFFER_BYTES as u64,
    }
}
