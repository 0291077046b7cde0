//! `Phone`: a number that libphonenumber's metadata calls valid, held in E.164.

use std::fmt;

use phonenumber::Type;

use crate::numbering;

/// Longest input we hand to the parser; real numbers with spacing fit easily.
const MAX_INPUT_LEN: usize = 32;

/// A valid phone number in E.164 form (`+14155552671`), with what
/// libphonenumber's metadata says of it.
#[derive(Clone)]
pub struct Phone {
    e164: String,
    region: Option<&'static str>,
    kind: NumberKind,
}

/// The kinds of number that matter for texting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberKind {
    /// Mobile, fixed line or either (as in North America), toll-free, VoIP,
    /// UAN or voicemail.
    Ordinary,
    /// A personal number that forwards wherever its owner says (the UK's
    /// +44 70): priced like premium numbers, and a known SMS-pumping range.
    Personal,
    /// A pager (the UK's +44 76): no one reads a code there.
    Pager,
    /// Premium-rate: texting it can cost the sender.
    PremiumRate,
    /// Shared-cost: texting it can cost the sender.
    SharedCost,
}

impl PartialEq for Phone {
    fn eq(&self, other: &Self) -> bool {
        self.e164 == other.e164
    }
}

impl Eq for Phone {}

impl Ord for Phone {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.e164.cmp(&other.e164)
    }
}

impl PartialOrd for Phone {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::hash::Hash for Phone {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.e164.hash(state);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("the phone number is empty")]
    Empty,
    #[error("the phone number is longer than {MAX_INPUT_LEN} characters")]
    TooLong,
    #[error("the phone number must be in international form, starting with + and the country code")]
    NotInternational,
    #[error("the phone number may hold only digits, spaces, dashes, dots and parentheses")]
    BadCharacter,
    #[error("the phone number is not a valid number for its country")]
    Invalid,
}

impl Phone {
    /// Parses a number written in international form; spaces, dashes, dots and
    /// parentheses between the digits are accepted and dropped.
    ///
    /// # Errors
    /// A [`PhoneError`] naming why the text is not a valid number.
    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(PhoneError::Empty);
        }
        if raw.len() > MAX_INPUT_LEN {
            return Err(PhoneError::TooLong);
        }
        let Some(rest) = raw.strip_prefix('+') else {
            return Err(PhoneError::NotInternational);
        };
        // Only characters a phone number is written with; the separators go.
        if !rest
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'))
        {
            return Err(PhoneError::BadCharacter);
        }
        let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
        let number = numbering::parse_international(&digits).ok_or(PhoneError::Invalid)?;
        Ok(Self {
            e164: format!("+{}{}", number.country_code, number.national),
            region: number.region,
            kind: match number.kind {
                Type::PremiumRate => NumberKind::PremiumRate,
                Type::SharedCost => NumberKind::SharedCost,
                Type::PersonalNumber => NumberKind::Personal,
                Type::Pager => NumberKind::Pager,
                _ => NumberKind::Ordinary,
            },
        })
    }

    /// Loads the numbering metadata now rather than at the first parse, which
    /// would otherwise take about 150 ms longer.
    pub fn prepare() {
        numbering::load();
    }

    /// The ISO 3166 country the number belongs to, such as `US` or `GB`.
    pub fn region(&self) -> Option<&'static str> {
        self.region
    }

    pub fn kind(&self) -> NumberKind {
        self.kind
    }

    /// The E.164 form, `+` and digits.
    pub fn as_str(&self) -> &str {
        &self.e164
    }

    /// The E.164 form with the middle digits hidden, for logs: `+1415*****71`.
    pub fn masked(&self) -> String {
        let shown_head = 5.min(self.e164.len());
        let shown_tail = 2.min(self.e164.len() - shown_head);
        let hidden = self.e164.len() - shown_head - shown_tail;
        format!(
            "{}{}{}",
            &self.e164[..shown_head],
            "*".repeat(hidden),
            &self.e164[self.e164.len() - shown_tail..]
        )
    }
}

// Debug output lands in logs, so it shows only the masked number.
impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_spacing_and_answers_e164() {
        for raw in [
            "+14155552671",
            "+1 415 555 2671",
            "+1-415-555-2671",
            " +1 (415) 555-2671 ",
        ] {
            assert_eq!(Phone::parse(raw).unwrap().as_str(), "+14155552671", "{raw}");
        }
        assert_eq!(
            Phone::parse("+44 20 7946 0958").unwrap().as_str(),
            "+442079460958"
        );
    }

    #[test]
    fn refuses_what_is_not_a_valid_number() {
        assert_eq!(Phone::parse(""), Err(PhoneError::Empty));
        assert_eq!(Phone::parse("4155552671"), Err(PhoneError::NotInternational));
        assert_eq!(Phone::parse("+1415abc2671"), Err(PhoneError::BadCharacter));
        assert_eq!(Phone::parse("+1 000 000 0000"), Err(PhoneError::Invalid));
        assert_eq!(Phone::parse("+123"), Err(PhoneError::Invalid));
        assert_eq!(Phone::parse(&"+1".repeat(40)), Err(PhoneError::TooLong));
    }

    #[test]
    fn knows_the_country_and_the_kind() {
        let us = Phone::parse("+14155552671").unwrap();
        assert_eq!((us.region(), us.kind()), (Some("US"), NumberKind::Ordinary));
        let gb = Phone::parse("+447400123456").unwrap();
        assert_eq!((gb.region(), gb.kind()), (Some("GB"), NumberKind::Ordinary));
        assert_eq!(
            Phone::parse("+19002345678").unwrap().kind(),
            NumberKind::PremiumRate
        );
    }

    #[test]
    fn masks_the_middle_digits() {
        let phone = Phone::parse("+14155552671").unwrap();
        assert_eq!(phone.masked(), "+1415*****71");
        assert_eq!(format!("{phone:?}"), "Phone(+1415*****71)");
    }
}
