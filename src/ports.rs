//! What the service needs from the outside world, as narrow traits. Adapters
//! under `adapters/` implement them; the service never knows which one runs.

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{
    Admitted, Block, Bucket, Channel, Checked, Claim, ClientNet, Code, CodeHash, DeliveryReport, DueFallback,
    Event, Fallback, Group, GroupTraffic, GuessBudget, GuessCeiling, Idempotency, Ledger, Locale, Money,
    Named, Opened, PendingOtp, Phone, Quota, Scope, SendLimits, SendMode, SmsReceipt, SmsText, Speech, Spent,
    Taken, Verification, VerifyOutcome,
};

/// What stands between a send and a stored code: the phone's cooldown and
/// quota, and its ceiling of wrong codes (which a new verification
/// reserves its attempts from).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendRules {
    pub limits: SendLimits,
    pub ceiling: GuessCeiling,
}

/// Who guesses, and what bounds them: the client's quota of verifies and
/// its waits between wrong codes by phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guesser {
    pub client: ClientNet,
    pub quota: Quota,
    pub waits: GuessBudget,
}

/// A guess: from whom, for which verification, and its candidate hashes
/// (one per hash key).
#[derive(Debug, Clone, Copy)]
pub struct Guess<'a> {
    pub scope: &'a Scope,
    pub named: Named<'a>,
    pub candidates: &'a [CodeHash],
    pub ceiling: GuessCeiling,
}

/// Where verifications live: each method applies one of the domain's rules
/// (`domain::PhoneState`) to the phone's state, as one atomic step.
#[async_trait]
pub trait Verifications: Send + Sync + 'static {
    /// [`crate::domain::PhoneState::open`] on the phone's state.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time, or has no
    /// room for a new phone.
    async fn open(
        &self,
        phone: &Phone,
        otp: &PendingOtp,
        mode: &SendMode,
        rules: &SendRules,
    ) -> Result<Opened, StoreError>;

    /// [`crate::domain::PhoneState::end`] on the phone's state.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn end(
        &self,
        phone: &Phone,
        scope: &Scope,
        id: &crate::domain::VerificationId,
    ) -> Result<Option<Verification>, StoreError>;

    /// [`crate::domain::PhoneState::check`] on the phone's state.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn check(&self, phone: &Phone, guess: &Guess<'_>) -> Result<Checked, StoreError>;

    /// The scope's verification, pending or locked: by id, or by phone its
    /// newest.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn status(
        &self,
        phone: &Phone,
        scope: &Scope,
        named: Named<'_>,
    ) -> Result<Option<Verification>, StoreError>;

    /// Takes back the code hashed as `hash` from its verification, and its
    /// send, so withdrawing a failed send never removes a newer code; a
    /// verification left without codes is gone.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn withdraw(&self, phone: &Phone, hash: &CodeHash) -> Result<(), StoreError>;

    /// Forgets the wrong codes the phone's ceiling counts, for an operator
    /// to let its owner in again. Says whether there were any.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn clear_guesses(&self, phone: &Phone) -> Result<bool, StoreError>;
}

/// Windowed counters and a client's waits between wrong codes: the quotas
/// and `domain::ClientGuesses`, kept apart from the codes so a flood of
/// clients can't crowd them out.
#[async_trait]
pub trait Counters: Send + Sync + 'static {
    /// Takes one from `bucket` if it has fewer than `quota.limit` in the
    /// current window; the window starts with the first one taken.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time, or has no
    /// room to count a new client.
    async fn take(&self, bucket: Bucket, quota: Quota) -> Result<Taken, StoreError>;

    /// Returns one taken from `bucket`, for a request refused further on.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn give_back(&self, bucket: Bucket) -> Result<(), StoreError>;

    /// How long `client` must wait before its next guess by phone is heard
    /// ([`crate::domain::ClientGuesses::wait`]).
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn client_wait(
        &self,
        client: ClientNet,
        waits: &GuessBudget,
    ) -> Result<Option<Duration>, StoreError>;

    /// Counts a guess by phone of `client`'s: a wrong one grows its wrong
    /// guesses in a row, a right one clears them.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time, or has no
    /// room to count a new client.
    async fn note_guess(&self, client: ClientNet, right: bool, waits: &GuessBudget)
        -> Result<(), StoreError>;
}

