//! [`DecodeCache`]: the decoded form of one layer's seeds, owned by that layer.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// One decoded form of one layer's seeds (e.g. the paper format's per-seed coefficients),
/// kept so that inference decodes once and a training step's backward reuses what its
/// forward decoded.
///
/// Each layer owns one (clones share it); it holds at most one entry, so its memory is
/// bounded by one decode of that layer, and a model with 200 layers is as fast per layer as
/// one with 2.
///
/// # A cache belongs to one set of seed values
/// Whoever changes the seeds gives them a fresh cache: `RbeSeeds` does on every update,
/// load and change of settings, and every other value it hands out (clones, the validation
/// module) holds the same seeds. The cache therefore does not compare the seeds byte for
/// byte on a hit: for a 4096x4096 layer in 32x32 blocks that comparison took as long as the
/// rest of a batch-1 forward (measured on Flex: 102 us per call with it, 56 us without). It
/// checks the lengths and [`SAMPLES`] words spread over the seeds, which catches a cache
/// handed to other seeds by mistake in most cases, and in debug builds it keeps the whole
/// key and panics when sampled seeds match but the seeds differ. Never keep a cache across
/// an edit of the seeds in place.
#[derive(Clone, Default)]
pub struct DecodeCache {
    entry: Arc<Mutex<Option<Entry>>>,
}

/// Words of the seeds compared on every lookup (spread evenly over `coords` and `bits`);
/// seeds of at most this many words are compared whole.
pub const SAMPLES: usize = 16;

/// What identifies the seeds an entry was decoded from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    coords_len: usize,
    bits_len: usize,
    sample: Vec<u32>,
    /// Every word, in debug builds only: the check of the contract above.
    #[cfg(debug_assertions)]
    whole: Vec<u32>,
}

impl Key {
    fn of(coords: &[f32], bits: &[i32]) -> Self {
        let words = |i: usize| {
            if i < coords.len() {
                coords[i].to_bits()
            } else {
                bits[i - coords.len()] as u32
            }
        };
        let n = coords.len() + bits.len();
        let sample = if n <= SAMPLES {
            (0..n).map(words).collect()
        } else {
            // The first and last words and evenly spaced ones between.
            (0..SAMPLES)
                .map(|k| words(k * (n - 1) / (SAMPLES - 1)))
                .collect()
        };
        Self {
            coords_len: coords.len(),
            bits_len: bits.len(),
            sample,
            #[cfg(debug_assertions)]
            whole: (0..n).map(words).collect(),
        }
    }

    /// Whether the sampled words match (and, in debug builds, asserts that the whole seeds
    /// do then too).
    fn matches(&self, other: &Key) -> bool {
        let sampled = self.coords_len == other.coords_len
            && self.bits_len == other.bits_len
            && self.sample == other.sample;
        #[cfg(debug_assertions)]
        assert!(
            !sampled || self.whole == other.whole,
            "a DecodeCache was reused for other seeds: give every set of seed values its own \
             cache (RbeSeeds does)"
        );
        sampled
    }
}

struct Entry {
    key: Key,
    value: Arc<dyn Any + Send + Sync>,
}

impl fmt::Debug for DecodeCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seeds = self
            .entry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(0, |e| e.key.coords_len / 2);
        f.debug_struct("DecodeCache")
            .field("decoded_seeds", &seeds)
            .finish()
    }
}

