//! Where codes may be texted: countries allowed or denied, never numbers that
//! cost the sender extra, and numbers that SMS pumping favours (those of no
//! country, personal numbers, pagers) only where the operator allows them.

use std::collections::BTreeSet;

use super::phone::{NumberKind, Phone};

#[derive(Debug, Clone, Default)]
pub struct DestinationPolicy {
    /// ISO 3166 codes; empty means every country.
    allowed: BTreeSet<String>,
    denied: BTreeSet<String>,
    /// E.164 prefixes (`+882`) whose special numbers may be texted.
    special: Vec<String>,
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
    #[error("codes are not sent to personal numbers")]
    Personal,
    #[error("codes are not sent to pagers")]
    Pager,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountryCodeError {
    #[error("`{0}` is not an ISO 3166 alpha-2 country code")]
    Country(String),
    #[error("`{0}` is not a prefix of an international number: + and 1 to 15 digits")]
    Prefix(String),
}

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

    /// Texts the special numbers (of no country, personal, pagers) that
    /// start with one of `prefixes` (`+882`, `+4470`).
    ///
    /// # Errors
    /// [`CountryCodeError::Prefix`] for one that isn't `+` and digits.
    pub fn allow_special(mut self, prefixes: &[String]) -> Result<Self, CountryCodeError> {
        self.special = prefixes
            .iter()
            .map(|p| {
                let p = p.trim();
                let digits = p.strip_prefix('+').unwrap_or_default();
                if (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
                    Ok(p.to_owned())
                } else {
                    Err(CountryCodeError::Prefix(p.to_owned()))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(self)
    }

    /// # Errors
    /// A [`DestinationError`] saying why no code may go to `phone`.
    pub fn check(&self, phone: &Phone) -> Result<(), DestinationError> {
        let special = || {
            self.special
                .iter()
                .any(|p| phone.as_str().starts_with(p.as_str()))
        };
        match phone.kind() {
            NumberKind::PremiumRate => return Err(DestinationError::PremiumRate),
            NumberKind::SharedCost => return Err(DestinationError::SharedCost),
            NumberKind::Personal if !special() => return Err(DestinationError::Personal),
            NumberKind::Pager if !special() => return Err(DestinationError::Pager),
            _ => {}
        }
        let Some(region) = phone.region() else {
            return if special() {
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
                Err(CountryCodeError::Country(c.to_owned()))
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
        let special = DestinationPolicy::default()
            .allow_special(&codes(&["+1900"]))
            .unwrap();
        assert_eq!(
            check(&special, "+19002345678"),
            Err(DestinationError::PremiumRate)
        );
    }

    #[test]
    fn special_numbers_only_where_allowed() {
        let open = DestinationPolicy::default();
        assert_eq!(check(&open, "+447012345678"), Err(DestinationError::Personal));
        assert_eq!(check(&open, "+447640123456"), Err(DestinationError::Pager));
        assert_eq!(check(&open, "+80012345678"), Err(DestinationError::NoCountry));
        let allowed = DestinationPolicy::default()
            .allow_special(&codes(&["+4470", "+800"]))
            .unwrap();
        assert_eq!(check(&allowed, "+447012345678"), Ok(()));
        assert_eq!(check(&allowed, "+80012345678"), Ok(()));
        assert_eq!(check(&allowed, "+447640123456"), Err(DestinationError::Pager));
        assert!(DestinationPolicy::default()
            .allow_special(&codes(&["882"]))
            .is_err());
        assert!(DestinationPolicy::default()
            .allow_special(&codes(&["+"]))
            .is_err());
    }
}
