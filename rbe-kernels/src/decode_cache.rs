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
/// one with 2. The key is the exact bytes of the seeds and where their coords end, compared
/// on every call: a hit is never stale, whoever changed the seeds and however. The
/// comparison reads 16 bytes per seed, a small fraction of what decoding them costs.
#[derive(Clone, Default)]
pub struct DecodeCache {
    entry: Arc<Mutex<Option<Entry>>>,
}

struct Entry {
    /// The bytes of `coords` then `bits`.
    key: Vec<u8>,
    /// Where `bits` starts in `key`: seeds that differ only in where the split falls (a
    /// layer whose format changed its tensors' widths) have the same bytes.
    split: usize,
    value: Arc<dyn Any + Send + Sync>,
}

impl fmt::Debug for DecodeCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self
            .entry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(0, |e| e.key.len());
        f.debug_struct("DecodeCache")
            .field("key_bytes", &bytes)
            .finish()
    }
}

/// Plain 4-byte values without padding or invalid bit patterns.
trait Plain: Copy {}
impl Plain for f32 {}
impl Plain for i32 {}

fn as_bytes<T: Plain>(values: &[T]) -> &[u8] {
    // SAFETY: `T` is f32 or i32: no padding, every byte initialised, and u8 has alignment 1.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast(), std::mem::size_of_val(values)) }
}

impl DecodeCache {
    /// The decoded form of the seeds `(coords, bits)`: the cached one when these are the
    /// seeds it was decoded from, else `decode()`, which then replaces the entry.
    ///
    /// A cached value of another type than `T` (a layer whose format changed) is decoded
    /// anew as well.
    pub fn get_or_decode<T, E>(
        &self,
        coords: &[f32],
        bits: &[i32],
        decode: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E>
    where
        T: Any + Send + Sync,
    {
        let (coords, bits) = (as_bytes(coords), as_bytes(bits));
        let matches = |entry: &Entry| {
            entry.split == coords.len()
                && entry.key.len() == coords.len() + bits.len()
                && &entry.key[..coords.len()] == coords
                && &entry.key[coords.len()..] == bits
        };
        {
            // Every edit is one assignment: a panic elsewhere cannot leave it inconsistent.
            let entry = self.entry.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = entry.as_ref()
                && matches(entry)
                && let Ok(found) = Arc::clone(&entry.value).downcast::<T>()
            {
                return Ok(found);
            }
        }
        let value = Arc::new(decode()?);
        let mut key = Vec::with_capacity(coords.len() + bits.len());
        key.extend_from_slice(coords);
        key.extend_from_slice(bits);
        *self.entry.lock().unwrap_or_else(PoisonError::into_inner) = Some(Entry {
            key,
            split: coords.len(),
            value: Arc::clone(&value) as Arc<dyn Any + Send + Sync>,
        });
        Ok(value)
    }

    /// Drops the entry.
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
        // The boundary between coords and bits is part of the key.
        assert_eq!(
            get(&[1.0], &[2.0f32.to_bits() as i32, 3, 4]),
            1.0 + 2.0f32.to_bits() as f32
        );
        assert_eq!(calls.get(), 5);
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
