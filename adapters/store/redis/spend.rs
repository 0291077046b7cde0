//! What was spent (`ports::Spending`) in Redis: a counter per ledger in one
//! slot (`otp:{spend}:day:20261205:NG`), added to by `scripts/spend.lua`
//! in one call for a send's ledgers, even on a cluster; a notice is a key
//! set once per window. The caps decide; this only keeps.

use async_trait::async_trait;
use redis::Value;

use super::{int, split_reply, unknown, RedisStore};
use crate::domain::{Ledger, Money};
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
    async fn spend(&self, ledgers: &[Ledger], micros: i64) -> Result<Vec<Money>, StoreError> {
        if ledgers.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = self.scripts.spend.prepare_invoke();
        for ledger in ledgers {
            invocation.key(self.spend_key(&ledger.name));
        }
        invocation.arg(micros);
        for ledger in ledgers {
            invocation.arg(ledger.ends_ms);
        }
        let reply: Vec<Value> = self.run(invocation).await?;
        match split_reply("spend", &reply)? {
            ("spent", totals) if totals.len() == ledgers.len() => totals
                .iter()
                .map(|total| int::<u64>(total).map(Money::from_micros))
                .collect(),
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
