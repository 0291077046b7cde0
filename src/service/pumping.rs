//! The pumping breaker around a send: count it for its destination's
//! groups, let the domain judge (`domain::Breaker`), and record a block.
//! Approvals are counted as codes are approved (`check.rs`).

use super::{unix_now_ms, OtpService, SendError};
use crate::domain::{Block, EventKind, Figures, Group, Mode, Phone, Verdict};
use crate::ports::{ErrorChain, StoreError};

/// A send the breaker counted, to take back if it goes no further.
pub(super) struct Counted {
    groups: Vec<Group>,
    at_ms: u64,
}

impl OtpService {
    /// Counts a send to `phone` and judges it. A group blocked in enforce
    /// mode refuses it; a new block is kept, logged and told as an event
    /// (`fraud.blocked`, or `fraud.would_block` in monitor mode, where the
    /// send goes on). Safe numbers are neither counted nor judged.
    ///
    /// # Errors
    /// [`SendError::Blocked`] for a send the breaker refuses, and
    /// [`SendError::Store`] when its counts can't be kept: a breaker that
    /// can't count fails closed.
    pub(super) async fn screen(&self, phone: &Phone) -> Result<Option<Counted>, SendError> {
        let Some(breaker) = &self.guards.breaker else {
            return Ok(None);
        };
        if breaker.is_safe(phone) {
            return Ok(None);
        }
        let groups = breaker.groups(phone);
        if groups.is_empty() {
            return Ok(None);
        }
        let (at_ms, traffic) = self.store.count_send(&groups).await?;
        let counted = Counted { groups, at_ms };
        let (group, block) = match breaker.judge(&counted.groups, &traffic, at_ms) {
            Verdict::Pass => return Ok(Some(counted)),
            Verdict::Blocked { group, block } => (group, block),
            Verdict::Tripped { group, block } => {
                // Of sends that trip at once, the first starts the block
                // and tells of it.
                if self.store.start_block(&group, &block).await? {
                    self.tell_block(phone, &group, &block).await;
                }
                (group, block)
            }
        };
        // The mode now, not when the block began: an operator who moves a
        // rule from monitor to enforce wants its blocks to hold.
        if breaker.mode(group.level) == Mode::Enforce {
            self.uncount(&counted).await;
            return Err(SendError::Blocked { group, block });
        }
        Ok(Some(counted))
    }

    /// Takes back a counted send that was refused or failed.
    pub(super) async fn uncount(&self, counted: &Counted) {
        if let Err(e) = self.store.uncount_send(&counted.groups, counted.at_ms).await {
            tracing::warn!(error = %ErrorChain(&e), "could not take back a counted send");
        }
    }

    /// Counts an approval of a code sent to `phone`.
    pub(super) async fn count_approval(&self, phone: &Phone) {
        let Some(breaker) = &self.guards.breaker else {
            return;
        };
        if breaker.is_safe(phone) || self.test_numbers.contains_key(phone) {
            return;
        }
        let groups = breaker.groups(phone);
        if groups.is_empty() {
            return;
        }
        if let Err(e) = self.store.count_approval(&groups).await {
            tracing::warn!(error = %ErrorChain(&e), "could not count an approval for the pumping breaker");
        }
    }

    async fn tell_block(&self, phone: &Phone, group: &Group, block: &Block) {
        let f = &block.figures;
        tracing::warn!(
            group = %group,
            level = group.level.as_str(),
            window = f.window.as_str(),
            sent = f.sent,
            approved = f.approved,
            threshold = f.threshold,
            strikes = block.strikes,
            hours = (block.until_ms - block.since_ms) / 3_600_000,
            enforced = block.enforced,
            "{}",
            if block.enforced {
                "pumping breaker: destination blocked"
            } else {
                "pumping breaker (monitor): destination would be blocked"
            }
        );
        let kind = EventKind::Blocked {
            group: group.clone(),
            block: block.clone(),
        };
        self.emit(phone, None, [kind]).await;
    }
}

/// A group the breaker blocked, what tripped it, and its figures now.
#[derive(Debug, Clone)]
pub struct BlockedGroup {
    pub group: Group,
    pub block: Block,
    /// The hour's and the day's figures at the time of asking.
    pub now: [Figures; 2],
}

impl OtpService {
    /// Every group whose block has not ended, with its figures
    /// (`otpd fraud status`).
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    pub async fn blocked_groups(&self) -> Result<Vec<BlockedGroup>, StoreError> {
        let now_ms = unix_now_ms();
        let breaker = self.guards.breaker.clone().unwrap_or_default();
        let held = self.store.blocks(now_ms).await?;
        Ok(held
            .into_iter()
            .filter_map(|(group, traffic)| {
                let block = traffic.block.clone()?;
                let now = breaker.figures(group.level, &traffic, now_ms);
                Some(BlockedGroup { group, block, now })
            })
            .collect())
    }

    /// Ends the block of the group named `name` (`NG`, `+2348031234`) now,
    /// with no strikes and its counts by the hour forgotten: the operator
    /// says its traffic is real, so it is judged afresh from here (`otpd fraud unblock`). The group, if it
    /// was blocked.
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    pub async fn unblock(&self, name: &str) -> Result<Option<Group>, StoreError> {
        let now_ms = unix_now_ms();
        for (group, traffic) in self.store.blocks(now_ms).await? {
            let Some(block) = traffic.block.filter(|_| group.name == name) else {
                continue;
            };
            let ended = Block {
                until_ms: now_ms,
                strikes: 0,
                ..block
            };
            self.store.forget_hours(&group).await?;
            self.store.set_block(&group, &ended).await?;
            tracing::warn!(group = %group, "pumping breaker: destination unblocked by the operator");
            return Ok(Some(group));
        }
        Ok(None)
    }
}
