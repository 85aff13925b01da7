use serde::{Deserialize, Serialize};

use crate::RbeError;
use crate::reference::{
    SeedParams, TRANSITION_THRESHOLD, apply_transition_counts, cordic_weight, transition_counts,
    transition_slot,
};

/// One 128-bit RBE seed: it generates one block of a weight matrix (docs/math.md §1).
///
/// ```text
/// hi  [63:62] poincare_quadrant   [61:50] hyperbolic_freq   [49:38] geodesic_amplitude
///     [37:32] basis_function      [31:0]  cordic_rotations
/// lo  [63:32] r (f32 bits)        [31:0]  theta (f32 bits)
/// ```
///
/// Values built through [`Packed128::from_fields`], the setters, serde or
/// [`Packed128::from_le_bytes`] always hold a finite `r` and `theta`; the public fields allow
/// anything, so [`Packed128::validate`] checks a seed assembled by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "RawPacked128")]
pub struct Packed128 {
    /// The discrete state: bit fields and CORDIC directions.
    pub hi: u64,
    /// The continuous state: `r` in the upper 32 bits, `theta` in the lower 32, as f32 bits.
    pub lo: u64,
}

/// The serde shape of [`Packed128`], validated on the way in.
#[derive(Deserialize)]
struct RawPacked128 {
    hi: u64,
    lo: u64,
}

impl TryFrom<RawPacked128> for Packed128 {
    type Error = RbeError;

    fn try_from(raw: RawPacked128) -> Result<Self, Self::Error> {
        let seed = Packed128 {
            hi: raw.hi,
            lo: raw.lo,
        };
        seed.validate()?;
        Ok(seed)
    }
}

/// Every field of a seed, decoded. Converting back with [`Packed128::from_fields`] checks
/// widths and finiteness.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SeedFields {
    /// 2 bits.
    pub poincare_quadrant: u8,
    /// 12 bits.
    pub hyperbolic_freq: u16,
    /// 12 bits.
    pub geodesic_amplitude: u16,
    /// 6 bits.
    pub basis_function: u8,
    /// 32 CORDIC direction bits; bit `k` is the direction of step `k`.
    pub cordic_rotations: u32,
    /// Radius.
    pub r: f32,
    /// Angle.
    pub theta: f32,
}

/// `(shift, width)` of each bit field of `hi`.
const QUADRANT: (u32, u32) = (62, 2);
const FREQ: (u32, u32) = (50, 12);
const AMPLITUDE: (u32, u32) = (38, 12);
const BASIS: (u32, u32) = (32, 6);
const ROTATIONS: (u32, u32) = (0, 32);

fn get_field(hi: u64, (shift, width): (u32, u32)) -> u64 {
    (hi >> shift) & ((1u64 << width) - 1)
}

fn with_field(
    hi: u64,
    (shift, width): (u32, u32),
    field: &'static str,
    value: u64,
) -> Result<u64, RbeError> {
    let mask = (1u64 << width) - 1;
    if value > mask {
        return Err(RbeError::FieldOverflow {
            field,
            bits: width,
            value,
        });
    }
    Ok((hi & !(mask << shift)) | (value << shift))
}

impl Packed128 {
    /// A seed with the given radius and angle and all bit fields zero.
    pub fn new(r: f32, theta: f32) -> Result<Self, RbeError> {
        let mut seed = Self::default();
        seed.set_r(r)?;
        seed.set_theta(theta)?;
        Ok(seed)
    }

    /// A seed from `hi` and the two floats of `lo`, without checking them: the seed may hold a
    /// non-finite `r` or `theta` (as a diverged training run can), which
    /// [`Packed128::validate`] then reports.
    pub fn from_parts_unchecked(hi: u64, r: f32, theta: f32) -> Self {
        Self {
            hi,
            lo: (u64::from(r.to_bits()) << 32) | u64::from(theta.to_bits()),
        }
    }

    /// Assembles a seed from its fields.
    pub fn from_fields(fields: SeedFields) -> Result<Self, RbeError> {
        let mut seed = Self::new(fields.r, fields.theta)?;
        seed.set_poincare_quadrant(fields.poincare_quadrant)?;
        seed.set_hyperbolic_freq(fields.hyperbolic_freq)?;
        seed.set_geodesic_amplitude(fields.geodesic_amplitude)?;
        seed.set_basis_function(fields.basis_function)?;
        seed.set_cordic_rotations(fields.cordic_rotations);
        Ok(seed)
    }

