//! The stored and device forms of a ternary seed, the f16 scale, and the layout rules
//! (docs/math.md §10).

use half::f16;

use crate::{BlockLayout, KernelError, Packed128};

/// The most cells a ternary block may hold: 64 trits fill 102 of the seed's 128 bits.
pub const TERNARY_CELLS: usize = 64;

/// i32 words per seed on the device: 2 bits per cell, 16 cells per word.
pub const TERNARY_BIT_WORDS: usize = TERNARY_CELLS / CELLS_PER_WORD;

/// Cells per device word.
const CELLS_PER_WORD: usize = 16;

/// Bits of the base-3 integer: `3^64 < 2^102`.
const CODE_BITS: u32 = 102;

/// Where the f16 `alpha` starts in the 128-bit seed.
const ALPHA_SHIFT: u32 = CODE_BITS;

/// Where the reserved (zero) bits start: `[127:118]`.
const RESERVED_SHIFT: u32 = ALPHA_SHIFT + 16;

/// `3^64`, the first base-3 integer a seed cannot hold.
pub const THREE_POW_64: u128 = 3u128.pow(64);

/// `3^40`, below `2^64`: the base-3 integer splits at it into two parts that u64 arithmetic
/// converts, instead of 64 u128 divisions.
const THREE_POW_40: u128 = 3u128.pow(40);

/// The name in messages.
const NAME: &str = "ternary";

/// The smallest positive normal f16, `2^-14`: the floor of a trained `alpha`.
pub const ALPHA_MIN: f32 = 6.103_515_6e-5;

/// The largest finite f16: the ceiling of `alpha`.
pub const ALPHA_MAX: f32 = 65504.0;

/// A ternary seed in the reference's form: a level per cell and the scale, weight of cell
/// `k` = `alpha * levels[k]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TernaryParams {
    /// `-1`, `0` or `+1` per cell, cell `(i, j)` at `i * block_cols + j`; cells beyond the
    /// block are 0.
    pub levels: [i8; TERNARY_CELLS],
    /// The scale, exactly the stored f16 value.
    pub alpha: f64,
}

impl TernaryParams {
    /// The weight of cell `k`: `alpha * t_k`.
    pub fn weight(&self, k: usize) -> f64 {
        self.alpha * f64::from(self.levels[k])
    }

    /// The level of cell `k` as f64.
    pub fn level(&self, k: usize) -> f64 {
        f64::from(self.levels[k])
    }

    /// The stored seed. `alpha` is rounded to the nearest f16 (ties to even).
    ///
    /// # Errors
    /// A level outside `{-1, 0, 1}`, or an `alpha` that is negative, not finite or above the
    /// f16 range.
    pub fn to_seed(&self) -> Result<Packed128, KernelError> {
        let mut codes = [0u8; TERNARY_CELLS];
        for (code, &t) in codes.iter_mut().zip(&self.levels) {
            *code = match t {
                0 => 0,
                1 => 1,
                -1 => 2,
                _ => {
                    return Err(KernelError::CodeOutOfRange {
                        format: NAME,
                        what: "a level outside {-1, 0, 1}",
                    });
                }
            };
        }
        pack(&codes, self.alpha as f32)
    }
}

impl TryFrom<&Packed128> for TernaryParams {
    type Error = KernelError;

    fn try_from(seed: &Packed128) -> Result<Self, KernelError> {
        let (codes, alpha) = unpack(seed)?;
        let mut levels = [0i8; TERNARY_CELLS];
        for (t, &c) in levels.iter_mut().zip(&codes) {
            *t = level_of(c);
        }
        Ok(Self {
            levels,
            alpha: alpha.into(),
        })
    }
}

impl TryFrom<Packed128> for TernaryParams {
    type Error = KernelError;

    fn try_from(seed: Packed128) -> Result<Self, KernelError> {
        Self::try_from(&seed)
    }
}

/// The level a 2-bit code names: `00` 0, `01` +1, `10` -1 (`11` is rejected before this).
pub(crate) fn level_of(code: u8) -> i8 {
    match code {
        1 => 1,
        2 => -1,
        _ => 0,
    }
}

