//! What was spent (`ports::Spending`) in Redis: a counter per ledger in one
//! slot (`otp:{spend}:day:20261205:NG`), added to within the limits by
//! `scripts/spend.lua` in one call for a send's ledgers, even on a cluster;
//! a notice is a key set once per window. The caps decide.

use async_trait::async_trait;
use redis::Value;

use super::{int, split_reply, unknown, unreadable, RedisStore};
use crate::domain::{Ledger, Money, Spent};
use crate::ports::{Spending, StoreError};

impl RedisStore {
    /// One slot for every ledger: a send's ledgers go in one script, at the
    /// cost of one cluster node taking every send's (docs/behaviour.md).
    fn spend_key(&self, name: &str) -> String {
        format!("{}{{spend}}:{name}", self.key_prefix)
    }
}

#[async_trait]
impl Spending for RedisStore {
    async fn spend(
        &self,
        ledgers: &[Ledger],
        cost: Money,
        limits: &[Option<Money>],
    ) -> Result<Spent, StoreError> {
        if ledgers.is_empty() {
            return Ok(Spent::default());
        }
        let mut invocation = self.scripts.spend.prepare_invoke();
        for ledger in ledgers {
            invocation.key(self.spend_key(&ledger.name));
        }
        invocation.arg("spend").arg(cost.micros());
        for ledger in ledgers {
            invocation.arg(ledger.ends_ms);
        }
        for limit in limits {
            invocation.arg(limit.map_or(String::new(), |l| l.micros().to_string()));
        }
        let reply: Vec<Value> = self.run(invocation).await?;
        let totals = |values: &[Value]| -> Result<Vec<Money>, StoreError> {
            if values.len() != ledgers.len() {
                return Err(unreadable(format!("{values:?} for {} ledgers", ledgers.len())));
            }
            values
                .iter()
                .map(|total| int::<u64>(total).map(Money::from_micros))
                .collect()
        };
        match split_reply("spend", &reply)? {
            ("spent", values) => Ok(Spent {
                totals: totals(values)?,
                refused: None,
            }),
            ("refused", [at, values @ ..]) => Ok(Spent {
                totals: totals(values)?,
                refused: Some(int(at)?),
            }),
            (name, _) => Err(unknown("spend", name)),
        }
    }

    async fn refund(&self, ledgers: &[Ledger], cost: Money) -> Result<(), StoreError> {
        if ledgers.is_empty() {
            return Ok(());
        }
        let mut invocation = self.scripts.spend.prepare_invoke();
        for ledger in ledgers {
            invocation.key(self.spend_key(&ledger.name));
        }
        invocation.arg("refund").arg(cost.micros());
        let reply: Vec<Value> = self.run(invocation).await?;
        match split_reply("spend", &reply)? {
            ("refunded", []) => Ok(()),
            (name, _) => Err(unknown("spend", name)),
        }
    }

    async fn first_notice(&self, notice: &str, ends_ms: u64) -> Result<bool, StoreError> {
        let set = redis::cmd("SET")
            .arg(self.spend_key(&format!("told:{notice}")))
            .arg(1)
            .arg("NX")
            .arg("PXAT")
            .arg(ends_ms)
            .clone();
        let told: Option<String> = self.command(set).await?;
        Ok(told.is_some())
    }
}
