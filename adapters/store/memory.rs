//! The embedded store: one process, no Redis. Same rules as Redis, TTLs included.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;

use crate::domain::{CodeHash, OtpStatus, PendingOtp, Phone, SmsReceipt, VerifyOutcome};
use crate::ports::{OtpStore, StoreError};

/// Every this many calls, expired entries are swept, so phones never seen
/// again don't hold memory.
const SWEEP_EVERY: u64 = 1024;

#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Entry>>,
    calls: AtomicU64,
}

struct Entry {
    hash: CodeHash,
    attempts: u32,
    expires_at: Instant,
    delivery: Option<SmsReceipt>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the live entries; a poisoned lock (a panic elsewhere while
    /// holding it) still holds consistent data, since no step leaves it half-done.
    fn with_entries<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>, Instant) -> T) -> T {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if self.calls.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            entries.retain(|_, e| e.expires_at > now);
        }
        f(&mut entries, now)
    }
}

/// The live entry for `phone`, dropping it if it has expired.
fn live<'a>(entries: &'a mut HashMap<String, Entry>, phone: &Phone, now: Instant) -> Option<&'a mut Entry> {
    if entries.get(phone.as_str()).is_some_and(|e| e.expires_at <= now) {
        entries.remove(phone.as_str());
    }
    entries.get_mut(phone.as_str())
}

#[async_trait]
impl OtpStore for MemoryStore {
    async fn put(&self, phone: &Phone, otp: &PendingOtp) -> Result<(), StoreError> {
        self.with_entries(|entries, now| {
            entries.insert(
                phone.as_str().to_owned(),
                Entry {
                    hash: otp.hash.clone(),
                    attempts: otp.attempts,
                    expires_at: now + otp.ttl,
                    delivery: None,
                },
            );
        });
        Ok(())
    }

    async fn verify_and_consume(
        &self,
        phone: &Phone,
        candidates: &[CodeHash],
    ) -> Result<VerifyOutcome, StoreError> {
        Ok(self.with_entries(|entries, now| {
            let Some(entry) = live(entries, phone, now) else {
                return VerifyOutcome::NotFound;
            };
            if entry.attempts == 0 {
                return VerifyOutcome::Locked;
            }
            // Check every candidate, so the time taken doesn't say which key matched.
            let matched = candidates
                .iter()
                .fold(false, |found, c| c.matches(entry.hash.as_bytes()) | found);
            if matched {
                entries.remove(phone.as_str());
                return VerifyOutcome::Approved;
            }
            entry.attempts -= 1;
            VerifyOutcome::Mismatch {
                attempts_remaining: entry.attempts,
            }
        }))
    }

    async fn status(&self, phone: &Phone) -> Result<Option<OtpStatus>, StoreError> {
        Ok(self.with_entries(|entries, now| {
            live(entries, phone, now).map(|e| OtpStatus {
                expires_in: e.expires_at - now,
                attempts_remaining: e.attempts,
                delivery: e.delivery.clone(),
            })
        }))
    }

    async fn withdraw(&self, phone: &Phone, hash: &CodeHash) -> Result<(), StoreError> {
        self.with_entries(|entries, now| {
            if live(entries, phone, now).is_some_and(|e| e.hash == *hash) {
                entries.remove(phone.as_str());
            }
        });
        Ok(())
    }

    async fn record_delivery(
        &self,
        phone: &Phone,
        hash: &CodeHash,
        receipt: &SmsReceipt,
    ) -> Result<(), StoreError> {
        self.with_entries(|entries, now| {
            if let Some(entry) = live(entries, phone, now).filter(|e| e.hash == *hash) {
                entry.delivery = Some(receipt.clone());
            }
        });
        Ok(())
    }
}