/// The seed as one u128, `(hi << 64) | lo`.
fn as_u128(seed: &Packed128) -> u128 {
    (u128::from(seed.hi) << 64) | u128::from(seed.lo)
}

fn from_u128(v: u128) -> Packed128 {
    Packed128 {
        hi: (v >> 64) as u64,
        lo: v as u64,
    }
}

/// `alpha` as the f16 the seed stores, after the checks every form shares.
fn alpha_bits(alpha: f32) -> Result<u16, KernelError> {
    let half = f16::from_f32(alpha);
    if !half.is_finite() || half.is_sign_negative() {
        return Err(KernelError::InvalidScale(alpha));
    }
    Ok(half.to_bits())
}

/// The stored seed of 64 cell codes (`0` for 0, `1` for +1, `2` for -1; the base-3 digit
/// of cell `k` is its code, cell 0 least significant) and a scale rounded to f16.
///
/// # Errors
/// A code above 2, or an `alpha` that is negative, non-finite or beyond the f16 range.
pub fn pack(codes: &[u8; TERNARY_CELLS], alpha: f32) -> Result<Packed128, KernelError> {
    let alpha = alpha_bits(alpha)?;
    // Two base-3 halves in u64 (cells 40..64 and 0..40), joined by one u128 product.
    let digits = |cells: std::ops::Range<usize>| -> Result<u64, KernelError> {
        cells.rev().try_fold(0u64, |acc, k| {
            let c = codes[k];
            if c > 2 {
                return Err(KernelError::CodeOutOfRange {
                    format: NAME,
                    what: "a cell code above 2",
                });
            }
            Ok(acc * 3 + u64::from(c))
        })
    };
    let value = u128::from(digits(40..TERNARY_CELLS)?) * THREE_POW_40 + u128::from(digits(0..40)?);
    Ok(from_u128(value | (u128::from(alpha) << ALPHA_SHIFT)))
}

/// The 64 cell codes and the f32 value of the stored f16 `alpha` of a seed.
///
/// # Errors
/// Reserved bits set ([`KernelError::ReservedBits`]), a base-3 integer at or above `3^64`
/// ([`KernelError::CodeOutOfRange`]), or an `alpha` that is negative or not finite
/// ([`KernelError::InvalidScale`]).
pub fn unpack(seed: &Packed128) -> Result<([u8; TERNARY_CELLS], f32), KernelError> {
    let v = as_u128(seed);
    let reserved = v >> RESERVED_SHIFT;
    if reserved != 0 {
        return Err(KernelError::ReservedBits {
            format: NAME,
            bits: reserved as u16,
        });
    }
    let value = v & ((1u128 << CODE_BITS) - 1);
    if value >= THREE_POW_64 {
        return Err(KernelError::CodeOutOfRange {
            format: NAME,
            what: "the base-3 integer of the levels (at least 3^64)",
        });
    }
    let alpha = f16::from_bits((v >> ALPHA_SHIFT) as u16);
    if !alpha.is_finite() || alpha.is_sign_negative() {
        return Err(KernelError::InvalidScale(alpha.to_f32()));
    }
    let mut codes = [0u8; TERNARY_CELLS];
    let (mut high, mut low) = ((value / THREE_POW_40) as u64, (value % THREE_POW_40) as u64);
    for code in codes.iter_mut().take(40) {
        *code = (low % 3) as u8;
        low /= 3;
    }
    for code in codes.iter_mut().skip(40) {
        *code = (high % 3) as u8;
        high /= 3;
    }
    Ok((codes, alpha.to_f32()))
}

/// Checks a stored ternary seed (see [`unpack`]).
pub fn validate(seed: &Packed128) -> Result<(), KernelError> {
    unpack(seed).map(|_| ())
}