    /// Decodes every field.
    pub fn fields(&self) -> SeedFields {
        SeedFields {
            poincare_quadrant: self.poincare_quadrant(),
            hyperbolic_freq: self.hyperbolic_freq(),
            geodesic_amplitude: self.geodesic_amplitude(),
            basis_function: self.basis_function(),
            cordic_rotations: self.cordic_rotations(),
            r: self.r(),
            theta: self.theta(),
        }
    }

    /// Checks that `r` and `theta` are finite.
    pub fn validate(&self) -> Result<(), RbeError> {
        if !self.r().is_finite() {
            return Err(RbeError::NonFiniteRadius(self.r()));
        }
        if !self.theta().is_finite() {
            return Err(RbeError::NonFiniteTheta(self.theta()));
        }
        Ok(())
    }

    /// `hi[63:62]`.
    pub fn poincare_quadrant(&self) -> u8 {
        get_field(self.hi, QUADRANT) as u8
    }

    /// `hi[61:50]`.
    pub fn hyperbolic_freq(&self) -> u16 {
        get_field(self.hi, FREQ) as u16
    }

    /// `hi[49:38]`.
    pub fn geodesic_amplitude(&self) -> u16 {
        get_field(self.hi, AMPLITUDE) as u16
    }

    /// `hi[37:32]`.
    pub fn basis_function(&self) -> u8 {
        get_field(self.hi, BASIS) as u8
    }

    /// `hi[31:0]`: bit `k` is the direction of CORDIC step `k` (1 = +1, 0 = -1).
    pub fn cordic_rotations(&self) -> u32 {
        get_field(self.hi, ROTATIONS) as u32
    }

    /// The radius, `lo[63:32]` as f32.
    pub fn r(&self) -> f32 {
        f32::from_bits((self.lo >> 32) as u32)
    }

    /// The angle, `lo[31:0]` as f32.
    pub fn theta(&self) -> f32 {
        f32::from_bits(self.lo as u32)
    }

    /// Sets the 2-bit quadrant.
    pub fn set_poincare_quadrant(&mut self, value: u8) -> Result<(), RbeError> {
        self.hi = with_field(self.hi, QUADRANT, "poincare_quadrant", value.into())?;
        Ok(())
    }

    /// Sets the 12-bit frequency.
    pub fn set_hyperbolic_freq(&mut self, value: u16) -> Result<(), RbeError> {
        self.hi = with_field(self.hi, FREQ, "hyperbolic_freq", value.into())?;
        Ok(())
    }

    /// Sets the 12-bit amplitude.
    pub fn set_geodesic_amplitude(&mut self, value: u16) -> Result<(), RbeError> {
        self.hi = with_field(self.hi, AMPLITUDE, "geodesic_amplitude", value.into())?;
        Ok(())
    }

    /// Sets the 6-bit basis function.
    pub fn set_basis_function(&mut self, value: u8) -> Result<(), RbeError> {
        self.hi = with_field(self.hi, BASIS, "basis_function", value.into())?;
        Ok(())
    }

    /// Sets all 32 CORDIC direction bits.
    pub fn set_cordic_rotations(&mut self, value: u32) {
        self.hi = (self.hi & !0xFFFF_FFFF) | u64::from(value);
    }

    /// Sets the radius; NaN and infinities are rejected and leave the seed unchanged.
    pub fn set_r(&mut self, r: f32) -> Result<(), RbeError> {
        if !r.is_finite() {
            return Err(RbeError::NonFiniteRadius(r));
        }
        self.lo = (self.lo & 0xFFFF_FFFF) | (u64::from(r.to_bits()) << 32);
        Ok(())
    }

    /// Sets the angle; NaN and infinities are rejected and leave the seed unchanged.
    pub fn set_theta(&mut self, theta: f32) -> Result<(), RbeError> {
        if !theta.is_finite() {
            return Err(RbeError::NonFiniteTheta(theta));
        }
        self.lo = (self.lo & !0xFFFF_FFFF) | u64::from(theta.to_bits());
        Ok(())
    }

