//! Parsed phone numbers, remembered. Parsing runs libphonenumber's regexes,
//! the costliest step of a request (see docs/performance.md), and a phone
//! is usually seen again within minutes: its verify follows its send.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::domain::{Phone, PhoneError};

/// Entries kept before the memo starts afresh; a few MB at most.
const CAPACITY: usize = 20_000;

#[derive(Default)]
pub struct Phones {
    seen: Mutex<HashMap<String, Phone>>,
}

impl Phones {
    /// [`Phone::parse`], answered from memory when this text was parsed before.
    ///
    /// # Errors
    /// As [`Phone::parse`]; failures are not remembered.
    pub fn parse(&self, raw: &str) -> Result<Phone, PhoneError> {
        if let Some(phone) = self.lock().get(raw) {
            return Ok(phone.clone());
        }
        let phone = Phone::parse(raw)?;
        let mut seen = self.lock();
        if seen.len() >= CAPACITY {
            // Starting afresh is simpler than an LRU, and the next misses
            // cost no more than a parse each.
            seen.clear();
        }
        seen.insert(raw.to_owned(), phone.clone());
        Ok(phone)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Phone>> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_what_parsed_and_nothing_else() {
        let phones = Phones::default();
        assert_eq!(phones.parse("+1 415 555 2671").unwrap().as_str(), "+14155552671");
        assert_eq!(phones.parse("+1 415 555 2671").unwrap().as_str(), "+14155552671");
        assert!(phones.parse("nope").is_err());
        assert_eq!(phones.lock().len(), 1);
    }
}
