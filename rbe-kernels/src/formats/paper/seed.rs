//! The fields of a paper-format seed on [`Packed128`] (docs/math.md §1).
//!
//! ```text
//! hi  [63:32] reserved: stored and round-tripped, read by no formula
//!     [31:0]  cordic_rotations (bits 0..7 double as the four 2-bit transition states)
//! lo  [63:32] r (f32 bits)        [31:0]  theta (f32 bits)
//! ```
//!
//! The specification names sub-fields of `hi[63:32]`; no formula of the paper reads them,
//! so they are kept as one opaque word.

use serde::{Deserialize, Serialize};

use super::reference::{
    SeedParams, TRANSITION_THRESHOLD, apply_transition_counts, cordic_weight, transition_counts,
    transition_slot,
};
use crate::{KernelError, Packed128};

/// Every field of a paper seed, decoded. Converting back with [`Packed128::from_fields`]
/// checks finiteness.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SeedFields {
    /// `hi[63:32]`, read by no formula.
    pub reserved: u32,
    /// 32 CORDIC direction bits; bit `k` is the direction of step `k`.
    pub cordic_rotations: u32,
    /// Radius.
    pub r: f32,
    /// Angle.
    pub theta: f32,
}

impl Packed128 {
    /// A paper seed with the given radius and angle and all bits zero.
    pub fn new(r: f32, theta: f32) -> Result<Self, KernelError> {
        let mut seed = Self::default();
        seed.set_r(r)?;
        seed.set_theta(theta)?;
        Ok(seed)
    }

    /// Assembles a paper seed from its fields.
    pub fn from_fields(fields: SeedFields) -> Result<Self, KernelError> {
        let mut seed = Self::new(fields.r, fields.theta)?;
        seed.hi = (u64::from(fields.reserved) << 32) | u64::from(fields.cordic_rotations);
        Ok(seed)
    }

    /// Decodes every paper field.
    pub fn fields(&self) -> SeedFields {
        SeedFields {
            reserved: (self.hi >> 32) as u32,
            cordic_rotations: self.cordic_rotations(),
            r: self.r(),
            theta: self.theta(),
        }
    }

    /// `hi[31:0]`: bit `k` is the direction of CORDIC step `k` (1 = +1, 0 = -1).
    pub fn cordic_rotations(&self) -> u32 {
        self.hi as u32
    }

    /// The radius, `lo[63:32]` as f32.
    pub fn r(&self) -> f32 {
        self.floats()[0]
    }

    /// The angle, `lo[31:0]` as f32.
    pub fn theta(&self) -> f32 {
        self.floats()[1]
    }

    /// Sets all 32 CORDIC direction bits.
    pub fn set_cordic_rotations(&mut self, value: u32) {
        self.hi = (self.hi & !0xFFFF_FFFF) | u64::from(value);
    }

    /// Sets the radius; NaN and infinities are rejected and leave the seed unchanged.
    pub fn set_r(&mut self, r: f32) -> Result<(), KernelError> {
        if !r.is_finite() {
            return Err(KernelError::NonFiniteRadius(r));
        }
        self.lo = (self.lo & 0xFFFF_FFFF) | (u64::from(r.to_bits()) << 32);
        Ok(())
    }

    /// Sets the angle; NaN and infinities are rejected and leave the seed unchanged.
    pub fn set_theta(&mut self, theta: f32) -> Result<(), KernelError> {
        if !theta.is_finite() {
            return Err(KernelError::NonFiniteTheta(theta));
        }
        self.lo = (self.lo & !0xFFFF_FFFF) | u64::from(theta.to_bits());
        Ok(())
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
    use crate::formats::paper::reference::sequential_transitions;
    use proptest::prelude::*;

    fn finite() -> impl Strategy<Value = f32> {
        -1.0e6f32..1.0e6
    }

    fn fields() -> impl Strategy<Value = SeedFields> {
        (any::<u32>(), any::<u32>(), finite(), finite()).prop_map(|(reserved, rot, r, theta)| {
            SeedFields {
                reserved,
                cordic_rotations: rot,
                r,
                theta,
            }
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
            prop_assert_eq!(seed.hi >> 32, u64::from(f.reserved));
            prop_assert_eq!(seed.hi & 0xFFFF_FFFF, u64::from(f.cordic_rotations));
            prop_assert_eq!((seed.lo >> 32) as u32, f.r.to_bits());
            prop_assert_eq!(seed.lo as u32, f.theta.to_bits());
        }

        #[test]
        fn setters_touch_only_their_field(hi in any::<u64>(), r in finite(), theta in finite(), v in any::<u32>()) {
            let mut seed = Packed128 { hi, lo: Packed128::new(r, theta).unwrap().lo };
            let before = seed.fields();
            seed.set_cordic_rotations(v);
            prop_assert_eq!(seed.fields(), SeedFields { cordic_rotations: v, ..before });
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
                Err(KernelError::NonFiniteRadius(_))
            ));
            assert!(matches!(
                Packed128::new(0.5, bad),
                Err(KernelError::NonFiniteTheta(_))
            ));
            let mut seed = Packed128::new(0.5, 0.25).unwrap();
            assert!(seed.set_r(bad).is_err());
            assert!(seed.set_theta(bad).is_err());
            assert_eq!(
                (seed.r(), seed.theta()),
                (0.5, 0.25),
                "rejected set leaves seed"
            );
        }
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