    /// The 16-byte little-endian form: `hi` then `lo`, each little-endian.
    pub fn to_le_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.hi.to_le_bytes());
        out[8..].copy_from_slice(&self.lo.to_le_bytes());
        out
    }

    /// Reads the 16-byte little-endian form, rejecting a wrong length or a non-finite r/theta.
    pub fn from_le_bytes(bytes: &[u8]) -> Result<Self, RbeError> {
        let bytes: &[u8; 16] = bytes.try_into().map_err(|_| RbeError::ByteLength {
            expected: 16,
            actual: bytes.len(),
        })?;
        let (hi, lo) = bytes.split_at(8);
        let seed = Self {
            hi: u64::from_le_bytes(hi.try_into().expect("split at 8")),
            lo: u64::from_le_bytes(lo.try_into().expect("split at 8")),
        };
        seed.validate()?;
        Ok(seed)
    }

    /// The paper's weight at in-block position `(i, j)` of a `rows x cols` block: the
    /// 20-step CORDIC loop of docs/math.md §2, evaluated by the reference
    /// ([`cordic_weight`]) and rounded to f32.
    ///
    /// A block with one row (or column) uses the coordinate 0 along that axis; so does a
    /// degenerate block of zero rows (or columns), instead of underflowing.
    pub fn compute_weight(&self, i: usize, j: usize, rows: usize, cols: usize) -> f32 {
        cordic_weight(self.into(), i, j, rows, cols) as f32
    }

    /// The paper's state transition for one weight-gradient signal (docs/math.md §5):
    /// the 2-bit counter of slot `(i*31 + j) & 3` in `hi[2*slot+1 : 2*slot]` steps forward
    /// when `gradient_signal > 0.1` and backward when it is `< -0.1`.
    pub fn apply_state_transition(&mut self, gradient_signal: f32, i: usize, j: usize) {
        // The paper compares in f32, so the threshold is rounded as the signal is.
        let threshold = f64::from(TRANSITION_THRESHOLD as f32);
        let mut counts = [0; 4];
        counts[transition_slot(i, j)] =
            transition_counts(1, 1, threshold, |_, _| f64::from(gradient_signal))[0];
        self.hi = apply_transition_counts(self.hi, counts);
    }
}

impl From<Packed128> for SeedParams {
    fn from(seed: Packed128) -> Self {
        Self {
            r: seed.r().into(),
            theta: seed.theta().into(),
            rotations: seed.cordic_rotations(),
        }
    }
}

