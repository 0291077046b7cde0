//! `Code`: the six digits a user types, drawn from the OS's random source.

use std::fmt;

use rand::rngs::OsRng;
use rand::{Rng, TryRngCore};

pub const CODE_LEN: usize = 6;
const CODE_SPACE: u32 = 1_000_000;

/// Exactly six ASCII digits. `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct Code([u8; CODE_LEN]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("the code must be exactly 6 digits")]
    Format,
}

impl Code {
    /// Draws a code uniformly from 000000-999999 with the OS's CSPRNG.
    /// `random_range` rejects out-of-range draws instead of taking a modulus,
    /// so no value is more likely than another. Without the OS's random
    /// source no code can be made at all, so its failure is a panic.
    pub fn generate() -> Self {
        let value = OsRng.unwrap_err().random_range(0..CODE_SPACE);
        Self::from_number(value)
    }

    /// Parses what a user typed. Nothing but six ASCII digits is a code.
    ///
    /// # Errors
    /// [`CodeError::Format`] for anything else.
    pub fn parse(raw: &str) -> Result<Self, CodeError> {
        let bytes: [u8; CODE_LEN] = raw.as_bytes().try_into().map_err(|_| CodeError::Format)?;
        if bytes.iter().all(u8::is_ascii_digit) {
            Ok(Self(bytes))
        } else {
            Err(CodeError::Format)
        }
    }

    /// Writes a number below one million as six digits, zero-padded.
    fn from_number(value: u32) -> Self {
        let mut digits = [b'0'; CODE_LEN];
        let mut rest = value;
        for slot in digits.iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        Self(digits)
    }

    /// The digits, for the one place that must show them: the SMS text.
    pub fn expose(&self) -> &str {
        // Only ASCII digits are ever stored, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_are_six_digits_with_leading_zeros_kept() {
        for _ in 0..1000 {
            let code = Code::generate();
            assert_eq!(code.expose().len(), 6);
            assert!(code.expose().bytes().all(|b| b.is_ascii_digit()));
        }
        assert_eq!(Code::from_number(42).expose(), "000042");
        assert_eq!(Code::from_number(999_999).expose(), "999999");
    }

    #[test]
    fn every_digit_position_is_roughly_uniform() {
        // 100,000 draws, 10 buckets per position: a chi-square statistic above
        // 40 (9 degrees of freedom) has odds below one in a million.
        let draws = 100_000;
        let mut counts = [[0u32; 10]; CODE_LEN];
        for _ in 0..draws {
            for (pos, b) in Code::generate().expose().bytes().enumerate() {
                counts[pos][(b - b'0') as usize] += 1;
            }
        }
        let expected = f64::from(draws) / 10.0;
        for (pos, buckets) in counts.iter().enumerate() {
            let chi2: f64 = buckets
                .iter()
                .map(|&n| (f64::from(n) - expected).powi(2) / expected)
                .sum();
            assert!(chi2 < 40.0, "position {pos}: chi-square {chi2}");
        }
    }

    #[test]
    fn parses_only_six_ascii_digits() {
        assert_eq!(Code::parse("042917").unwrap().expose(), "042917");
        for bad in ["", "12345", "1234567", "12345a", " 12345", "١٢٣٤٥٦", "12 456"] {
            assert_eq!(Code::parse(bad), Err(CodeError::Format), "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_the_digits() {
        let code = Code::parse("042917").unwrap();
        assert!(!format!("{code:?}").contains("042917"));
    }
}
