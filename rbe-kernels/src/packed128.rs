use serde::{Deserialize, Serialize};

use crate::KernelError;

/// One 128-bit seed: it generates one block of a weight matrix. What its bits mean is the
/// seed format's ([`crate::formats`]). The paper's and the sign blueprint's keep two f32 in
/// `lo`, the layout the methods here read:
///
/// ```text
/// hi  [63:0]  format-specific bits (CORDIC directions and states, or one sign per cell)
/// lo  [63:32] first float (f32 bits)   [31:0] second float (f32 bits)
/// ```
///
/// The ternary seed uses all 128 bits otherwise (`formats::ternary`); its checks are
/// [`crate::formats::ternary::validate`], not [`Packed128::validate`], and its records are
/// read through the format (serde and [`Packed128::from_le_bytes`] here check the two-float
/// layout). Values built through those constructors hold finite floats; the public fields
/// allow anything, so [`Packed128::validate`] checks a seed assembled by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "RawPacked128")]
pub struct Packed128 {
    /// The discrete state.
    pub hi: u64,
    /// The continuous state: two f32, the first in the upper 32 bits.
    pub lo: u64,
}

/// The serde shape of [`Packed128`], validated on the way in.
#[derive(Deserialize)]
struct RawPacked128 {
    hi: u64,
    lo: u64,
}

impl TryFrom<RawPacked128> for Packed128 {
    type Error = KernelError;

    fn try_from(raw: RawPacked128) -> Result<Self, Self::Error> {
        let seed = Packed128 {
            hi: raw.hi,
            lo: raw.lo,
        };
        seed.validate()?;
        Ok(seed)
    }
}

impl Packed128 {
    /// A seed from `hi` and the two floats of `lo`, without checking them: the seed may hold a
    /// non-finite float (as a diverged training run can), which [`Packed128::validate`]
    /// then reports.
    pub fn from_parts_unchecked(hi: u64, first: f32, second: f32) -> Self {
        Self {
            hi,
            lo: (u64::from(first.to_bits()) << 32) | u64::from(second.to_bits()),
        }
    }

    /// The two floats of `lo`: `lo[63:32]` and `lo[31:0]`.
    pub fn floats(&self) -> [f32; 2] {
        [
            f32::from_bits((self.lo >> 32) as u32),
            f32::from_bits(self.lo as u32),
        ]
    }

    /// Checks that both floats of `lo` are finite.
    pub fn validate(&self) -> Result<(), KernelError> {
        let [first, second] = self.floats();
        if !first.is_finite() {
            return Err(KernelError::NonFiniteRadius(first));
        }
        if !second.is_finite() {
            return Err(KernelError::NonFiniteTheta(second));
        }
        Ok(())
    }

    /// The 16-byte little-endian form: `hi` then `lo`, each little-endian.
    pub fn to_le_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.hi.to_le_bytes());
        out[8..].copy_from_slice(&self.lo.to_le_bytes());
        out
    }

    /// Reads the 16-byte little-endian form, rejecting a wrong length or a non-finite float.
    pub fn from_le_bytes(bytes: &[u8]) -> Result<Self, KernelError> {
        let bytes: &[u8; 16] = bytes.try_into().map_err(|_| KernelError::ByteLength {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn binary_and_serde_round_trip(hi in any::<u64>(), a in -1.0e6f32..1.0e6, b in -1.0e6f32..1.0e6) {
            let seed = Packed128::from_parts_unchecked(hi, a, b);
            prop_assert_eq!(seed.floats(), [a, b]);
            let bytes = seed.to_le_bytes();
            prop_assert_eq!(Packed128::from_le_bytes(&bytes).unwrap(), seed);
            prop_assert_eq!(&bytes[..8], &seed.hi.to_le_bytes()[..]);
            let json = serde_json::to_string(&seed).unwrap();
            prop_assert_eq!(serde_json::from_str::<Packed128>(&json).unwrap(), seed);
        }
    }

    #[test]
    fn non_finite_floats_are_typed_errors() {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for raw in [
                Packed128::from_parts_unchecked(7, bad, 0.5),
                Packed128::from_parts_unchecked(7, 0.5, bad),
            ] {
                assert!(raw.validate().is_err());
                assert!(Packed128::from_le_bytes(&raw.to_le_bytes()).is_err());
                let json = format!(r#"{{"hi":7,"lo":{}}}"#, raw.lo);
                assert!(serde_json::from_str::<Packed128>(&json).is_err());
            }
        }
        assert_eq!(
            Packed128::from_le_bytes(&[0u8; 15]),
            Err(KernelError::ByteLength {
                expected: 16,
                actual: 15
            })
        );
    }
}