impl From<&Packed128> for SeedParams {
    fn from(seed: &Packed128) -> Self {
        Self::from(*seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{SeedParams, cordic_weight, sequential_transitions};
    use proptest::prelude::*;

    fn finite() -> impl Strategy<Value = f32> {
        -1.0e6f32..1.0e6
    }

    fn fields() -> impl Strategy<Value = SeedFields> {
        (
            0u8..4,
            0u16..4096,
            0u16..4096,
            0u8..64,
            any::<u32>(),
            finite(),
            finite(),
        )
            .prop_map(|(q, f, a, b, rot, r, theta)| SeedFields {
                poincare_quadrant: q,
                hyperbolic_freq: f,
                geodesic_amplitude: a,
                basis_function: b,
                cordic_rotations: rot,
                r,
                theta,
            })
    }

    proptest! {
        #[test]
        fn fields_round_trip(f in fields()) {
            let seed = Packed128::from_fields(f).unwrap();
            prop_assert_eq!(seed.fields(), f);
            let rebuilt = Packed128 { hi: seed.hi, lo: seed.lo };
            prop_assert_eq!(rebuilt.fields(), f);
        }

        #[test]
        fn fields_sit_at_their_documented_bits(f in fields()) {
            let seed = Packed128::from_fields(f).unwrap();
            prop_assert_eq!(seed.hi >> 62, u64::from(f.poincare_quadrant));
            prop_assert_eq!((seed.hi >> 50) & 0xFFF, u64::from(f.hyperbolic_freq));
            prop_assert_eq!((seed.hi >> 38) & 0xFFF, u64::from(f.geodesic_amplitude));
            prop_assert_eq!((seed.hi >> 32) & 0x3F, u64::from(f.basis_function));
            prop_assert_eq!(seed.hi & 0xFFFF_FFFF, u64::from(f.cordic_rotations));
            prop_assert_eq!((seed.lo >> 32) as u32, f.r.to_bits());
            prop_assert_eq!(seed.lo as u32, f.theta.to_bits());
        }

        #[test]
        fn setters_touch_only_their_field(hi in any::<u64>(), r in finite(), theta in finite(), v in 0u16..4096) {
            let mut seed = Packed128 { hi, lo: Packed128::new(r, theta).unwrap().lo };
            let before = seed.fields();
            seed.set_hyperbolic_freq(v).unwrap();
            prop_assert_eq!(seed.fields(), SeedFields { hyperbolic_freq: v, ..before });
        }

        #[test]
        fn binary_and_serde_round_trip(f in fields()) {
            let seed = Packed128::from_fields(f).unwrap();
            let bytes = seed.to_le_bytes();
            prop_assert_eq!(Packed128::from_le_bytes(&bytes).unwrap(), seed);
            prop_assert_eq!(&bytes[..8], &seed.hi.to_le_bytes()[..]);
            let json = serde_json::to_string(&seed).unwrap();
            prop_assert_eq!(serde_json::from_str::<Packed128>(&json).unwrap(), seed);
        }

        #[test]
        fn f32_weight_tracks_the_f64_reference(
            f in fields(), r in 0.05f32..2.5, theta in -10.0f32..10.0,
            rows in 1usize..40, cols in 1usize..40, i in 0usize..40, j in 0usize..40,
        ) {
            let seed = Packed128::from_fields(SeedFields { r, theta, ..f }).unwrap();
            let (i, j) = (i % rows, j % cols);
            let exact = cordic_weight(SeedParams::from(seed), i, j, rows, cols);
            let got = f64::from(seed.compute_weight(i, j, rows, cols));
            // f32 rounding of the angle dominates: about 1e-6 of the block amplitude (<= 0.33).
            prop_assert!((got - exact).abs() <= 2e-6, "f32 {got} vs f64 {exact}");
        }

        #[test]
        fn paper_transition_matches_reference_loop(
            hi in any::<u64>(), rows in 1usize..12, cols in 1usize..12,
            signals in proptest::collection::vec(-0.3f32..0.3, 144),
        ) {
            let mut seed = Packed128 { hi, lo: 0 };
            for i in 0..rows {
                for j in 0..cols {
                    seed.apply_state_transition(signals[i * 12 + j], i, j);
                }
            }
            let expected = sequential_transitions(hi, rows, cols, 0.1, |i, j| {
                f64::from(signals[i * 12 + j])
            });
            prop_assert_eq!(seed.hi, expected);
            prop_assert_eq!(seed.hi >> 8, hi >> 8, "only bits 0..7 may change");
        }
    }

    #[test]
    fn non_finite_values_are_typed_errors() {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert!(matches!(
                Packed128::new(bad, 0.0),
                Err(RbeError::NonFiniteRadius(_))
            ));
            assert!(matches!(
                Packed128::new(0.5, bad),
                Err(RbeError::NonFiniteTheta(_))
            ));
            let mut seed = Packed128::new(0.5, 0.25).unwrap();
            assert!(seed.set_r(bad).is_err());
            assert!(seed.set_theta(bad).is_err());
            assert_eq!(
                (seed.r(), seed.theta()),
                (0.5, 0.25),
                "rejected set leaves seed"
            );

            let raw = Packed128 {
                hi: 7,
                lo: (u64::from(bad.to_bits()) << 32) | u64::from(0.5f32.to_bits()),
            };
            assert!(raw.validate().is_err());
            assert!(Packed128::from_le_bytes(&raw.to_le_bytes()).is_err());
            let json = format!(r#"{{"hi":7,"lo":{}}}"#, raw.lo);
            assert!(serde_json::from_str::<Packed128>(&json).is_err());
        }
    }

    #[test]
    fn bad_lengths_and_overflowing_fields_are_typed_errors() {
        assert_eq!(
            Packed128::from_le_bytes(&[0u8; 15]),
            Err(RbeError::ByteLength {
                expected: 16,
                actual: 15
            })
        );
        let mut seed = Packed128::default();
        assert!(matches!(
            seed.set_poincare_quadrant(4),
            Err(RbeError::FieldOverflow { bits: 2, .. })
        ));
        assert!(seed.set_hyperbolic_freq(4096).is_err());
        assert!(seed.set_geodesic_amplitude(4096).is_err());
        assert!(seed.set_basis_function(64).is_err());
        assert_eq!(seed, Packed128::default());
    }

    #[test]
    fn one_row_or_column_blocks_use_zero_coordinate() {
        let seed = Packed128::new(0.7, 0.3).unwrap();
        for n in [1, 2, 5] {
            assert!(seed.compute_weight(0, 0, 1, n).is_finite());
            assert!(seed.compute_weight(0, 0, n, 1).is_finite());
        }
        // A 1x1 block sits at the origin: psi = atan2(0, 0) = 0.
        let w = seed.compute_weight(0, 0, 1, 1);
        let expected = cordic_weight(SeedParams::from(seed), 0, 0, 1, 1);
        assert!((f64::from(w) - expected).abs() < 1e-6);
    }

    #[test]
    fn zero_sized_blocks_do_not_underflow() {
        let seed = Packed128::new(0.7, 0.3).unwrap();
        assert_eq!(
            seed.compute_weight(0, 0, 0, 0),
            seed.compute_weight(0, 0, 1, 1)
        );
        assert!(seed.compute_weight(0, 3, 0, 5).is_finite());
    }
}
