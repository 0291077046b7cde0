//! The use cases: send a code, verify a code, report a pending code's status.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::{
    Code, CodeHasher, MessageTemplate, OtpPolicy, OtpStatus, Phone, SmsReceipt, VerifyOutcome,
};
use crate::ports::{OtpStore, SmsError, SmsSender, StoreError};

/// The provider named for codes of test numbers, which are never texted.
pub const TEST_NUMBER_PROVIDER: &str = "test-number";

pub struct OtpService {
    store: Arc<dyn OtpStore>,
    sms: Arc<dyn SmsSender>,
    hasher: CodeHasher,
    policy: OtpPolicy,
    template: MessageTemplate,
    test_numbers: HashMap<Phone, Code>,
}

/// A code that is on its way to the phone.
#[derive(Debug, Clone)]
pub struct Sent {
    pub expires_in: Duration,
    pub receipt: SmsReceipt,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sms(#[from] SmsError),
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the code is wrong")]
    Mismatch { attempts_remaining: u32 },
    #[error("no attempts are left for this code")]
    Locked,
    #[error("there is no pending code for this phone")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("there is no pending code for this phone")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OtpService {
    pub fn new(
        store: Arc<dyn OtpStore>,
        sms: Arc<dyn SmsSender>,
        hasher: CodeHasher,
        policy: OtpPolicy,
        template: MessageTemplate,
    ) -> Self {
        Self {
            store,
            sms,
            hasher,
            policy,
            template,
            test_numbers: HashMap::new(),
        }
    }

    /// Numbers whose code is fixed and never texted (app-store review,
    /// end-to-end tests). Their codes follow every other rule.
    pub fn with_test_numbers(mut self, test_numbers: HashMap<Phone, Code>) -> Self {
        self.test_numbers = test_numbers;
        self
    }

    pub fn policy(&self) -> &OtpPolicy {
        &self.policy
    }

    /// Makes a new code for `phone`, replacing any pending one, and texts it.
    /// The code is stored before the SMS goes out, so a fast user can't beat
    /// the store; a send that fails withdraws it, so no code stays pending
    /// that nobody received.
    ///
    /// # Errors
    /// [`SendError`] when the store or the SMS provider fails.
    pub async fn send(&self, phone: &Phone) -> Result<Sent, SendError> {
        let fixed = self.test_numbers.get(phone);
        let code = fixed.cloned().unwrap_or_else(Code::generate);
        let pending = self.policy.pending(self.hasher.hash(phone, &code));
        self.store.put(phone, &pending).await?;
        let sent = match fixed {
            Some(_) => Ok(SmsReceipt {
                provider: TEST_NUMBER_PROVIDER.into(),
                message_id: TEST_NUMBER_PROVIDER.into(),
            }),
            None => {
                self.sms
                    .send(phone, &self.template.render(&code, self.policy.ttl()))
                    .await
            }
        };
        match sent {
            Ok(receipt) => {
                // The code is out; failing to note who carried it must not fail the send.
                if let Err(e) = self.store.record_delivery(phone, &pending.hash, &receipt).await {
                    tracing::warn!(phone = %phone.masked(), error = %e, "could not record the delivery");
                }
                Ok(Sent {
                    expires_in: self.policy.ttl(),
                    receipt,
                })
            }
            Err(sms_error) => {
                if let Err(store_error) = self.store.withdraw(phone, &pending.hash).await {
                    tracing::warn!(phone = %phone.masked(), error = %store_error, "could not withdraw the code of a failed send");
                }
                Err(sms_error.into())
            }
        }
    }

    /// Checks `code` against the pending code; right codes are consumed.
    ///
    /// # Errors
    /// [`VerifyError`] for a wrong, locked or missing code, or a store failure.
    pub async fn verify(&self, phone: &Phone, code: &Code) -> Result<(), VerifyError> {
        let candidates = self.hasher.candidates(phone, code);
        match self.store.verify_and_consume(phone, &candidates).await? {
            VerifyOutcome::Approved => Ok(()),
            VerifyOutcome::Mismatch { attempts_remaining } => {
                Err(VerifyError::Mismatch { attempts_remaining })
            }
            VerifyOutcome::Locked => Err(VerifyError::Locked),
            VerifyOutcome::NotFound => Err(VerifyError::NotFound),
        }
    }

    /// The pending code's remaining life and attempts.
    ///
    /// # Errors
    /// [`StatusError::NotFound`] when no code is pending, or a store failure.
    pub async fn status(&self, phone: &Phone) -> Result<OtpStatus, StatusError> {
        self.store.status(phone).await?.ok_or(StatusError::NotFound)
    }
}