/// What the SMS providers said of each code's message.
#[async_trait]
pub trait Deliveries: Send + Sync + 'static {
    /// Notes who took the SMS for the code hashed as `hash`, as `queued` at
    /// unix second `at`, if it is still its verification's newest code.
    /// A tracked message is also linked to its phone for `link_ttl`, so the
    /// provider's reports can find it.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn record_delivery(
        &self,
        phone: &Phone,
        hash: &CodeHash,
        receipt: &SmsReceipt,
        at: u64,
        link_ttl: Duration,
    ) -> Result<(), StoreError>;

    /// Applies a provider's report to the message it names, if that message
    /// is still linked and the report moves its state forward. Names the
    /// message's phone and its verification, as the report left it, when
    /// anything changed.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn update_delivery(
        &self,
        report: &DeliveryReport,
    ) -> Result<Option<(Phone, Verification)>, StoreError>;
}

/// Requests' idempotency keys and the answers kept for their retries.
#[async_trait]
pub trait IdempotencyKeys: Send + Sync + 'static {
    /// Claims an idempotency key for a request in one atomic step: the
    /// first claim holds it for `hold` (while it is answered); a later one
    /// learns whether it is still held, was used for another request, or
    /// what the first answer was.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn claim(&self, idempotency: &Idempotency, hold: Duration) -> Result<Claim, StoreError>;

    /// Keeps the answer of a claimed request for `window`, for its retries.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn settle(
        &self,
        idempotency: &Idempotency,
        answer: &str,
        window: Duration,
    ) -> Result<(), StoreError>;

    /// Lets a claimed key go unanswered (the request failed), so a retry
    /// may try again.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn release(&self, idempotency: &Idempotency) -> Result<(), StoreError>;
}

/// A send for the pumping breaker to count: its phone's groups, and the
/// country to note for its client's day.
#[derive(Debug, Clone, Copy)]
pub struct SendToCount<'a> {
    pub groups: &'a [Group],
    /// Per group: whether its block, while on, holds the send back; then
    /// no group is counted (`domain::Breaker::holds`).
    pub holds: &'a [bool],
    pub country: Option<CountryNote<'a>>,
}

/// A destination country for `client`'s day, which lasts `window` from its
/// first.
#[derive(Debug, Clone, Copy)]
pub struct CountryNote<'a> {
    pub client: ClientNet,
    pub country: &'a str,
    pub window: Duration,
}

/// What a counted send found: the store's unix ms, each group's counts
/// after it, and the client's countries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendCounts {
    pub at_ms: u64,
    pub traffic: Vec<GroupTraffic>,
    /// A block that holds was on: no group was counted.
    pub held: bool,
    pub countries: Option<CountriesNoted>,
}

/// A client's countries of the day, after one was noted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountriesNoted {
    pub new: bool,
    /// The country's place in the client's day, first sent first: what
    /// the client rule judges, so concurrent sends to a new country all
    /// see it past the share, not only the one that added it.
    pub place: u32,
    pub day_left: Duration,
}

