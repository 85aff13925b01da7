//! A small process-global cache of decoded coefficients.
//!
//! Decoding costs a few transcendental functions per seed, which at batch 1 is more than
//! the product itself. The seeds of a layer change only when an optimizer steps, so:
//!
//! - inference reuses one decode for as long as a layer's seeds stay the same;
//! - the backward of a training step finds the decode its forward made.
//!
//! The key is the exact bytes of `(coords, bits)`, compared with `memcmp` (the
//! coefficients depend on nothing else; the layout only reshapes them). A hit is therefore
//! never stale, whoever owns the buffers and however they were changed: seeds edited in
//! place give new bytes and a fresh decode. Entries are kept most recently used first, at
//! most [`CAPACITY`] of them and [`BYTE_BUDGET`] bytes in all; a model with more layers
//! than that decodes each one per call, which is correct, only slower.

use std::sync::{Arc, Mutex, PoisonError};

use super::Coefficients;
use crate::RbeError;

/// Entries kept: enough for every RBE layer of a mid-sized model (a transformer has several
/// per block), since a forward and backward that cycle through more layers than the cache
/// holds would miss on every call. [`BYTE_BUDGET`] bounds the memory.
pub const CAPACITY: usize = 64;
/// Bytes kept in all, keys included; a layer larger than this is never cached.
pub const BYTE_BUDGET: usize = 256 << 20;

struct Entry {
    coords: Vec<u8>,
    bits: Vec<u8>,
    coefficients: Arc<Coefficients>,
}

impl Entry {
    fn bytes(&self) -> usize {
        self.coords.len() + self.bits.len() + self.coefficients.bytes()
    }
}

static CACHE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// Plain 4-byte values without padding or invalid bit patterns.
trait Plain: Copy {}
impl Plain for f32 {}
impl Plain for i32 {}

fn as_bytes<T: Plain>(values: &[T]) -> &[u8] {
    // SAFETY: `T` is f32 or i32: no padding, every byte initialised, and u8 has alignment 1.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast(), std::mem::size_of_val(values)) }
}

/// The coefficients of these seeds, decoded now or found in the cache.
///
/// # Shapes
/// - `coords`: `[n_blocks, 2]`, `bits`: `[n_blocks, 2]`, as for [`Coefficients::decode`].
pub fn coefficients(coords: &[f32], bits: &[i32]) -> Result<Arc<Coefficients>, RbeError> {
    let (key_coords, key_bits) = (as_bytes(coords), as_bytes(bits));
    {
        // A panic elsewhere cannot leave the list inconsistent: every edit is one call.
        let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pos) = cache
            .iter()
            .position(|e| e.coords == key_coords && e.bits == key_bits)
        {
            let entry = cache.remove(pos);
            let found = Arc::clone(&entry.coefficients);
            cache.insert(0, entry);
            return Ok(found);
        }
    }
    // Decode outside the lock: other layers keep hitting meanwhile.
    let coefficients = Arc::new(Coefficients::decode(coords, bits)?);
    let entry = Entry {
        coords: key_coords.to_vec(),
        bits: key_bits.to_vec(),
        coefficients: Arc::clone(&coefficients),
    };
    if entry.bytes() <= BYTE_BUDGET {
        let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        cache.insert(0, entry);
        let mut total = 0;
        let keep = cache
            .iter()
            .take(CAPACITY)
            .take_while(|e| {
                total += e.bytes();
                total <= BYTE_BUDGET
            })
            .count();
        cache.truncate(keep);
    }
    Ok(coefficients)
}
