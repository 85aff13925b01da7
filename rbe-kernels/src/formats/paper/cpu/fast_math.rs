//! Branch-free f32 `expm1`, `tanh` with `sech²`, and `sin`/`cos` for the seed decode.
//!
//! Each function is plain scalar arithmetic, always inlined: a loop that applies one to every
//! lane of a fixed-size array has no branch and no library call left in its body, so LLVM
//! vectorises it (8 lanes per AVX2 register). Nothing here uses `mul_add`: without FMA
//! hardware it is a library call that would stop the vectoriser, and with plain multiplies
//! and adds every lane rounds exactly as the scalar code does, on every CPU and in every
//! position of a chunk.
//!
//! Accuracy against f64 `std`, as the tests assert it on dense sweeps and random values
//! (worst seen in parentheses):
//! - [`exp_m1`]: 2.5 ulp (1.8) for finite `x`, `+inf` past `ln(f32::MAX)`; subnormal results
//!   in steps of the subnormal spacing.
//! - [`tanh_sech2`]: `tanh` 3.5 ulp (2.9); `sech²` 6 ulp (4.9) down to `1.1e-37`
//!   (`|z| < 43.2`), 0 beyond.
//! - [`sin_cos`]: 2 ulp (1.6) and `2^-23` absolute for `|x| <= 1e6`, the f32 argument taken
//!   as exact; in `[-1, 1]` for every finite `x`.

/// `1.5 · 2^23`: adding it to an f32 of magnitude below `2^22` rounds that value to the
/// nearest integer, which then sits in the low bits of the sum's mantissa. This rounds
/// without a float-to-int conversion (no SSE4.1 `round` needed on baseline x86-64).
const ROUND_F32: f32 = 12_582_912.0;
/// `1.5 · 2^52`, the same trick in f64, for magnitudes below `2^51`.
const ROUND_F64: f64 = 6_755_399_441_055_744.0;

/// `ln 2` in two parts: the high part has 15 significant bits, so `k · LN2_HI` is exact for
/// every `|k| <= 256`, and `x - k · LN2_HI` is exact by Sterbenz's lemma.
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
// 0x1.62e4p-1 (exactly 0.693145751953125) and ln 2 minus it, rounded.
const _: () = assert!(LN2_HI.to_bits() == 0x3f31_7200 && LN2_LO.to_bits() == 0x35bf_be8e);

/// Below this the result of `e^x` is flushed to 0 (and `e^x - 1` is exactly -1 in f32):
/// `2^(k-1)` below stays a normal float for every `k` the reduction yields.
const EXP_MIN: f32 = -86.5;
/// Above this `e^x` overflows anyway; clamping keeps `2^(k-1)` representable.
const EXP_MAX: f32 = 89.0;

/// `e^r - 1` on `|r| <= ln2 / 2`: the Taylor series to degree 7, whose remainder is below
/// `r^8 / 8! <= 1.5e-8 |r|`, a quarter of an f32 ulp.
#[inline(always)]
fn expm1_poly(r: f32) -> f32 {
    const C2: f32 = 1.0 / 2.0;
    const C3: f32 = 1.0 / 6.0;
    const C4: f32 = 1.0 / 24.0;
    const C5: f32 = 1.0 / 120.0;
    const C6: f32 = 1.0 / 720.0;
    const C7: f32 = 1.0 / 5040.0;
    let q = C6 + r * C7;
    let q = C5 + r * q;
    let q = C4 + r * q;
    let q = C3 + r * q;
    let q = C2 + r * q;
    // `r` is added last and exactly: the result keeps the relative accuracy of `r` near 0.
    r + (r * r) * q
}

/// `e^x = 2 · h · (1 + p)` with `h = 2^(k-1)` and `p = e^r - 1`, `x = k ln2 + r`, for `x`
/// clamped to `[EXP_MIN, EXP_MAX]`: `k` is in `[-125, 128]`, so `h` is a normal float.
///
/// Returns `(h, p)`. Keeping `1 + p` unformed lets [`exp_m1`] subtract 1 before the scale
/// (no cancellation for `|x|` small) and [`tanh_sech2`] form `e^x` without `1 + (e^x - 1)`.
#[inline(always)]
fn exp_parts(x: f32) -> (f32, f32) {
    let x = if x < EXP_MIN { EXP_MIN } else { x };
    let x = if x > EXP_MAX { EXP_MAX } else { x };
    let t = x * std::f32::consts::LOG2_E + ROUND_F32;
    let k = t - ROUND_F32;
    // The integer `k` is the difference of the sum's bits from those of the constant.
    let k_int = t.to_bits().wrapping_sub(ROUND_F32.to_bits());
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // 2^(k-1): biased exponent k - 1 + 127, in [1, 254] for k in [-125, 128].
    let half_scale = f32::from_bits(k_int.wrapping_add(126) << 23);
    (half_scale, expm1_poly(r))
}