/// What the pumping breaker counts (`domain::Breaker`): sends and
/// approvals per destination group, and the groups' blocks. The store
/// only counts and keeps; the breaker decides. Each call takes the groups
/// of one phone, which share its country (and a store's slot).
#[async_trait]
pub trait Traffic: Send + Sync + 'static {
    /// Counts a send for each of its groups in the current hour (unless a
    /// block that holds it is on) and, when it names one, notes its country
    /// for its client's day; answers the store's unix ms, what each group
    /// holds after it, and the client's countries.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time, or has no
    /// room for a new group or client.
    async fn count_send(&self, send: &SendToCount<'_>) -> Result<SendCounts, StoreError>;

    /// Takes back a send counted at unix ms `at_ms` that went no further.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn uncount_send(&self, groups: &[Group], at_ms: u64) -> Result<(), StoreError>;

    /// Counts an approval for each of `groups`, in its hour and its day.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn count_approval(&self, groups: &[Group]) -> Result<(), StoreError>;

    /// Forgets the group's sends and approvals by the hour (its history
    /// by the day stays), for an operator who says its traffic is real.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn forget_hours(&self, group: &Group) -> Result<(), StoreError>;

    /// Starts `block` as the group's, unless a block of the group is on at
    /// its start (two sends that trip at once start one block). Says
    /// whether it started.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn start_block(&self, group: &Group, block: &Block) -> Result<bool, StoreError>;

    /// Keeps `block` as the group's, in place of any before it (an
    /// operator's unblock).
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn set_block(&self, group: &Group, block: &Block) -> Result<(), StoreError>;

    /// Takes `country` back from `client`'s day, for a send refused.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn forget_country(&self, client: ClientNet, country: &str) -> Result<(), StoreError>;

    /// Every group blocked since unix ms `since_ms`, with what it holds.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn blocks(&self, since_ms: u64) -> Result<Vec<(Group, GroupTraffic)>, StoreError>;
}

/// What was spent on sends (`domain::SpendCaps`): a total per ledger,
/// kept until its window ends. The store only adds; the caps decide.
#[async_trait]
pub trait Spending: Send + Sync + 'static {
    /// Adds `cost` to each ledger's total (each kept until its window
    /// ends) as one step, unless that would take one past its limit
    /// (`limits`, per ledger; `None`: none): then adds to none
    /// (`domain::add_within`). Answers the totals after, in the ledgers'
    /// order, and the first ledger that refused.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time, or has no
    /// room for a new ledger.
    async fn spend(
        &self,
        ledgers: &[Ledger],
        cost: Money,
        limits: &[Option<Money>],
    ) -> Result<Spent, StoreError>;

    /// Takes a failed send's `cost` back from each ledger, never below 0.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn refund(&self, ledgers: &[Ledger], cost: Money) -> Result<(), StoreError>;

    /// Whether this is the first call naming `notice` (a ledger's limit,
    /// `CapReached::notice`) before unix ms `ends_ms`: what is told once
    /// per window is told by the one caller that gets `true`.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn first_notice(&self, notice: &str, ends_ms: u64) -> Result<bool, StoreError>;
}

/// What the use cases count for operators, by destination country (ISO, or
/// `none`): a bounded label set, whatever the traffic. The HTTP edge
/// counts requests and their answers; this counts what they did.
pub trait Meter: Send + Sync + 'static {
    /// A code was handed to a vendor, at the price table's cost (test
    /// numbers are not counted).
    fn code_sent(&self, country: &str, cost: Money);

    /// A code was approved by its right code.
    fn code_approved(&self, country: &str);

    /// A workflow sent a code on its next `channel`, for `why`.
    fn fell_back(&self, channel: Channel, why: Fallback);

    /// The pumping breaker blocked a group of the country, or would have
    /// (`enforced` false: monitor mode).
    fn blocked(&self, group: &Group, enforced: bool);
}