impl DecodeCache {
    /// The decoded form of the seeds `(coords, bits)` this cache belongs to: the cached one,
    /// else `decode()`, which then fills the entry. A cached value of another type than `T`
    /// (a layer whose format changed), or of seeds whose lengths or sampled words differ, is
    /// decoded anew.
    ///
    /// # Panics
    /// In debug builds, when the cache holds other seeds whose sampled words match these
    /// (see the type's contract).
    pub fn get_or_decode<T, E>(
        &self,
        coords: &[f32],
        bits: &[i32],
        decode: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E>
    where
        T: Any + Send + Sync,
    {
        let key = Key::of(coords, bits);
        {
            // Every edit is one assignment: a panic elsewhere cannot leave it inconsistent.
            let entry = self.entry.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = entry.as_ref()
                && entry.key.matches(&key)
                && let Ok(found) = Arc::clone(&entry.value).downcast::<T>()
            {
                return Ok(found);
            }
        }
        let value = Arc::new(decode()?);
        *self.entry.lock().unwrap_or_else(PoisonError::into_inner) = Some(Entry {
            key,
            value: Arc::clone(&value) as Arc<dyn Any + Send + Sync>,
        });
        Ok(value)
    }

    /// Drops the entry: what to call after editing the seeds in place.
    pub fn clear(&self) {
        *self.entry.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::DecodeCache;

    #[test]
    fn decodes_once_per_seed_bytes_and_keeps_one_entry() {
        let cache = DecodeCache::default();
        let calls = std::cell::Cell::new(0);
        let get = |coords: &[f32], bits: &[i32]| {
            *cache
                .get_or_decode(coords, bits, || {
                    calls.set(calls.get() + 1);
                    Ok::<_, ()>(coords[0] + bits[0] as f32)
                })
                .unwrap()
        };
        assert_eq!(get(&[1.0, 2.0], &[3, 4]), 4.0);
        assert_eq!(get(&[1.0, 2.0], &[3, 4]), 4.0);
        assert_eq!(calls.get(), 1, "same seeds: one decode");
        // Any changed byte decodes again, in the coords or in the bits.
        assert_eq!(get(&[1.5, 2.0], &[3, 4]), 4.5);
        assert_eq!(get(&[1.5, 2.0], &[3, 5]), 4.5);
        assert_eq!(get(&[1.0, 2.0], &[3, 4]), 4.0);
        assert_eq!(calls.get(), 4, "one entry: the earlier seeds were evicted");
        // Small seeds are compared whole, the boundary between coords and bits included.
        assert_eq!(
            get(&[1.0], &[2.0f32.to_bits() as i32, 3, 4]),
            1.0 + 2.0f32.to_bits() as f32
        );
        assert_eq!(calls.get(), 5);
    }

    #[test]
    fn large_seeds_are_told_apart_by_their_sampled_words() {
        let cache = DecodeCache::default();
        let coords: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let bits: Vec<i32> = (0..1000).collect();
        let get = |coords: &[f32], bits: &[i32]| {
            *cache
                .get_or_decode(coords, bits, || {
                    Ok::<_, ()>(coords[0] + *bits.last().unwrap() as f32)
                })
                .unwrap()
        };
        assert_eq!(get(&coords, &bits), 999.0);
        // Another layer's seeds (here: every word changed) miss, also in release builds.
        let other: Vec<f32> = coords.iter().map(|c| c + 1.0).collect();
        assert_eq!(get(&other, &bits), 1000.0);
        // A shorter set of seeds misses.
        assert_eq!(get(&coords[..998], &bits[..999]), 998.0);
        assert_eq!(get(&coords, &bits), 999.0);
    }

    /// The contract is checked in debug builds: seeds edited in place behind a cache that
    /// saw them before panic where the sampled words cannot see the edit.
    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "a DecodeCache was reused for other seeds")]
    fn an_edit_in_place_behind_the_cache_is_caught_in_debug_builds() {
        let cache = DecodeCache::default();
        let mut coords: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let bits: Vec<i32> = (0..1000).collect();
        cache
            .get_or_decode(&coords, &bits, || Ok::<_, ()>(0))
            .unwrap();
        // Word 500 lies between two sampled words (0, 133, ..., 1999).
        coords[500] += 0.5;
        let _ = cache.get_or_decode(&coords, &bits, || Ok::<_, ()>(1));
    }

    #[test]
    fn clones_share_the_entry() {
        let cache = DecodeCache::default();
        let clone = cache.clone();
        cache
            .get_or_decode(&[1.0], &[1], || Ok::<_, ()>(7u32))
            .unwrap();
        let hit = clone
            .get_or_decode(&[1.0], &[1], || Err::<u32, _>("decoded again"))
            .unwrap();
        assert_eq!(*hit, 7);
    }
}
