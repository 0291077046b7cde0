//! The use cases: send a code (starting or continuing a verification),
//! verify a code by phone or by verification, read, cancel or approve a
//! verification, report a pending code's status.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::{
    Admitted, Bucket, Claim, ClientPrefixes, Code, CodeHasher, Delivery, DeliveryReport, DeliveryState,
    DestinationError, DestinationPolicy, Event, EventKind, GuessBudget, Idempotency, Locale, LockReason,
    MessageTemplate, Opened, OtpPolicy, Phone, Quota, Resend, SendLimits, SmsReceipt, Taken, Templates,
    Verification, VerificationId, VerifyOutcome,
};
use crate::ports::{ErrorChain, EventOutbox, OtpStore, SmsError, SmsSender, StoreError};

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
    /// By locale and country; without them, every message uses `template`.
    templates: Templates,
    test_numbers: HashMap<Phone, Code>,
    guards: Guards,
    /// Where events go; none configured, none are made.
    events: Option<Arc<dyn EventOutbox>>,
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
            templates: Templates::default(),
            test_numbers: HashMap::new(),
            guards: Guards::default(),
            events: None,
            idempotency_window: Duration::from_secs(86_400),
        }
    }

    /// Tells the app what happens, through `events`.
    pub fn with_events(mut self, events: Arc<dyn EventOutbox>) -> Self {
        self.events = Some(events);
        self
    }

    /// Keeps the events of one step in the outbox before the step answers.
    /// An outbox that fails or is full costs the events, never the step:
    /// the code was sent or consumed whatever the outbox says.
    async fn emit(
        &self,
        phone: &Phone,
        verification: Option<&VerificationId>,
        kinds: impl IntoIterator<Item = EventKind>,
    ) {
        let Some(outbox) = &self.events else {
            return;
        };
        let at_ms = unix_now_ms();
        let events: Vec<Event> = kinds
            .into_iter()
            .map(|kind| {
                Event::new(
                    phone.clone(),
                    verification.map(|v| v.as_str().to_owned()),
                    kind,
                    at_ms,
                )
            })
            .collect();
        if let Err(e) = outbox.publish(&events).await {
            tracing::warn!(phone = %phone.masked(), error = %ErrorChain(&e), "events were not kept");
        }
    }

    /// The limits and destination rules; without them nothing is limited.
    pub fn with_guards(mut self, guards: Guards) -> Self {
        self.guards = guards;
        self
    }

    /// Templates by locale and the language each country reads.
    pub fn with_templates(mut self, templates: Templates) -> Self {
        self.templates = templates;
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
    pub async fn send(&self, phone: &Phone, client: IpAddr) -> Result<Sent, SendError> {
        self.send_as(phone, client, Resend::Replaces, None, None).await
    }

    /// Sends a code for the phone's verification: a pending one is kept
    /// (same id, its attempts left, its earlier codes live until their own
    /// expiry), otherwise a new one starts. The SMS is in the language
    /// `locale` names; without one, in the destination country's (see
    /// [`Templates::pick`]). Otherwise as [`OtpService::send`].
    ///
    /// # Errors
    /// [`SendError`] when a rule refuses it, or the store or the SMS provider fails.
    #[tracing::instrument(level = "debug", skip_all, fields(phone = %phone.masked()))]
    pub async fn start(
        &self,
        phone: &Phone,
        client: IpAddr,
        locale: Option<&Locale>,
    ) -> Result<Sent, SendError> {
        self.send_as(phone, client, Resend::Keeps, None, locale).await
    }

    /// [`OtpService::start`], with the SMS naming `app` instead of the
    /// configured app (a Twilio Verify service's friendly name).
    ///
    /// # Errors
    /// [`SendError`] when a rule refuses it, or the store or the SMS provider fails.
    #[tracing::instrument(level = "debug", skip_all, fields(phone = %phone.masked()))]
    pub async fn start_for(
        &self,
        phone: &Phone,
        client: IpAddr,
        app: &str,
        locale: Option<&Locale>,
    ) -> Result<Sent, SendError> {
        self.send_as(phone, client, Resend::Keeps, Some(app), locale)
            .await
    }

    async fn send_as(
        &self,
        phone: &Phone,
        client: IpAddr,
        resend: Resend,
        app: Option<&str>,
        locale: Option<&Locale>,
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
        let (quotas, limits): (Vec<_>, Vec<_>) = buckets
            .into_iter()
            .filter(|(_, quota, _)| !quota.is_off())
            .map(|(bucket, quota, limit)| ((bucket, quota), limit))
            .unzip();

        let fixed = self.test_numbers.get(phone);
        let code = fixed.cloned().unwrap_or_else(Code::generate);
        let local_id = new_message_id();
        // A receipt known before sending is stored with the code: one write.
        let ahead = match fixed {
            Some(_) => Some(test_number_receipt()),
            None => self.sms.receipt_ahead(&local_id),
        };
        let sent_at = unix_now();
        let mut pending = self
            .policy
            .pending(self.hasher.ids().seal(phone), self.hasher.hash(phone, &code))
            .sent(sent_at);
        if let Some(receipt) = &ahead {
            pending = pending.with_receipt(receipt, sent_at);
        }
        // The client's and the service's quotas, the phone's limits and the
        // write: one step, and nothing taken when anything refuses.
        let opened = match self
            .store
            .admit(&quotas, phone, &pending, &self.guards.send, resend)
            .await?
        {
            Admitted::Done(opened) => opened,
            Admitted::Refused { refused, retry_after } => {
                return Err(SendError::Limited {
                    limit: limits[refused],
                    retry_after,
                })
            }
        };
        let mut verification = match opened {
            Opened::Stored(verification) => verification,
            Opened::TooSoon { retry_after } => {
                return Err(SendError::Limited {
                    limit: Limit::ResendTooSoon,
                    retry_after,
                })
            }
            Opened::QuotaExceeded { retry_after } => {
                return Err(SendError::Limited {
                    limit: Limit::PhoneQuota,
                    retry_after,
                })
            }
        };
        let sent = if fixed.is_some() {
            Ok(test_number_receipt())
        } else {
            let template = self
                .templates
                .pick(locale, phone.region())
                .unwrap_or(&self.template);
            let text = match app {
                Some(app) => template.for_app(app).render(&code, self.policy.ttl()),
                None => template.render(&code, self.policy.ttl()),
            };
            self.sms.send(phone, &text, &local_id).await
        };
        match sent {
            Ok(receipt) => {
                // A vendor's message id, or a fallback that took over, is news
                // the stored code doesn't hold yet. Failing to note it must not
                // fail the send: the code is out. The events go out beside it.
                let news = ahead.as_ref() != Some(&receipt) || receipt.tracked;
                let note = async {
                    if news {
                        let link_ttl = self.policy.ttl() + REPORT_GRACE;
                        let noted =
                            self.store
                                .record_delivery(phone, &pending.hash, &receipt, sent_at, link_ttl);
                        if let Err(e) = noted.await {
                            tracing::warn!(phone = %phone.masked(), error = %ErrorChain(&e), "could not record the delivery");
                        }
                    }
                };
                let mut sent_events = Vec::with_capacity(2);
                if verification.sends == 1 {
                    sent_events.push(EventKind::Created);
                }
                sent_events.push(EventKind::CodeSent {
                    provider: receipt.provider.clone(),
                    message_id: receipt.message_id.clone(),
                });
                let emitted = self.emit(phone, Some(&verification.id), sent_events);
                futures_util::future::join(note, emitted).await;
                if news {
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
                self.emit(phone, None, [EventKind::SendFailed]).await;
                Err(sms_error.into())
            }
        }
    }

    /// Checks `code` against the phone's pending verification; a right code
    /// ends it.
    ///
    /// # Errors
    /// [`VerifyError`] for a wrong, locked or missing code, or a store failure.
    #[tracing::instrument(level = "debug", skip_all, fields(phone = %phone.masked()))]
    pub async fn verify(&self, phone: &Phone, code: &Code, client: IpAddr) -> Result<(), VerifyError> {
        let guessed = self.check(&Target::Phone(phone.clone()), code, client).await?;
        if guessed.approved {
            return Ok(());
        }
        Err(VerifyError::Mismatch {
            attempts_remaining: guessed.verification.attempts_remaining,
        })
    }

    /// Checks `code` against a verification, by phone or by id (which
    /// carries its phone). A wrong code is an answer, not an error: it says
    /// how many attempts are left.
    ///
    /// # Errors
    /// [`VerifyError`] for a locked or missing verification, a limit, or a
    /// store failure; never [`VerifyError::Mismatch`].
    pub async fn check(&self, target: &Target, code: &Code, client: IpAddr) -> Result<Guessed, VerifyError> {
        let quota = (
            Bucket::VerifiesFrom(self.guards.client_prefixes.client(client)),
            self.guards.verifies_per_ip,
        );
        // An id that opens to no phone was never made here: no store call.
        let (phone, id) = match target {
            Target::Phone(phone) => (phone.clone(), None),
            Target::Id(id) => (self.hasher.ids().open(id).ok_or(VerifyError::NotFound)?, Some(id)),
        };
        let candidates = self.hasher.candidates(&phone, code);
        let checked = match self
            .store
            .guess(quota, &phone, id, &candidates, &self.guards.guesses)
            .await?
        {
            Admitted::Done(checked) => checked,
            Admitted::Refused { retry_after, .. } => return Err(VerifyError::Limited { retry_after }),
        };
        let (approved, events) = match checked.outcome {
            VerifyOutcome::Approved => (true, vec![EventKind::Approved]),
            VerifyOutcome::Mismatch {
                attempts_remaining,
                phone_blocked,
            } => {
                let locked = match (attempts_remaining, phone_blocked) {
                    (_, true) => Some(LockReason::GuessBudget),
                    (0, false) => Some(LockReason::Attempts),
                    _ => None,
                };
                let failed = EventKind::GuessFailed { attempts_remaining };
                let locked = locked.map(|reason| EventKind::Locked { reason });
                (false, std::iter::once(failed).chain(locked).collect())
            }
            VerifyOutcome::Locked { expires_in } => return Err(VerifyError::Locked { expires_in }),
            VerifyOutcome::NotFound => return Err(VerifyError::NotFound),
            VerifyOutcome::Throttled { retry_after } => return Err(VerifyError::GuessBudget { retry_after }),
        };
        let verification = checked.verification.ok_or(VerifyError::NotFound)?;
        self.emit(&phone, Some(&verification.id), events).await;
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
        let phone = self.hasher.ids().open(id).ok_or(StatusError::NotFound)?;
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
        let phone = self.hasher.ids().open(id).ok_or(StatusError::NotFound)?;
        let ended = self.store.end(&phone, id).await?.ok_or(StatusError::NotFound)?;
        tracing::debug!(phone = %phone.masked(), ?ending, "verification ended");
        let event = match ending {
            Ending::Cancel => EventKind::Canceled,
            Ending::Approve => EventKind::Approved,
        };
        self.emit(&phone, Some(id), [event]).await;
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
        let Some(phone) = self.store.update_delivery(&report).await? else {
            return Ok(false);
        };
        let updated = EventKind::DeliveryUpdated {
            provider: report.provider,
            message_id: report.message_id,
            state: report.state,
            error_code: report.error_code,
        };
        self.emit(&phone, None, [updated]).await;
        Ok(true)
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

fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
