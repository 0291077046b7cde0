//! Send a code: start a verification, or add a code to one (a resend).

use std::net::IpAddr;
use std::time::Duration;

use super::pumping::CountAsk;
use super::{new_message_id, test_number_receipt, unix_now, Limit, OtpService, SendError, REPORT_GRACE};
use crate::domain::{
    Admitted, Bucket, Channel, Code, Delivery, EventKind, Fallback, Locale, Money, Opened, PendingOtp, Phone,
    Scope, SendLimits, SendMode, SmsReceipt, Speech, Verification,
};
use crate::ports::{ErrorChain, SendCounts, SendRules, SmsError};

/// A send as a caller asks for it.
#[derive(Debug, Clone)]
pub struct SendOrder<'a> {
    pub phone: &'a Phone,
    /// Who asks; none for the service's own send (a workflow's fallback),
    /// which no client's quota counts.
    pub client: Option<IpAddr>,
    /// Who asks: the only caller told the verification's id.
    pub scope: &'a Scope,
    pub mode: SendMode,
    /// The SMS's language; without one, the destination country's.
    pub locale: Option<&'a Locale>,
    /// Names the app in the SMS instead of the configured one (a Twilio
    /// Verify service's friendly name).
    pub app: Option<&'a str>,
    /// How the code goes: an SMS, a WhatsApp message or a call; none (a
    /// resend): where its verification goes next (`PendingOtp::channel`).
    pub channel: Option<Channel>,
    /// A new verification's workflow after `channel`: where it falls back.
    pub then: Vec<Channel>,
    /// Why the service itself sends it, for a workflow's fallback.
    pub fallback: Option<Fallback>,
}

/// A code that is on its way to the phone.
#[derive(Debug, Clone)]
pub struct Sent {
    pub channel: Channel,
    pub expires_in: Duration,
    /// When the next code for this phone may be asked for.
    pub resend_after: Duration,
    pub receipt: SmsReceipt,
    /// The verification the code belongs to, new or resent.
    pub verification: Verification,
}

