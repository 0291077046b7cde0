//! The pumping breaker around a send: count it for its destination's
//! groups, let the domain judge (`domain::Breaker`), and record a block.
//! Approvals are counted as codes are approved (`check.rs`).

use std::time::Duration;

use super::{unix_now_ms, Limit, OtpService, SendError};
use crate::domain::{Block, ClientNet, EventKind, Figures, Group, Mode, Phone};
use crate::ports::{CountryNote, ErrorChain, SendCounts, SendToCount, StoreError};

/// A send the breaker counted, to take back if it goes no further: its
/// groups' counts, and its country if it was new to the client's day.
#[derive(Default)]
pub(super) struct Counted {
    groups: Vec<Group>,
    at_ms: u64,
    country: Option<(ClientNet, &'static str)>,
    /// The phone's prefix converts (`Breaker::proven`).
    known: bool,
}

/// How long a client's day of destination countries lasts, from its first.
const CLIENT_DAY: Duration = Duration::from_secs(86_400);

/// What the breaker has the store count for a send, with its admission:
/// the phone's groups, whether each one's block holds the send back, and
/// the country to note for the client's day.
pub(super) struct CountAsk {
    groups: Vec<Group>,
    holds: Vec<bool>,
    note: Option<CountryNote<'static>>,
}

impl CountAsk {
    pub(super) fn as_send(&self) -> SendToCount<'_> {
        SendToCount {
            groups: &self.groups,
            holds: &self.holds,
            country: self.note,
        }
    }
}

impl OtpService {
    /// What the breaker counts for a send from `client` to `phone`: none
    /// when it is off or the number is safe.
    pub(super) fn count_ask(&self, phone: &Phone, client: Option<ClientNet>) -> Option<CountAsk> {
        let breaker = self.guards.breaker.as_ref()?;
        if breaker.is_safe(phone) {
            return None;
        }
        let groups = breaker.groups(phone);
        let note = client
            .filter(|_| breaker.clients != Mode::Off)
            .map(|client| CountryNote {
                client,
                country: phone.region().unwrap_or("ZZ"),
                window: CLIENT_DAY,
            });
        if groups.is_empty() && note.is_none() {
            return None;
        }
        let holds = breaker.holds(&groups);
        Some(CountAsk { groups, holds, note })
    }

    /// What a send the store counted with its admission (`ask`, what it
    /// found `counts`) has to take back if it goes no further.
    pub(super) fn counted(&self, ask: &CountAsk, counts: &SendCounts) -> Counted {
        Counted {
            // A send a block held back was not counted: nothing to take back.
            groups: if counts.held {
                Vec::new()
            } else {
                ask.groups.clone()
            },
            at_ms: counts.at_ms,
            country: ask
                .note
                .filter(|_| counts.countries.is_some_and(|n| n.new))
                .map(|n| (n.client, n.country)),
            known: self
                .guards
                .breaker
                .as_ref()
                .is_some_and(|b| b.proven(&ask.groups, &counts.traffic, counts.at_ms)),
        }
    }

    /// Judges a counted send (`mine`, from [`OtpService::counted`]): the
    /// phone's groups (a group blocked in enforce mode refuses it; a new
    /// block is kept, logged and told as `fraud.blocked`, or
    /// `fraud.would_block` in monitor mode, where the send goes on), and the
    /// client's countries of the day. A send it refuses is taken back.
    ///
    /// # Errors
    /// [`SendError::Blocked`] or [`SendError::Limited`] for a send the
    /// breaker refuses, and [`SendError::Store`] when a block can't be
    /// kept.
    pub(super) async fn screen(
        &self,
        phone: &Phone,
        ask: &CountAsk,
        counts: SendCounts,
        mine: &Counted,
    ) -> Result<(), SendError> {
        // An ask comes from the breaker: without one nothing was counted.
        let Some(breaker) = &self.guards.breaker else {
            return Ok(());
        };
        let groups = &ask.groups;
        let noted = counts.countries;
        let at_ms = counts.at_ms;
        let traffic = counts.traffic;
        // By its place, not only when new: concurrent sends to one new
        // country all see it past the share.
        if let (Some(noted), Some(note)) = (noted.filter(|n| breaker.too_many_countries(n.place)), ask.note) {
            tracing::warn!(
                client = %note.client,
                place = noted.place,
                share = breaker.countries_per_client,
                enforced = breaker.clients == Mode::Enforce,
                "pumping breaker: a client sends to more countries in a day than its share"
            );
            if breaker.clients == Mode::Enforce {
                self.uncount(mine).await;
                return Err(SendError::Limited {
                    limit: Limit::ClientCountries,
                    retry_after: noted.day_left,
                });
            }
        }
        let verdict = breaker.judge(groups, &traffic, at_ms);
        for (group, block) in &verdict.trips {
            // Of sends that trip at once, the first starts the block and
            // tells of it.
            if self.store.start_block(group, block).await? {
                self.tell_block(group, block);
                self.meter(|m| m.blocked(group, block.enforced));
                self.emit(
                    phone,
                    None,
                    [EventKind::Blocked {
                        group: group.clone(),
                        block: block.clone(),
                    }],
                )
                .await;
            }
        }
        // By the rule's mode now, not when the block began: an operator who
        // moves a rule from monitor to enforce wants its blocks to hold.
        if let Some((group, block)) = verdict.refusal {
            self.uncount(mine).await;
            return Err(SendError::Blocked { group, block });
        }
        Ok(())
    }

    /// Whether the phone's destination has approved history, as the money
    /// caps ask: its prefix converts (so it needs the prefix rule on, in
    /// any mode), or the breaker holds it safe.
    pub(super) fn known(&self, phone: &Phone, counted: Option<&Counted>) -> bool {
        match counted {
            Some(counted) => counted.known,
            None => self.guards.breaker.as_ref().is_some_and(|b| b.is_safe(phone)),
        }
    }

    /// Takes back a counted send that was refused or failed.
    pub(super) async fn uncount(&self, counted: &Counted) {
        let groups = async {
            if counted.groups.is_empty() {
                return Ok(());
            }
            self.store.uncount_send(&counted.groups, counted.at_ms).await
        };
        let country = async {
            match counted.country {
                Some((client, country)) => self.store.forget_country(client, country).await,
                None => Ok(()),
            }
        };
        let (groups, country) = futures_util::future::join(groups, country).await;
        if let Err(e) = groups.and(country) {
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

    /// The block's log line. Not in the send's span: with the group, its
    /// masked phone would give the whole number but a digit.
    fn tell_block(&self, group: &Group, block: &Block) {
        let f = &block.figures;
        tracing::warn!(
            parent: None,
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
    /// says its traffic is real, so it is judged afresh from here (`otpd
    /// fraud unblock`), and `fraud.unblocked` tells the app. The group, if
    /// it was blocked.
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
            self.publish(None, None, [EventKind::Unblocked { group: group.clone() }])
                .await;
            return Ok(Some(group));
        }
        Ok(None)
    }
}
