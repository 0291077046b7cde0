//! The money caps around a send: its cost added to its ledgers, the caps
//! judge (`domain::SpendCaps`), and the cost taken back from a send that
//! is refused or fails.

use std::time::Duration;

use super::{unix_now_ms, Limit, OtpService, SendError};
use crate::domain::{CapLevel, CapReached, Channel, EventKind, Ledger, Money, Phone, SpendCaps};
use crate::ports::ErrorChain;

/// A send's cost, added to its ledgers.
pub(super) struct Charged {
    ledgers: Vec<Ledger>,
    cost: Money,
}

impl OtpService {
    /// What a send to `phone` on `channel` costs, by the price tables.
    pub(super) fn price(&self, phone: &Phone, channel: Channel) -> Money {
        self.guards.prices.of(phone, channel)
    }

    /// Adds a send's cost to its ledgers unless that would pass a hard
    /// limit, or a soft one when its destination is not `known` (has no
    /// approved history): then it is refused and nothing is added. Each
    /// limit reached is logged and told (`spend.cap_reached`) once in its
    /// window.
    ///
    /// # Errors
    /// [`SendError::Limited`] for a send the caps refuse, and
    /// [`SendError::Store`] when the spend can't be kept: caps that can't
    /// count fail closed.
    pub(super) async fn charge(
        &self,
        phone: &Phone,
        channel: Channel,
        known: bool,
    ) -> Result<Option<Charged>, SendError> {
        let caps = &self.guards.caps;
        if caps.is_off() {
            return Ok(None);
        }
        let now_ms = unix_now_ms();
        let charged = Charged {
            ledgers: caps.ledgers(phone.region().unwrap_or("ZZ"), now_ms),
            cost: self.price(phone, channel),
        };
        let limits = SpendCaps::limits(&charged.ledgers, known);
        let spent = self.store.spend(&charged.ledgers, charged.cost, &limits).await?;
        let verdict = SpendCaps::judge(&charged.ledgers, &spent, charged.cost);
        for (at, reached) in &verdict.reached {
            self.tell_cap(phone, &charged.ledgers[*at], reached).await;
        }
        // A refused cost was never added: nothing to take back.
        if let Some(refusal) = verdict.refusal {
            return Err(SendError::Limited {
                limit: Limit::SpendCap {
                    soft: refusal.level == CapLevel::Soft,
                    country: refusal.country.is_some(),
                },
                retry_after: Duration::from_millis(refusal.ends_ms.saturating_sub(now_ms)),
            });
        }
        Ok(Some(charged))
    }

    /// Takes back the cost of a send that went no further.
    pub(super) async fn refund(&self, charged: &Charged) {
        if let Err(e) = self.store.refund(&charged.ledgers, charged.cost).await {
            tracing::warn!(error = %ErrorChain(&e), "could not take back the cost of a send that did not go");
        }
    }

    /// Logs and tells a limit passed, the first time in its window.
    async fn tell_cap(&self, phone: &Phone, ledger: &Ledger, reached: &CapReached) {
        match self
            .store
            .first_notice(&reached.notice(ledger), ledger.ends_ms)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %ErrorChain(&e), "could not note a spend cap reached");
                return;
            }
        }
        let currency = &self.guards.prices.currency;
        tracing::warn!(
            ledger = %ledger.name,
            level = reached.level.as_str(),
            limit = %reached.limit,
            spent = %reached.spent,
            currency = %currency,
            "{}",
            match reached.level {
                CapLevel::Soft => "spend cap: soft limit passed; only destinations with approved history are sent codes",
                CapLevel::Hard => "spend cap: hard limit reached; sends that would pass it are refused until the window ends",
            }
        );
        self.emit(
            phone,
            None,
            [EventKind::SpendCapReached {
                reached: reached.clone(),
                currency: currency.clone(),
            }],
        )
        .await;
    }
}