impl OtpService {
    /// Makes a new code and texts it, as `order.mode` says. The code is
    /// stored before the SMS goes out, so a fast user can't beat the
    /// store; a send that fails withdraws it, so no code stays pending
    /// that nobody received.
    ///
    /// # Errors
    /// [`SendError`] when a rule refuses it, or the store or the SMS provider fails.
    #[tracing::instrument(level = "debug", skip_all, fields(phone = %order.phone.masked()))]
    pub async fn send(&self, order: SendOrder<'_>) -> Result<Sent, SendError> {
        let phone = order.phone;
        // Before anything is taken: a channel nothing sends on costs nothing.
        if let Some(channel) = order
            .channel
            .iter()
            .chain(&order.then)
            .find(|c| !self.sends_on(**c))
        {
            return Err(SendError::ChannelUnavailable(*channel));
        }
        // A test number is never texted: the rules that guard phones and
        // the bill have nothing to guard, and app-store reviewers and CI
        // sign in with it many times a day. Its guesses keep every limit.
        let fixed = self.test_numbers.get(phone);
        if fixed.is_none() {
            self.guards.destinations.check(phone)?;
        }
        // Admitted (quotas, cooldown, the phone's rules, the write) and then
        // counted by the pumping breaker, in one step where the store can:
        // a send another rule refuses is never counted, so a flood of
        // refused sends can't trip a block. The breaker judges after.
        let ask = match fixed {
            Some(_) => None,
            None => self.count_ask(phone, order.client.map(|ip| self.client(ip))),
        };
        let mut admission = self.admit(&order, fixed, ask.as_ref()).await?;
        let counts = admission.counts.take();
        let counted = match (&ask, &counts) {
            (Some(ask), Some(counts)) => Some(self.counted(ask, counts)),
            _ => None,
        };
        // Charged before the breaker judges: a send the caps refuse is
        // taken back before it can trip a block, so a flood the caps
        // refuse blocks nothing. A send they refuse costs nothing.
        let charged = match fixed {
            Some(_) => None,
            None => match self
                .charge(phone, admission.channel(), self.known(phone, counted.as_ref()))
                .await
            {
                Ok(charged) => charged,
                Err(refused) => {
                    // The caps are the service's, not the client's doing:
                    // what the send took of the quotas goes back, so a
                    // flood the caps refuse can't spend the hourly budget
                    // that returning users need.
                    let uncounted = async {
                        if let Some(counted) = &counted {
                            self.uncount(counted).await;
                        }
                    };
                    let given_back = self.give_back_quotas(&admission);
                    futures_util::future::join(uncounted, given_back).await;
                    self.withdraw(phone, &admission).await;
                    return Err(refused);
                }
            },
        };
        if let (Some(ask), Some(counts), Some(counted)) = (&ask, counts, &counted) {
            if let Err(refused) = self.screen(phone, ask, counts, counted).await {
                if let Some(charged) = &charged {
                    self.refund(charged).await;
                }
                self.withdraw(phone, &admission).await;
                return Err(refused);
            }
        }
        let carry_on = self.carry_on(&order, &admission);
        let sent = self.text(&order, fixed, admission).await;
        // A vendor that gave no answer in time may have sent it: its cost
        // and its count stay.
        let maybe_sent = matches!(
            sent,
            Err(SendError::Sms(SmsError::Failed { maybe_sent: true, .. }))
        );
        if sent.is_err() && !maybe_sent {
            let uncounted = async {
                if let Some(counted) = &counted {
                    self.uncount(counted).await;
                }
            };
            let refunded = async {
                if let Some(charged) = &charged {
                    self.refund(charged).await;
                }
            };
            futures_util::future::join(uncounted, refunded).await;
        }
        // A vendor that refused the message (not on WhatsApp, a number it
        // won't call) moves the workflow on at once, in this request.
        if let (Err(SendError::Sms(_)), false, Some(next)) = (&sent, maybe_sent, carry_on) {
            let order = SendOrder {
                mode: next.mode,
                channel: Some(next.channel),
                then: next.then,
                fallback: Some(Fallback::Undelivered),
                ..order
            };
            return Box::pin(self.send(order)).await;
        }
        sent
    }

    /// Where a workflow goes if the vendor refuses this admitted send: a
    /// new verification's next channel, with the rest of its workflow (the
    /// failed one's code is withdrawn and, with no other code, it is
    /// gone); or the verification's own next channel, after the send that
    /// no vendor took (`after`: its id when it was known ahead, else none).
    fn carry_on(&self, order: &SendOrder<'_>, admission: &Admission) -> Option<NextSend> {
        let v = &admission.verification;
        if v.sends == 1 {
            let (channel, then) = order.then.split_first()?;
            return Some(NextSend {
                mode: order.mode.clone(),
                channel: *channel,
                then: then.to_vec(),
            });
        }
        let after = admission
            .ahead
            .as_ref()
            .map(|r| r.message_id.clone())
            .unwrap_or_default();
        Some(NextSend {
            mode: SendMode::Fallback {
                id: v.id.clone(),
                after,
            },
            channel: *v.next.first()?,
            then: Vec::new(),
        })
    }