/// Everything otpd keeps: each part, and the steps that span them (a
/// send's quotas with its code, a guess's counters with its check), which
/// a store that can take them in one atomic call overrides. Every method
/// is one atomic step, so any number of service instances can share one
/// store.
#[async_trait]
pub trait OtpStore: Verifications + Counters + Deliveries + IdempotencyKeys + Traffic + Spending {
    /// Takes one from each of `quotas`' buckets, then [`Verifications::open`]s,
    /// as one step: a bucket that has none left, or a refusal by the
    /// phone's rules, leaves every bucket as it was. A store that can do
    /// it all in one atomic call overrides this.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn admit(
        &self,
        quotas: &[(Bucket, Quota)],
        phone: &Phone,
        otp: &PendingOtp,
        mode: &SendMode,
        rules: &SendRules,
    ) -> Result<Admitted<Opened>, StoreError> {
        admit_in_steps(self, quotas, phone, otp, mode, rules).await
    }

    /// [`OtpStore::admit`] and, for a code it stored, the pumping
    /// breaker's [`Traffic::count_send`], as one step: a send another rule
    /// refuses is never counted, and a stored code whose count can't be
    /// kept is withdrawn. A store that can do both in one atomic call
    /// overrides this.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn admit_and_count(
        &self,
        quotas: &[(Bucket, Quota)],
        phone: &Phone,
        otp: &PendingOtp,
        mode: &SendMode,
        rules: &SendRules,
        count: Option<&SendToCount<'_>>,
    ) -> Result<Admitted<(Opened, Option<SendCounts>)>, StoreError> {
        admit_and_count_in_steps(self, quotas, phone, otp, mode, rules, count).await
    }

    /// The guesser's quota, its waits (by phone) and the check as one step:
    /// a guess the quota or the waits refuse, or whose count could not be
    /// kept, is not compared. A store that can do it in one atomic call
    /// overrides this.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    async fn guess(
        &self,
        guesser: &Guesser,
        phone: &Phone,
        guess: &Guess<'_>,
    ) -> Result<Admitted<Checked>, StoreError> {
        guess_in_steps(self, guesser, phone, guess).await
    }

    /// Checks that the store answers.
    ///
    /// # Errors
    /// [`StoreError`] when it doesn't, in time.
    async fn ping(&self) -> Result<(), StoreError>;

    /// What the operator should hear about the store's own settings, read
    /// at start: each a sentence naming the setting (none by default).
    async fn concerns(&self) -> Vec<String> {
        Vec::new()
    }
}

/// [`OtpStore::admit`] as separate calls: the takes together (on a
/// cluster their keys live on different nodes), then the open; whatever was
/// taken is given back when anything refuses.
///
/// # Errors
/// [`StoreError`] when the store can't be reached in time.
pub async fn admit_in_steps<S: OtpStore + ?Sized>(
    store: &S,
    quotas: &[(Bucket, Quota)],
    phone: &Phone,
    otp: &PendingOtp,
    mode: &SendMode,
    rules: &SendRules,
) -> Result<Admitted<Opened>, StoreError> {
    let takes = quotas.iter().map(|(bucket, quota)| store.take(*bucket, *quota));
    let taken = futures_util::future::join_all(takes).await;
    let granted: Vec<Bucket> = quotas
        .iter()
        .zip(&taken)
        .filter(|(_, t)| matches!(t, Ok(Taken::Granted)))
        .map(|((bucket, _), _)| *bucket)
        .collect();
    let give_back = || async {
        for bucket in &granted {
            // One not given back only makes its client wait longer.
            if let Err(e) = store.give_back(*bucket).await {
                tracing::warn!(error = %ErrorChain(&e), "could not give back a quota");
            }
        }
    };
    for (refused, result) in taken.into_iter().enumerate() {
        let refusal = match result {
            Ok(Taken::Granted) => continue,
            Ok(Taken::Exhausted { retry_after }) => Ok(Admitted::Refused { refused, retry_after }),
            Err(e) => Err(e),
        };
        give_back().await;
        return refusal;
    }
    let opened = store.open(phone, otp, mode, rules).await;
    if !matches!(opened, Ok(Opened::Stored(_))) {
        give_back().await;
    }
    opened.map(Admitted::Done)
}