/// The device form of a seed: `coords = (alpha, 0)` and four i32 words of 2-bit codes,
/// cell `k` at bits `2 (k % 16)` of word `k / 16`.
///
/// # Errors
/// As [`unpack`].
pub fn to_device(seed: &Packed128) -> Result<([f32; 2], [i32; TERNARY_BIT_WORDS]), KernelError> {
    let (codes, alpha) = unpack(seed)?;
    Ok(([alpha, 0.0], codes_to_words(&codes)))
}

/// The stored seed of one block's device rows: `alpha = coords[0]` rounded to f16
/// (`coords[1]` is unused), codes from `words` (i32 bit patterns, possibly widened to i64).
///
/// # Errors
/// A code `11` ([`KernelError::InvalidCode`], reported for seed `seed`), or an `alpha`
/// that is negative, not finite or beyond the f16 range.
pub fn from_device(seed: usize, coords: [f32; 2], words: &[i64]) -> Result<Packed128, KernelError> {
    KernelError::check_len("ternary bit words", words.len(), TERNARY_BIT_WORDS)?;
    let codes = words_to_codes(seed, words)?;
    pack(&codes, coords[0])
}

/// The device words of 64 codes.
pub fn codes_to_words(codes: &[u8; TERNARY_CELLS]) -> [i32; TERNARY_BIT_WORDS] {
    let mut words = [0i32; TERNARY_BIT_WORDS];
    for (k, &c) in codes.iter().enumerate() {
        words[k / CELLS_PER_WORD] |= (i32::from(c) & 3) << (2 * (k % CELLS_PER_WORD));
    }
    words
}

/// The codes of one seed's device words (i32 bit patterns, possibly widened).
///
/// # Errors
/// [`KernelError::InvalidCode`] for a code `11`.
pub fn words_to_codes(seed: usize, words: &[i64]) -> Result<[u8; TERNARY_CELLS], KernelError> {
    let mut codes = [0u8; TERNARY_CELLS];
    for (k, code) in codes.iter_mut().enumerate() {
        let word = words[k / CELLS_PER_WORD] as u32;
        let c = (word >> (2 * (k % CELLS_PER_WORD))) & 3;
        if c == 3 {
            return Err(KernelError::InvalidCode { seed, cell: k });
        }
        *code = c as u8;
    }
    Ok(codes)
}

/// `x` rounded to the nearest f16 value (ties to even) and clamped into
/// `[ALPHA_MIN, ALPHA_MAX]`: the constraint a trained `alpha` lives under, so that what is
/// trained is exactly what is stored.
pub fn round_alpha(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    f16::from_f32(x.clamp(ALPHA_MIN, ALPHA_MAX)).to_f32()
}

/// `Ok` when the layout's blocks fit the 64 trits; [`KernelError::TooLarge`] otherwise.
pub fn check_block(layout: &BlockLayout) -> Result<(), KernelError> {
    let cells = layout.block_rows * layout.block_cols;
    if cells > TERNARY_CELLS {
        return Err(KernelError::TooLarge {
            what: "ternary block_rows * block_cols",
            value: cells,
            max: TERNARY_CELLS,
        });
    }
    Ok(())
}

/// Checks stored seeds against a layout and returns them in f64.
pub(super) fn check_seeds<S: Copy + TryInto<TernaryParams, Error = KernelError>>(
    seeds: &[S],
    layout: &BlockLayout,
) -> Result<Vec<TernaryParams>, KernelError> {
    check_block(layout)?;
    KernelError::check_len("seeds", seeds.len(), layout.num_blocks())?;
    seeds.iter().map(|&s| s.try_into()).collect()
}

impl TryFrom<&TernaryParams> for TernaryParams {
    type Error = KernelError;

    fn try_from(p: &TernaryParams) -> Result<Self, KernelError> {
        if !p.alpha.is_finite() {
            return Err(KernelError::InvalidScale(p.alpha as f32));
        }
        if let Some(k) = p.levels.iter().position(|t| !(-1..=1).contains(t)) {
            return Err(KernelError::InvalidCode { seed: 0, cell: k });
        }
        Ok(*p)
    }
}