    /// The client's and the service's quotas, the phone's rules and the
    /// write: one step, and nothing taken when anything refuses.
    async fn admit(
        &self,
        order: &SendOrder<'_>,
        fixed: Option<&Code>,
        ask: Option<&CountAsk>,
    ) -> Result<Admission, SendError> {
        let phone = order.phone;
        let client = order.client.map(|ip| {
            (
                Bucket::SendsFrom(self.client(ip)),
                self.guards.sends_per_ip,
                Limit::IpQuota,
            )
        });
        let global = (Bucket::GlobalSends, self.guards.global_sends, Limit::GlobalQuota);
        let (quotas, limits): (Vec<_>, Vec<_>) = client
            .into_iter()
            .chain([global])
            .filter(|(_, quota, _)| fixed.is_none() && !quota.is_off())
            .map(|(bucket, quota, limit)| ((bucket, quota), limit))
            .unzip();

        let code = fixed.cloned().unwrap_or_else(Code::generate);
        let local_id = new_message_id();
        // A receipt known before sending is stored with the code: one write.
        let ahead = match fixed {
            Some(_) => Some(test_number_receipt()),
            None => self.sms.receipt_ahead(&local_id),
        };
        let sent_at = unix_now();
        let id = match &order.mode {
            SendMode::Resend(id) | SendMode::Fallback { id, .. } => id.clone(),
            _ => self.hasher.ids().seal(phone),
        };
        let mut pending = self
            .policy
            .pending(id, order.scope.clone(), self.hasher.hash(phone, &code))
            .on(order.channel)
            .then(order.then.clone())
            .sent(sent_at);
        if let Some(receipt) = &ahead {
            pending = pending.with_receipt(receipt, sent_at);
        }
        let rules = SendRules {
            limits: match (fixed, order.fallback) {
                (Some(_), _) => SendLimits::OFF,
                // A workflow moving on waits for no cooldown (the last
                // message reached no one); the phone's quota counts it.
                (None, Some(_)) => SendLimits {
                    resend_after: Duration::ZERO,
                    ..self.guards.send
                },
                (None, None) => self.guards.send,
            },
            ceiling: self.guards.ceiling,
        };
        let count = ask.map(CountAsk::as_send);
        let (opened, counts) = match self
            .store
            .admit_and_count(&quotas, phone, &pending, &order.mode, &rules, count.as_ref())
            .await?
        {
            Admitted::Done(done) => done,
            Admitted::Refused { refused, retry_after } => {
                return Err(SendError::Limited {
                    limit: limits[refused],
                    retry_after,
                })
            }
        };
        let limited = |limit, retry_after| Err(SendError::Limited { limit, retry_after });
        let verification = match opened {
            Opened::Stored(verification) => verification,
            Opened::TooSoon { retry_after } => return limited(Limit::ResendTooSoon, retry_after),
            Opened::QuotaExceeded { retry_after } => return limited(Limit::PhoneQuota, retry_after),
            Opened::GuessCeiling { retry_after } => return limited(Limit::GuessCeiling, retry_after),
            Opened::NotFound => return Err(SendError::NotFound),
        };
        Ok(Admission {
            verification,
            counts,
            quotas: quotas.iter().map(|(bucket, _)| *bucket).collect(),
            pending,
            code,
            local_id,
            ahead,
            sent_at,
        })
    }

    /// Gives back what an admitted send took of the client's and the
    /// service's quotas.
    async fn give_back_quotas(&self, admission: &Admission) {
        for bucket in &admission.quotas {
            if let Err(e) = self.store.give_back(*bucket).await {
                tracing::warn!(error = %ErrorChain(&e), "could not give back a quota");
            }
        }
    }

    /// Takes back an admitted code that will not be texted.
    async fn withdraw(&self, phone: &Phone, admission: &Admission) {
        if let Err(e) = self.store.withdraw(phone, &admission.pending.hash).await {
            tracing::warn!(phone = %phone.masked(), error = %ErrorChain(&e), "could not withdraw the code of a send that did not go");
        }
    }