/// [`OtpStore::admit_and_count`] as calls one after the other.
///
/// # Errors
/// [`StoreError`] when the store can't be reached in time.
pub async fn admit_and_count_in_steps<S: OtpStore + ?Sized>(
    store: &S,
    quotas: &[(Bucket, Quota)],
    phone: &Phone,
    otp: &PendingOtp,
    mode: &SendMode,
    rules: &SendRules,
    count: Option<&SendToCount<'_>>,
) -> Result<Admitted<(Opened, Option<SendCounts>)>, StoreError> {
    let opened = match store.admit(quotas, phone, otp, mode, rules).await? {
        Admitted::Done(opened) => opened,
        Admitted::Refused { refused, retry_after } => return Ok(Admitted::Refused { refused, retry_after }),
    };
    let (Opened::Stored(_), Some(count)) = (&opened, count) else {
        return Ok(Admitted::Done((opened, None)));
    };
    match store.count_send(count).await {
        Ok(counts) => Ok(Admitted::Done((opened, Some(counts)))),
        Err(e) => {
            if let Err(w) = store.withdraw(phone, &otp.hash).await {
                tracing::warn!(error = %ErrorChain(&w), "could not withdraw a code the breaker could not count");
            }
            Err(e)
        }
    }
}

/// [`OtpStore::guess`] as calls one after the other: the quota and the
/// client's waits must allow the guess before it is checked, and a guess
/// by phone is counted for the client after.
///
/// # Errors
/// [`StoreError`] when the store can't be reached in time.
pub async fn guess_in_steps<S: OtpStore + ?Sized>(
    store: &S,
    guesser: &Guesser,
    phone: &Phone,
    guess: &Guess<'_>,
) -> Result<Admitted<Checked>, StoreError> {
    if !guesser.quota.is_off() {
        let bucket = Bucket::VerifiesFrom(guesser.client);
        if let Taken::Exhausted { retry_after } = store.take(bucket, guesser.quota).await? {
            return Ok(Admitted::Refused {
                refused: 0,
                retry_after,
            });
        }
    }
    let by_phone = guess.named == Named::ByPhone && !guesser.waits.is_off();
    if by_phone {
        if let Some(retry_after) = store.client_wait(guesser.client, &guesser.waits).await? {
            return Ok(Admitted::Done(Checked {
                outcome: VerifyOutcome::Throttled { retry_after },
                verification: None,
            }));
        }
    }
    let checked = store.check(phone, guess).await?;
    if by_phone {
        let right = match checked.outcome {
            VerifyOutcome::Approved => Some(true),
            VerifyOutcome::Mismatch { .. } => Some(false),
            _ => None,
        };
        if let Some(right) = right {
            store.note_guess(guesser.client, right, &guesser.waits).await?;
        }
    }
    Ok(Admitted::Done(checked))
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store did not answer within {0} ms")]
    Timeout(u64),
    /// The store could not be reached or failed the call; the source says
    /// why (log it with its chain). It names no URL, so no password.
    #[error("the store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the store holds {0} entries, its limit")]
    Full(usize),
}

/// Where events wait for the app's endpoints (`adapters/events`).
#[async_trait]
pub trait EventOutbox: Send + Sync + 'static {
    /// Keeps `events` durably until every endpoint that wants them has
    /// taken them; delivery happens elsewhere, later, at least once.
    ///
    /// # Errors
    /// [`OutboxError`] when they could not be kept.
    async fn publish(&self, events: &[Event]) -> Result<(), OutboxError>;
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("the event outbox holds {0} events, its limit")]
    Full(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Sends a code in a WhatsApp authentication message: a template the
/// operator had approved by Meta, in the message's language, with the code
/// in its body and on its copy-code button.
#[async_trait]
pub trait WhatsappSender: Send + Sync + 'static {
    /// Sends `code` to `to` in the template for `locale` (or the default
    /// language's), and says who took it and under which id; `local_id` as
    /// for [`SmsSender::send`].
    ///
    /// # Errors
    /// [`SmsError::Rejected`] when the vendor refuses the number itself,
    /// [`SmsError::Failed`] when no message could be sent for another reason.
    async fn send(
        &self,
        to: &Phone,
        code: &Code,
        locale: Option<&Locale>,
        local_id: &str,
    ) -> Result<SmsReceipt, SmsError>;
}

