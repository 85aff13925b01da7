use thiserror::Error;

/// Everything that can be wrong with a seed, a layout or the data handed to the reference.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RbeError {
    /// `r` is NaN or infinite.
    #[error("seed radius r must be finite, got {0}")]
    NonFiniteRadius(f32),
    /// `theta` is NaN or infinite.
    #[error("seed angle theta must be finite, got {0}")]
    NonFiniteTheta(f32),
    /// A value does not fit in its bit field of `hi`.
    #[error("{field} is a {bits}-bit field; {value} does not fit")]
    FieldOverflow {
        /// Name of the field.
        field: &'static str,
        /// Width of the field in bits.
        bits: u32,
        /// The rejected value.
        value: u64,
    },
    /// A binary seed or seed table has the wrong number of bytes.
    #[error("expected {expected} bytes, got {actual}")]
    ByteLength {
        /// Bytes needed.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// A dimension or block size is zero.
    #[error("{what} must be at least 1, got 0")]
    ZeroDimension {
        /// Which dimension.
        what: &'static str,
    },
    /// A dimension or block size exceeds what the kernels can index.
    #[error("{what} is {value}, above the limit of {max}")]
    TooLarge {
        /// Which size.
        what: &'static str,
        /// The rejected value.
        value: usize,
        /// The largest accepted value.
        max: usize,
    },
    /// A buffer does not have the length its shape implies.
    #[error("{what}: expected {expected} elements, got {actual}")]
    LengthMismatch {
        /// Which buffer.
        what: &'static str,
        /// Elements needed.
        expected: usize,
        /// Elements given.
        actual: usize,
    },
}

impl RbeError {
    /// `Ok` when a buffer has the length its shape implies.
    pub(crate) fn check_len(
        what: &'static str,
        actual: usize,
        expected: usize,
    ) -> Result<(), Self> {
        if actual == expected {
            Ok(())
        } else {
            Err(Self::LengthMismatch {
                what,
                expected,
                actual,
            })
        }
    }
}
