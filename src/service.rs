//! The use cases: send a code (starting or continuing a verification),
//! verify a code by phone or by verification, read, cancel or approve a
//! verification, report a pending code's status.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::{
    Bucket, Claim, ClientPrefixes, Code, CodeHasher, Delivery, DeliveryReport, DeliveryState,
    DestinationError, DestinationPolicy, GuessBudget, Idempotency, MessageTemplate, Opened, OtpPolicy, Phone,
    Quota, Resend, SendLimits, SmsReceipt, Taken, Verification, VerificationId, VerifyOutcome,
};
use crate::ports::{ErrorChain, OtpStore, SmsError, SmsSender, StoreError};

/// How long after a code expires a provider's report of its SMS is still
/// taken; reports trail the message by seconds to minutes.
const REPORT_GRACE: Duration = Duration::from_secs(60);

/// How long a first request holds its idempotency key while it is being
/// answered: well past any send (store and SMS timeouts, retries included),
/// and short enough that a request lost in a crash frees its key soon.
const IDEMPOTENCY_HOLD: Duration = Duration::from_secs(300);

/// The provider named for codes of test numbers, which are never texted.
pub const TEST_NUMBER_PROVIDER: &str = "test-number";

pub struct OtpService {
    store: Arc<dyn OtpStore>,
    sms: Arc<dyn SmsSender>,
    hasher: CodeHasher,
    policy: OtpPolicy,
    template: MessageTemplate,
    test_numbers: HashMap<Phone, Code>,
    guards: Guards,
    idempotency_window: Duration,
}

/// Everything that stands between a request and an SMS or a guess.
#[derive(Debug, Clone, Default)]
pub struct Guards {
    pub send: SendLimits,
    pub sends_per_ip: Quota,
    pub verifies_per_ip: Quota,
    pub lookups_per_ip: Quota,
    pub global_sends: Quota,
    pub destinations: DestinationPolicy,
    pub guesses: GuessBudget,
    /// How a client's address names the client its quotas count for.
    pub client_prefixes: ClientPrefixes,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    ResendTooSoon,
    PhoneQuota,
    IpQuota,
    GlobalQuota,
}

/// A code that is on its way to the phone.
#[derive(Debug, Clone)]
pub struct Sent {
    pub expires_in: Duration,
    /// When the next code for this phone may be asked for.
    pub resend_after: Duration,
    pub receipt: SmsReceipt,
    /// The verification the code belongs to, new or kept.
    pub verification: Verification,
}

/// Which verification a guess is for.
#[derive(Debug, Clone)]
pub enum Target {
    /// Whichever the phone has.
    Phone(Phone),
    Id(VerificationId),
}

/// A guess that was heard: right (the verification is over) or wrong (one
/// attempt used).
#[derive(Debug, Clone)]
pub struct Guessed {
    pub phone: Phone,
    pub approved: bool,
    /// Before a right guess ended it, or after a wrong one.
    pub verification: Verification,
}