/// Calls a phone and reads it a code.
#[async_trait]
pub trait VoiceCaller: Send + Sync + 'static {
    /// Calls `to` and says `speech`, and says who placed the call and
    /// under which id; `local_id` as for [`SmsSender::send`].
    ///
    /// # Errors
    /// [`SmsError::Rejected`] when the vendor refuses the number itself,
    /// [`SmsError::Failed`] when no call could be placed for another reason.
    async fn call(&self, to: &Phone, speech: &Speech, local_id: &str) -> Result<SmsReceipt, SmsError>;
}

/// Holds workflows' fallbacks until they fall due, then hands each to
/// `OtpService::fall_back`. In-process: a restart forgets what it held.
pub trait FallbackTimers: Send + Sync + 'static {
    /// Holds `due` for `wait`; `false` when it has no room for it.
    fn hold(&self, due: DueFallback, wait: Duration) -> bool;
}

/// Sends one text message.
#[async_trait]
pub trait SmsSender: Send + Sync + 'static {
    /// Sends `text` to `to`, and says who took it and under which id.
    /// `local_id` is the service's own name for the message, the id a sender
    /// reports when its provider names no messages (the console).
    ///
    /// # Errors
    /// [`SmsError::Rejected`] when the provider refuses the number itself,
    /// [`SmsError::Failed`] when no message could be sent for another reason.
    async fn send(&self, to: &Phone, text: &SmsText, local_id: &str) -> Result<SmsReceipt, SmsError>;

    /// The receipt a successful send with `local_id` gives, when that is known
    /// before sending (the console's, which names a message by the service's
    /// id). An optimisation: the code is then stored with its delivery in one
    /// write, and a send is one store round trip instead of two
    /// (docs/performance.md). A vendor names its messages only when it
    /// answers: `None`, and the service records the receipt after the send.
    fn receipt_ahead(&self, _local_id: &str) -> Option<SmsReceipt> {
        None
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SmsError {
    #[error("{provider} rejected the number ({vendor_code}): {message}")]
    Rejected {
        provider: String,
        vendor_code: String,
        message: String,
    },
    #[error("{provider} sent no message: {reason}")]
    Failed {
        provider: String,
        reason: String,
        /// A try got no answer in time: the vendor may have sent it all
        /// the same, so its cost stays counted.
        maybe_sent: bool,
        /// The error beneath, when there was one (a connection refused).
        #[source]
        cause: Option<Cause>,
    },
}

/// An error beneath another, kept for the logs; shared, so the error above
/// stays cheap to clone.
#[derive(Debug, Clone)]
pub struct Cause(std::sync::Arc<dyn std::error::Error + Send + Sync>);

impl Cause {
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(e))
    }

    /// The error itself, for an adapter that asks what kind it is.
    pub fn error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self.0.as_ref()
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// An error and every error beneath it, `a: b: c`, for a log field: the
/// logs' JSON format prints only an error's own message.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_send_keeps_its_cause_for_the_logs() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let e = SmsError::Failed {
            provider: "twilio".into(),
            reason: "the request got no answer (after 3 tries)".into(),
            maybe_sent: false,
            cause: Some(Cause::new(refused)),
        };
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(
            ErrorChain(&e).to_string(),
            "twilio sent no message: the request got no answer (after 3 tries): connection refused"
        );
        let store = StoreError::Unavailable("no connection to Redis could be made in time".into());
        assert_eq!(
            ErrorChain(&store).to_string(),
            "the store is unavailable: no connection to Redis could be made in time"
        );
    }
}
