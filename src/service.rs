//! The use cases: send a code, verify a code, report a pending code's status.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::{
    Bucket, ClientPrefixes, Code, CodeHasher, DeliveryReport, DeliveryState, DestinationError,
    DestinationPolicy, Event, EventKind, GuessBudget, Issued, Locale, LockReason, MessageTemplate, OtpPolicy,
    OtpStatus, Phone, Quota, SendLimits, SmsReceipt, Taken, Templates, VerifyOutcome,
};
use crate::ports::{ErrorChain, EventOutbox, OtpStore, SmsError, SmsSender, StoreError};

/// How long after a code expires a provider's report of its SMS is still
/// taken; reports trail the message by seconds to minutes.
const REPORT_GRACE: Duration = Duration::from_secs(60);

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
    async fn emit(&self, phone: &Phone, kinds: impl IntoIterator<Item = EventKind>) {
        let Some(outbox) = &self.events else {
            return;
        };
        let at_ms = unix_now_ms();
        let events: Vec<Event> = kinds
            .into_iter()
            .map(|kind| Event::new(phone.clone(), None, kind, at_ms))
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
        self.send_in(phone, client, None).await
    }

    /// [`OtpService::send`] in the language `locale` names; without one, in
    /// the destination country's (see [`Templates::pick`]).
    ///
    /// # Errors
    /// [`SendError`] when the store or the SMS provider fails.
    #[tracing::instrument(level = "debug", skip_all, fields(phone = %phone.masked()))]
    pub async fn send_in(
        &self,
        phone: &Phone,
        client: IpAddr,
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
        let mut pending = self.policy.pending(self.hasher.hash(phone, &code));
        if let Some(receipt) = &ahead {
            pending = pending.with_receipt(receipt, sent_at);
        }
        let refused = match self.store.issue(phone, &pending, &self.guards.send).await {
            Ok(Issued::Stored) => None,
            Ok(Issued::TooSoon { retry_after }) => Some(SendError::Limited {
                limit: Limit::ResendTooSoon,
                retry_after,
            }),
            Ok(Issued::QuotaExceeded { retry_after }) => Some(SendError::Limited {
                limit: Limit::PhoneQuota,
                retry_after,
            }),
            Err(e) => Some(e.into()),
        };
        if let Some(refused) = refused {
            // Nothing was sent, so the client and the service keep their budget.
            self.give_back(&taken).await;
            return Err(refused);
        }
        let sent = if fixed.is_some() {
            Ok(test_number_receipt())
        } else {
            let template = self
                .templates
                .pick(locale, phone.region())
                .unwrap_or(&self.template);
            let text = template.render(&code, self.policy.ttl());
            self.sms.send(phone, &text, &local_id).await
        };
        match sent {
            Ok(receipt) => {
                // A vendor's message id, or a fallback that took over, is news
                // the stored code doesn't hold yet. Failing to note it must not
                // fail the send: the code is out. The events go out beside it.
                let note = async {
                    if ahead.as_ref() != Some(&receipt) || receipt.tracked {
                        let link_ttl = self.policy.ttl() + REPORT_GRACE;
                        let noted =
                            self.store
                                .record_delivery(phone, &pending.hash, &receipt, sent_at, link_ttl);
                        if let Err(e) = noted.await {
                            tracing::warn!(phone = %phone.masked(), error = %ErrorChain(&e), "could not record the delivery");
                        }
                    }
                };
                let sent_events = [
                    EventKind::Created,
                    EventKind::CodeSent {
                        provider: receipt.provider.clone(),
                        message_id: receipt.message_id.clone(),
                    },
                ];
                futures_util::future::join(note, self.emit(phone, sent_events)).await;
                Ok(Sent {
                    expires_in: self.policy.ttl(),
                    resend_after: self.guards.send.resend_after,
                    receipt,
                })
            }
            Err(sms_error) => {
                if let Err(store_error) = self.store.withdraw(phone, &pending.hash).await {
                    tracing::warn!(phone = %phone.masked(), error = %ErrorChain(&store_error), "could not withdraw the code of a failed send");
                }
                self.emit(phone, [EventKind::SendFailed]).await;
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
            VerifyOutcome::Approved => {
                self.emit(phone, [EventKind::Approved]).await;
                Ok(())
            }
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
                self.emit(phone, std::iter::once(failed).chain(locked)).await;
                Err(VerifyError::Mismatch { attempts_remaining })
            }
            VerifyOutcome::Locked { expires_in } => Err(VerifyError::Locked { expires_in }),
            VerifyOutcome::NotFound => Err(VerifyError::NotFound),
            VerifyOutcome::Throttled { retry_after } => Err(VerifyError::GuessBudget { retry_after }),
        }
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
        let Some(phone) = self.store.update_delivery(&report).await? else {
            return Ok(false);
        };
        let updated = EventKind::DeliveryUpdated {
            provider: report.provider,
            message_id: report.message_id,
            state: report.state,
            error_code: report.error_code,
        };
        self.emit(&phone, [updated]).await;
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
    pub async fn status(&self, phone: &Phone, client: IpAddr) -> Result<OtpStatus, StatusError> {
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