/// How an app ends a verification itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Cancel,
    /// It verified the user another way.
    Approve,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Destination(#[from] DestinationError),
    #[error("a send limit was reached")]
    Limited { limit: Limit, retry_after: Duration },
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
    Locked { expires_in: Duration },
    #[error("this client has made too many verifications")]
    Limited { retry_after: Duration },
    #[error("this phone has had too many wrong codes for now")]
    GuessBudget { retry_after: Duration },
    #[error("there is no pending code for this phone")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("this client has asked about too many phones")]
    Limited { retry_after: Duration },
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
            guards: Guards::default(),
            idempotency_window: Duration::from_secs(86_400),
        }
    }

    /// The limits and destination rules; without them nothing is limited.
    pub fn with_guards(mut self, guards: Guards) -> Self {
        self.guards = guards;
        self
    }

    /// How long a send's answer is kept for retries with its idempotency key.
    pub fn with_idempotency_window(mut self, window: Duration) -> Self {
        self.idempotency_window = window;
        self
    }

    /// Claims an idempotency key before a send: [`Claim::Fresh`] lets the
    /// send go ahead (then [`OtpService::settle`] or
    /// [`OtpService::release`]); anything else says why it must not.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    pub async fn claim(&self, idempotency: &Idempotency) -> Result<Claim, StoreError> {
        self.store.claim(idempotency, IDEMPOTENCY_HOLD).await
    }

    /// Keeps a send's answer for its retries. A failure is logged, not
    /// returned: the code is out, and the answer must reach the client.
    pub async fn settle(&self, idempotency: &Idempotency, answer: &str) {
        if let Err(e) = self
            .store
            .settle(idempotency, answer, self.idempotency_window)
            .await
        {
            tracing::warn!(error = %ErrorChain(&e), "could not keep an idempotent answer");
        }
    }

    /// Frees a key whose send failed, so a retry may send.
    pub async fn release(&self, idempotency: &Idempotency) {
        if let Err(e) = self.store.release(idempotency).await {
            tracing::warn!(error = %ErrorChain(&e), "could not free an idempotency key");
        }
    }

    /// Numbers whose code is fixed and never texted (app-store review,
    /// end-to-end tests). Their codes follow every other rule.
    pub fn with_test_numbers(mut self, test_numbers: HashMap<Phone, Code>) -> Self {
        self.test_numbers = test_numbers;
        self
    }

    /// Makes a new code for `phone`, replacing any pending one, and texts it.
    /// The code is stored before the SMS goes out, so a fast user can't beat
    /// the store; a send that fails withdraws it, so no code stays pending
    /// that nobody received.
    ///
    /// # Errors
    /// [`SendError`] when the store or the SMS provider fails.
    #[tracing::instrument(level = "debug", skip_all, fields(phone = %phone.masked()))]
    pub async fn send(&self, phone: &Phone, client: IpAddr) -> Result<Sent, SendError> {
        self.send_as(phone, client, Resend::Replaces, None).await
    }

    /// Sends a code for the phone's verification: a pending one is kept
    /// (same id, its attempts left, its earlier codes live until their own
    /// expiry), otherwise a new one starts. Otherwise as [`OtpService::send`].
    ///
    /// # Errors
    /// [`SendError`] when a rule refuses it, or the store or the SMS provider fails.
    #[tracing::instrument(level = "debug", skip_all, fields(phone = %phone.masked()))]
    pub async fn start(&self, phone: &Phone, client: IpAddr) -> Result<Sent, SendError> {
        self.send_as(phone, client, Resend::Keeps, None).await
    }

    /// [`OtpService::start`], with the SMS naming `app` instead of the
    /// configured app (a Twilio Verify service's friendly name).
    ///
    /// # Errors
    /// [`SendError`] when a rule refuses it, or the store or the SMS provider fails.
    #[tracing::instrument(level = "debug", skip_all, fields(phone = %phone.masked()))]
    pub async fn start_for(&self, phone: &Phone, client: IpAddr, app: &str) -> Result<Sent, SendError> {
        self.send_as(phone, client, Resend::Keeps, Some(app)).await
    }

    async fn send_as(
        &self,
        phone: &Phone,
        client: IpAddr,
        resend: Resend,
        app: Option<&str>,
    ) -> Result<Sent, SendError> {
        self.guards.destinations.check(phone)?;
        let buckets = [
            (
                Bucket::SendsFrom(self.guards.client_prefixes.client(client)),
                self.guards.sends_per_ip,
                Limit::IpQuota,
            ),
            (Bucket::GlobalSends, self.guards.global_sends, Limit::GlobalQuota),
        ];
        let mut taken = Vec::with_capacity(buckets.len());
        for (bucket, quota, limit) in buckets.into_iter().filter(|(_, quota, _)| !quota.is_off()) {
            match self.store.take(bucket, quota).await {
                Ok(Taken::Granted) => taken.push(bucket),
                Ok(Taken::Exhausted { retry_after }) => {
                    self.give_back(&taken).await;
                    return Err(SendError::Limited { limit, retry_after });
                }
                Err(e) => {
                    self.give_back(&taken).await;
                    return Err(e.into());
                }
            }
        }

        let fixed = self.test_numbers.get(phone);
        let code = fixed.cloned().unwrap_or_else(Code::generate);
        let local_id = new_message_id();
        // A receipt known before sending is stored with the code: one write.
        let ahead = match fixed {
            Some(_) => Some(test_number_receipt()),
            None => self.sms.receipt_ahead(&local_id),
        };
        let sent_at = unix_now();
        let mut pending = self.policy.pending(self.hasher.hash(phone, &code)).sent(sent_at);
        if let Some(receipt) = &ahead {
            pending = pending.with_receipt(receipt, sent_at);
        }
        let refused = match self.store.open(phone, &pending, &self.guards.send, resend).await {
            Ok(Opened::Stored(verification)) => Ok(verification),
            Ok(Opened::TooSoon { retry_after }) => Err(SendError::Limited {
                limit: Limit::ResendTooSoon,
                retry_after,
            }),
            Ok(Opened::QuotaExceeded { retry_after }) => Err(SendError::Limited {
                limit: Limit::PhoneQuota,
                retry_after,
            }),
            Err(e) => Err(e.into()),
        };
        let mut verification = match refused {
            Ok(verification) => verification,
            Err(refused) => {
                // Nothing was sent, so the client and the service keep their budget.
                self.give_back(&taken).await;
                return Err(refused);
            }
        };
        let sent = if fixed.is_some() {
            Ok(test_number_receipt())
        } else {
            let text = match app {
                Some(app) => self.template.for_app(app).render(&code, self.policy.ttl()),
                None => self.template.render(&code, self.policy.ttl()),
            };
            self.sms.send(phone, &text, &local_id).await
        };
        match sent {
            Ok(receipt) => {
                // A vendor's message id, or a fallback that took over, is news
                // the stored code doesn't hold yet. Failing to note it must not
                // fail the send: the code is out.
                if ahead.as_ref() != Some(&receipt) || receipt.tracked {
                    let link_ttl = self.policy.ttl() + REPORT_GRACE;
                    let noted = self
                        .store
                        .record_delivery(phone, &pending.hash, &receipt, sent_at, link_ttl);
                    if let Err(e) = noted.await {
                        tracing::warn!(phone = %phone.masked(), error = %ErrorChain(&e), "could not record the delivery");
                    }
                    verification.delivery = Some(Delivery::queued(&receipt, sent_at));
                }
                Ok(Sent {
                    expires_in: self.policy.ttl(),
                    resend_after: self.guards.send.resend_after,
                    receipt,
                    verification,
                })
            }
            Err(sms_error) => {
                if let Err(store_error) = self.store.withdraw(phone, &pending.hash).await {
                    tracing::warn!(phone = %phone.masked(), error = %ErrorChain(&store_error), "could not withdraw the code of a failed send");
                }
                Err(sms_error.into())
            }
        }
    }

    /// Checks `code` against the pending code; right codes are consumed.
    ///
    /// # Errors
    /// [`VerifyError`] for a wrong, locked or missing code, or a store failure.
    #[tracing::instrument(level = "debug", skip_all, fields(phone = %phone.masked()))]
    pub async fn verify(&self, phone: &Phone, code: &Code, client: IpAddr) -> Result<(), VerifyError> {
        let bucket = Bucket::VerifiesFrom(self.guards.client_prefixes.client(client));
        if let Taken::Exhausted { retry_after } = self.take(bucket, self.guards.verifies_per_ip).await? {
            return Err(VerifyError::Limited { retry_after });
        }
        let candidates = self.hasher.candidates(phone, code);
        let verified = self
            .store
            .verify_and_consume(phone, &candidates, &self.guards.guesses);
        match verified.await? {
            VerifyOutcome::Approved => Ok(()),
            VerifyOutcome::Mismatch { attempts_remaining } => {
                Err(VerifyError::Mismatch { attempts_remaining })
            }
            VerifyOutcome::Locked { expires_in } => Err(VerifyError::Locked { expires_in }),
            VerifyOutcome::NotFound => Err(VerifyError::NotFound),
            VerifyOutcome::Throttled { retry_after } => Err(VerifyError::GuessBudget { retry_after }),
        }
    }

    /// Checks `code` against a verification, by phone or by id (one more
    /// store round trip, to find its phone). A wrong code is an answer, not
    /// an error: it says how many attempts are left.
    ///
    /// # Errors
    /// [`VerifyError`] for a locked or missing verification, a limit, or a
    /// store failure; never [`VerifyError::Mismatch`].
    pub async fn check(&self, target: &Target, code: &Code, client: IpAddr) -> Result<Guessed, VerifyError> {
        let bucket = Bucket::VerifiesFrom(self.guards.client_prefixes.client(client));
        if let Taken::Exhausted { retry_after } = self.take(bucket, self.guards.verifies_per_ip).await? {
            return Err(VerifyError::Limited { retry_after });
        }
        let (phone, id) = match target {
            Target::Phone(phone) => (phone.clone(), None),
            Target::Id(id) => match self.store.find(id).await? {
                Some(phone) => (phone, Some(id)),
                None => return Err(VerifyError::NotFound),
            },
        };
        let candidates = self.hasher.candidates(&phone, code);
        let checked = self
            .store
            .check(&phone, id, &candidates, &self.guards.guesses)
            .await?;
        let approved = match checked.outcome {
            VerifyOutcome::Approved => true,
            VerifyOutcome::Mismatch { .. } => false,
            VerifyOutcome::Locked { expires_in } => return Err(VerifyError::Locked { expires_in }),
            VerifyOutcome::NotFound => return Err(VerifyError::NotFound),
            VerifyOutcome::Throttled { retry_after } => return Err(VerifyError::GuessBudget { retry_after }),
        };
        let verification = checked.verification.ok_or(VerifyError::NotFound)?;
        Ok(Guessed {
            phone,
            approved,
            verification,
        })
    }

    /// A pending verification by its id, with its phone. Ids can't be
    /// guessed, so, unlike [`OtpService::status`], no quota guards it.
    ///
    /// # Errors
    /// [`StatusError::NotFound`] for an unknown, ended, expired or locked
    /// verification, or a store failure.
    pub async fn fetch(&self, id: &VerificationId) -> Result<(Phone, Verification), StatusError> {
        let phone = self.store.find(id).await?.ok_or(StatusError::NotFound)?;
        match self.store.status(&phone).await? {
            Some(v) if v.id == *id && v.attempts_remaining > 0 => Ok((phone, v)),
            _ => Err(StatusError::NotFound),
        }
    }

    /// Ends a pending verification, as the app says; returns it as it was.
    ///
    /// # Errors
    /// [`StatusError::NotFound`] for an unknown, ended, expired or locked
    /// verification, or a store failure.
    pub async fn end(
        &self,
        id: &VerificationId,
        ending: Ending,
    ) -> Result<(Phone, Verification), StatusError> {
        let phone = self.store.find(id).await?.ok_or(StatusError::NotFound)?;
        let ended = self.store.end(&phone, id).await?.ok_or(StatusError::NotFound)?;
        tracing::debug!(phone = %phone.masked(), ?ending, "verification ended");
        Ok((phone, ended))
    }

    /// Takes one from `bucket` unless `quota` is off.
    async fn take(&self, bucket: Bucket, quota: Quota) -> Result<Taken, StoreError> {
        if quota.is_off() {
            return Ok(Taken::Granted);
        }
        self.store.take(bucket, quota).await
    }

    /// Forgets the phone's wrong guesses, so its owner may guess again.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    pub async fn clear_guesses(&self, phone: &Phone) -> Result<bool, StoreError> {
        self.store.clear_guesses(phone).await
    }

    async fn give_back(&self, taken: &[Bucket]) {
        for bucket in taken {
            if let Err(e) = self.store.give_back(*bucket).await {
                tracing::warn!(error = %ErrorChain(&e), "could not give back a quota");
            }
        }
    }

    /// Applies a provider's report of a message's fate; says whether it
    /// changed anything (an unknown, expired or stale report doesn't).
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    pub async fn report_delivery(
        &self,
        provider: &str,
        message_id: &str,
        state: DeliveryState,
        error_code: Option<String>,
    ) -> Result<bool, StoreError> {
        let report = DeliveryReport {
            provider: provider.to_owned(),
            message_id: message_id.to_owned(),
            state,
            error_code,
            at: unix_now(),
        };
        self.store.update_delivery(&report).await
    }

    /// Whether the store answers, for readiness checks.
    ///
    /// # Errors
    /// [`StoreError`] when it doesn't, in time.
    pub async fn ping_store(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    /// The pending code's remaining life and attempts. Whether a phone has
    /// a code pending is worth knowing to an attacker, so `client` pays for
    /// each look from its own quota.
    ///
    /// # Errors
    /// [`StatusError::NotFound`] when no code is pending,
    /// [`StatusError::Limited`] past the client's quota, or a store failure.
    #[tracing::instrument(level = "debug", skip_all, fields(phone = %phone.masked()))]
    pub async fn status(&self, phone: &Phone, client: IpAddr) -> Result<Verification, StatusError> {
        let bucket = Bucket::LookupsFrom(self.guards.client_prefixes.client(client));
        if let Taken::Exhausted { retry_after } = self.take(bucket, self.guards.lookups_per_ip).await? {
            return Err(StatusError::Limited { retry_after });
        }
        self.store.status(phone).await?.ok_or(StatusError::NotFound)
    }
}

fn test_number_receipt() -> SmsReceipt {
    SmsReceipt {
        provider: TEST_NUMBER_PROVIDER.into(),
        message_id: TEST_NUMBER_PROVIDER.into(),
        tracked: false,
    }
}

/// A random UUID from the thread's CSPRNG, which the OS seeds once: an id
/// that is unique without a system call per message.
fn new_message_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