/// `e^x - 1` from [`exp_parts`]: `2^k p + (2^k - 1)`, halved so that `2^k` itself never has
/// to be representable; the doublings are exact, and `h - 0.5` is exact for every `k` where
/// it is not negligible. At `k = 0` this is `p`, exactly.
#[inline(always)]
fn expm1_of((h, p): (f32, f32)) -> f32 {
    2.0 * (h * p + (h - 0.5))
}

/// `e^x - 1`, accurate near 0 (see the module's accuracy list). The decode uses it only
/// inside [`tanh_sech2`]; on its own it is there for the tests.
#[cfg(test)]
pub(super) fn exp_m1(x: f32) -> f32 {
    expm1_of(exp_parts(x))
}

/// `(tanh z, 1 - tanh² z)` from `e = e^(-2|z|)` and `e - 1 = expm1(-2|z|)` of one reduction:
/// `tanh |z| = -(e - 1) / (1 + e)` and `sech² z = 4 e / (1 + e)²`. Neither forms `1 - t²`,
/// which would cancel catastrophically where `tanh` saturates (and `A'` multiplies five such
/// factors), and `e` itself is scaled from `1 + p`, so `sech²` keeps its relative accuracy
/// until it underflows.
#[inline(always)]
pub(super) fn tanh_sech2(z: f32) -> (f32, f32) {
    let x = -2.0 * z.abs();
    let (h, p) = exp_parts(x);
    let em = expm1_of((h, p));
    let e = if x < EXP_MIN { 0.0 } else { 2.0 * (h * p + h) };
    let inv = 1.0 / (1.0 + e);
    ((-em * inv).copysign(z), 4.0 * e * inv * inv)
}

/// `π/2` in three parts; the first two have 33 significant bits, so `k` times either is
/// exact for `|k| < 2^20`.
const PIO2_1: f64 = 1.570_796_326_734_125_6;
const PIO2_2: f64 = 6.077_100_506_303_966e-11;
const PIO2_3: f64 = 2.022_266_248_795_950_6e-21;
const _: () =
    assert!(PIO2_1.to_bits().trailing_zeros() >= 20 && PIO2_2.to_bits().trailing_zeros() >= 20);

/// The reduced argument never exceeds `π/4` (plus rounding) where the reduction is exact;
/// clamping to this bound keeps the polynomials bounded where it is not (`|x|` past `2^20`).
const REDUCED_MAX: f32 = 0.79;

/// `(sin x, cos x)`.
///
/// The argument is reduced in f64, `x = k π/2 + r`, `|r| <= π/4`: `x` is exact in f64 and,
/// for `|x| < 2^20 π/2`, `x - k·PIO2_1` is exact, so `r` is accurate to f64 precision
/// relative to itself even where `x` is close to a multiple of `π/2`. `sin r` and `cos r`
/// are Taylor polynomials in f32 (remainders below `2.5e-9` on `|r| <= π/4`), and the
/// quadrant `k mod 4` swaps and negates them.
#[inline(always)]
pub(super) fn sin_cos(x: f32) -> (f32, f32) {
    const S3: f32 = -1.0 / 6.0;
    const S5: f32 = 1.0 / 120.0;
    const S7: f32 = -1.0 / 5040.0;
    const S9: f32 = 1.0 / 362_880.0;
    const C4: f32 = 1.0 / 24.0;
    const C6: f32 = -1.0 / 720.0;
    const C8: f32 = 1.0 / 40_320.0;
    const C10: f32 = -1.0 / 3_628_800.0;

    let xd = f64::from(x);
    let t = xd * std::f64::consts::FRAC_2_PI + ROUND_F64;
    let k = t - ROUND_F64;
    // k mod 4 (two's complement, as the constant's bits are a multiple of 4); past 2^51 the
    // sum no longer holds k, and the result is merely bounded.
    let quadrant = t.to_bits() as u32;
    let r = ((xd - k * PIO2_1) - k * PIO2_2) - k * PIO2_3;
    let r = r as f32;
    let r = if r < -REDUCED_MAX { -REDUCED_MAX } else { r };
    let r = if r > REDUCED_MAX { REDUCED_MAX } else { r };

    let r2 = r * r;
    let s = S7 + r2 * S9;
    let s = S5 + r2 * s;
    let s = S3 + r2 * s;
    let sin_r = r + (r * r2) * s;
    let c = C8 + r2 * C10;
    let c = C6 + r2 * c;
    let c = C4 + r2 * c;
    let cos_r = (1.0 - 0.5 * r2) + (r2 * r2) * c;

    // Quadrant q: sin x = (s, c, -s, -c)[q], cos x = (c, -s, -c, s)[q].
    let odd = quadrant & 1 == 1;
    let (sin, cos) = if odd { (cos_r, sin_r) } else { (sin_r, cos_r) };
    let sin_sign = (quadrant & 2) << 30;
    let cos_sign = (quadrant.wrapping_add(1) & 2) << 30;
    (
        f32::from_bits(sin.to_bits() ^ sin_sign),
        f32::from_bits(cos.to_bits() ^ cos_sign),
    )
}
