//! Where codes may be texted: countries allowed or denied, and never numbers
//! that cost the sender extra or that nobody can classify.

use std::collections::BTreeSet;

use super::phone::{NumberKind, Phone};

#[derive(Debug, Clone, Default)]
pub struct DestinationPolicy {
    /// ISO 3166 codes; empty means every country.
    allowed: BTreeSet<String>,
    denied: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("codes are not sent to numbers in {0}")]
    Country(String),
    #[error("codes are not sent to numbers whose country is unknown")]
    NoCountry,
    #[error("codes are not sent to premium-rate numbers")]
    PremiumRate,
    #[error("codes are not sent to shared-cost numbers")]
    SharedCost,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an ISO 3166 alpha-2 country code")]
pub struct CountryCodeError(pub String);

impl DestinationPolicy {
    /// Texts only these countries (ISO 3166 alpha-2); none given: all.
    ///
    /// # Errors
    /// [`CountryCodeError`] for a code that isn't two ASCII letters.
    pub fn allow(mut self, countries: &[String]) -> Result<Self, CountryCodeError> {
        self.allowed = country_codes(countries)?;
        Ok(self)
    }

    /// Never texts these countries.
    ///
    /// # Errors
    /// [`CountryCodeError`] for a code that isn't two ASCII letters.
    pub fn deny(mut self, countries: &[String]) -> Result<Self, CountryCodeError> {
        self.denied = country_codes(countries)?;
        Ok(self)
    }

    /// # Errors
    /// A [`DestinationError`] saying why no code may go to `phone`.
    pub fn check(&self, phone: &Phone) -> Result<(), DestinationError> {
        match phone.kind() {
            NumberKind::PremiumRate => return Err(DestinationError::PremiumRate),
            NumberKind::SharedCost => return Err(DestinationError::SharedCost),
            NumberKind::Ordinary => {}
        }
        let Some(region) = phone.region() else {
            // Non-geographic numbers pass only when no allow-list narrows the countries.
            return if self.allowed.is_empty() {
                Ok(())
            } else {
                Err(DestinationError::NoCountry)
            };
        };
        if self.denied.contains(region) || (!self.allowed.is_empty() && !self.allowed.contains(region)) {
            return Err(DestinationError::Country(region.to_owned()));
        }
        Ok(())
    }
}

fn country_codes(codes: &[String]) -> Result<BTreeSet<String>, CountryCodeError> {
    codes
        .iter()
        .map(|c| {
            let c = c.trim();
            if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()) {
                Ok(c.to_ascii_uppercase())
            } else {
                Err(CountryCodeError(c.to_owned()))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn check(policy: &DestinationPolicy, phone: &str) -> Result<(), DestinationError> {
        policy.check(&Phone::parse(phone).unwrap())
    }

    #[test]
    fn allow_and_deny_lists() {
        let open = DestinationPolicy::default();
        assert_eq!(check(&open, "+14155552671"), Ok(()));
        let only_us = DestinationPolicy::default().allow(&codes(&["us"])).unwrap();
        assert_eq!(check(&only_us, "+14155552671"), Ok(()));
        assert_eq!(
            check(&only_us, "+447400123456"),
            Err(DestinationError::Country("GB".into()))
        );
        let no_gb = DestinationPolicy::default().deny(&codes(&["GB"])).unwrap();
        assert_eq!(
            check(&no_gb, "+447400123456"),
            Err(DestinationError::Country("GB".into()))
        );
        assert_eq!(check(&no_gb, "+14155552671"), Ok(()));
        assert!(DestinationPolicy::default().allow(&codes(&["USA"])).is_err());
    }

    #[test]
    fn costly_numbers_are_refused_everywhere() {
        let open = DestinationPolicy::default();
        assert_eq!(check(&open, "+19002345678"), Err(DestinationError::PremiumRate));
    }
}