    /// Texts an admitted code, and notes who took it.
    async fn text(
        &self,
        order: &SendOrder<'_>,
        fixed: Option<&Code>,
        admission: Admission,
    ) -> Result<Sent, SendError> {
        let phone = order.phone;
        // The store named the channel of a resend that named none.
        let channel = admission
            .verification
            .channels
            .last()
            .copied()
            .unwrap_or_default();
        if !self.sends_on(channel) {
            self.withdraw(phone, &admission).await;
            return Err(SendError::ChannelUnavailable(channel));
        }
        let sent = match (fixed, channel, &self.whatsapp, &self.voice) {
            (Some(_), ..) => Ok(test_number_receipt()),
            (None, Channel::Whatsapp, Some(whatsapp), _) => {
                let locale = self.templates.locale_for(order.locale, phone.region());
                whatsapp
                    .send(phone, &admission.code, locale, &admission.local_id)
                    .await
            }
            (None, Channel::Voice, _, Some(voice)) => {
                let locale = self.templates.locale_for(order.locale, phone.region());
                let speech = Speech::of(&admission.code, locale);
                voice.call(phone, &speech, &admission.local_id).await
            }
            _ => {
                let template = self
                    .templates
                    .pick(order.locale, phone.region())
                    .unwrap_or(&self.template);
                let text = match order.app {
                    Some(app) => template.for_app(app).render(&admission.code, self.policy.ttl()),
                    None => template.render(&admission.code, self.policy.ttl()),
                };
                self.sms.send(phone, &text, &admission.local_id).await
            }
        };
        let receipt = match sent {
            Ok(receipt) => receipt,
            Err(sms_error) => {
                self.withdraw(phone, &admission).await;
                self.emit(phone, None, [EventKind::SendFailed]).await;
                return Err(sms_error.into());
            }
        };
        let Admission {
            mut verification,
            pending,
            ahead,
            sent_at,
            ..
        } = admission;
        // A vendor's message id, or a fallback that took over, is news the
        // stored code doesn't hold yet. Failing to note it must not fail the
        // send: the code is out. The events go out beside it.
        let news = ahead.as_ref() != Some(&receipt) || receipt.tracked;
        let note = async {
            if news {
                let link_ttl = self.policy.ttl() + REPORT_GRACE;
                let noted = self
                    .store
                    .record_delivery(phone, &pending.hash, &receipt, sent_at, link_ttl);
                if let Err(e) = noted.await {
                    tracing::warn!(phone = %phone.masked(), error = %ErrorChain(&e), "could not record the delivery");
                }
            }
        };
        let cost = if fixed.is_some() {
            Money::ZERO
        } else {
            let cost = self.price(phone, channel);
            self.meter(|m| m.code_sent(phone.region().unwrap_or("none"), cost));
            cost
        };
        if let Some(why) = order.fallback {
            self.meter(|m| m.fell_back(channel, why));
        }
        let mut sent_events = Vec::with_capacity(2);
        if verification.sends == 1 {
            sent_events.push(EventKind::Created);
        }
        sent_events.push(EventKind::CodeSent {
            channel,
            fallback: order.fallback,
            provider: receipt.provider.clone(),
            message_id: receipt.message_id.clone(),
            // A test number is never texted: it costs nothing.
            cost,
            currency: self.guards.prices.currency.clone(),
        });
        let emitted = self.emit(phone, Some(&verification.id), sent_events);
        futures_util::future::join(note, emitted).await;
        if news {
            verification.delivery = Some(Delivery::queued(&receipt, sent_at));
        }
        // The next channel waits for this message's delivered report.
        if fixed.is_none() {
            self.schedule_fallback(phone, &verification, &receipt.message_id, Fallback::NoReport);
        }
        Ok(Sent {
            channel,
            expires_in: self.policy.ttl(),
            resend_after: self.guards.send.resend_after,
            receipt,
            verification,
        })
    }
}

impl Admission {
    /// The channel the code goes on: the order's, or the one the store
    /// named for a resend that named none.
    fn channel(&self) -> Channel {
        self.verification.channels.last().copied().unwrap_or_default()
    }
}

/// The send a workflow goes on with after a vendor's refusal.
struct NextSend {
    mode: SendMode,
    channel: Channel,
    then: Vec<Channel>,
}

/// A code stored and its verification, not yet texted.
struct Admission {
    verification: Verification,
    /// What the breaker's count found, when it counted the send.
    counts: Option<SendCounts>,
    /// The quotas' buckets the send took one from.
    quotas: Vec<Bucket>,
    pending: PendingOtp,
    code: Code,
    local_id: String,
    ahead: Option<SmsReceipt>,
    sent_at: u64,
}
