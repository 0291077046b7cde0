//! The use cases, one file each: send a code (starting or continuing a
//! verification), check a code by phone or by verification, read, cancel
//! or approve a verification, report an SMS's fate. This file holds what
//! they share: the service, its guards and its errors.

mod check;
mod end;
mod fallback;
mod pumping;
mod report;
mod send;
mod spend;
mod status;

pub use check::{Guessed, Target};
pub use end::Ending;
pub use pumping::BlockedGroup;
pub use send::{SendOrder, Sent};

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::{
    Block, Breaker, Bucket, Channel, Claim, ClientNet, ClientPrefixes, Code, CodeHasher, DestinationError,
    DestinationPolicy, Event, EventKind, Group, GuessBudget, GuessCeiling, Idempotency, MessageTemplate,
    OtpPolicy, Phone, Prices, Quota, SendLimits, SmsReceipt, SpendCaps, Taken, Templates, VerificationId,
    Workflows,
};
use crate::ports::{
    ErrorChain, EventOutbox, Meter, OtpStore, SmsError, SmsSender, StoreError, VoiceCaller, WhatsappSender,
};

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
    /// Sends codes on the WhatsApp channel, when one is configured.
    whatsapp: Option<Arc<dyn WhatsappSender>>,
    /// Calls phones to read codes, when a voice vendor is configured.
    voice: Option<Arc<dyn VoiceCaller>>,
    hasher: CodeHasher,
    policy: OtpPolicy,
    template: MessageTemplate,
    /// By locale and country; without them, every message uses `template`.
    templates: Templates,
    test_numbers: HashMap<Phone, Code>,
    guards: Guards,
    /// Where events go; none configured, none are made.
    events: Option<Arc<dyn EventOutbox>>,
    /// Where the use cases' figures by country are counted.
    meter: Option<Arc<dyn Meter>>,
    idempotency_window: Duration,
    /// Moves workflows to their next channel; none, no timers run.
    fallbacks: Option<fallback::Timers>,
    /// The channels a send that names none tries, in order.
    workflows: Workflows,
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
    /// Each client's waits between wrong codes by phone.
    pub guesses: GuessBudget,
    /// The phone's ceiling of wrong codes, whoever sends them.
    pub ceiling: GuessCeiling,
    /// How a client's address names the client its quotas count for.
    pub client_prefixes: ClientPrefixes,
    /// The pumping breaker; none, off.
    pub breaker: Option<Breaker>,
    /// What each send costs, as its event says and the caps count it.
    pub prices: Prices,
    pub caps: SpendCaps,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    ResendTooSoon,
    PhoneQuota,
    /// The phone's ceiling of wrong codes has no room for a new
    /// verification's attempts.
    GuessCeiling,
    IpQuota,
    GlobalQuota,
    /// The client has sent to its share of destination countries today.
    ClientCountries,
    /// A money cap: past a hard one every send waits for its window to
    /// roll; past a soft one, sends to destinations without approved history.
    SpendCap {
        soft: bool,
        /// The destination country's own cap, not the whole service's.
        country: bool,
    },
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
    /// A resend named no pending verification of the caller's.
    #[error("there is no pending verification with this id")]
    NotFound,
    /// The pumping breaker has blocked the destination's group.
    #[error("codes to {group} are blocked for now: it has had too many codes that were never approved")]
    Blocked { group: Group, block: Block },
    /// No sender is configured for the channel asked for.
    #[error("this service sends no codes on {0}")]
    ChannelUnavailable(Channel),
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the code is wrong")]
    Mismatch { attempts_remaining: u32 },
    #[error("no attempts are left for this verification")]
    Locked { expires_in: Duration },
    #[error("this client has made too many verifications")]
    Limited { retry_after: Duration },
    #[error("too many wrong codes for now, from this client or for this phone")]
    GuessBudget { retry_after: Duration },
    #[error("there is no pending code for this phone")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("this client has asked about too many verifications")]
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
            whatsapp: None,
            voice: None,
            hasher,
            policy,
            template,
            templates: Templates::default(),
            test_numbers: HashMap::new(),
            guards: Guards::default(),
            events: None,
            meter: None,
            idempotency_window: Duration::from_secs(86_400),
            fallbacks: None,
            workflows: Workflows::default(),
        }
    }

    /// Sends codes on the WhatsApp channel through `sender`.
    pub fn with_whatsapp(mut self, sender: Arc<dyn WhatsappSender>) -> Self {
        self.whatsapp = Some(sender);
        self
    }

    /// Sends codes on the voice channel through `caller`.
    pub fn with_voice(mut self, caller: Arc<dyn VoiceCaller>) -> Self {
        self.voice = Some(caller);
        self
    }

    /// Sends that name no channel try `workflows`' in order.
    pub fn with_workflows(mut self, workflows: Workflows) -> Self {
        self.workflows = workflows;
        self
    }

    /// The channels a send to `phone` that names none tries, in order.
    pub fn workflow(&self, phone: &Phone) -> &[Channel] {
        self.workflows.for_country(phone.region())
    }

    /// Whether a code can go out on `channel`.
    pub fn sends_on(&self, channel: Channel) -> bool {
        match channel {
            Channel::Sms => true,
            Channel::Whatsapp => self.whatsapp.is_some(),
            Channel::Voice => self.voice.is_some(),
        }
    }

    /// Counts sends, approvals, blocks and spend by country in `meter`.
    pub fn with_meter(mut self, meter: Arc<dyn Meter>) -> Self {
        self.meter = Some(meter);
        self
    }

    /// Counts in the meter, if there is one.
    fn meter(&self, count: impl FnOnce(&dyn Meter)) {
        if let Some(meter) = &self.meter {
            count(meter.as_ref());
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
        self.publish(Some(phone), verification, kinds).await;
    }

    /// [`OtpService::emit`], for events of a phone or of none (an
    /// operator's act).
    async fn publish(
        &self,
        phone: Option<&Phone>,
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
                    phone.cloned(),
                    verification.map(|v| v.as_str().to_owned()),
                    kind,
                    at_ms,
                )
            })
            .collect();
        if let Err(e) = outbox.publish(&events).await {
            let phone = phone.map(Phone::masked);
            tracing::warn!(phone = ?phone, error = %ErrorChain(&e), "events were not kept");
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

    /// Whether the store answers, for readiness checks.
    ///
    /// # Errors
    /// [`StoreError`] when it doesn't, in time.
    pub async fn ping_store(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    /// What the operator should hear about the store's settings.
    pub async fn store_concerns(&self) -> Vec<String> {
        self.store.concerns().await
    }

    /// The phone a verification's id carries, if it was made here.
    pub fn phone_of(&self, id: &VerificationId) -> Option<Phone> {
        self.hasher.ids().open(id)
    }

    /// The client `ip` counts as, for its quotas and waits.
    fn client(&self, ip: IpAddr) -> ClientNet {
        self.guards.client_prefixes.client(ip)
    }

    /// Takes one from `bucket` unless `quota` is off.
    async fn take(&self, bucket: Bucket, quota: Quota) -> Result<Taken, StoreError> {
        if quota.is_off() {
            return Ok(Taken::Granted);
        }
        self.store.take(bucket, quota).await
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
