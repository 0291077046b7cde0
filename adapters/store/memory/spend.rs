//! What was spent (`ports::Spending`) in the embedded store: a total per
//! ledger, and the notices told, each kept until its window ends and
//! bounded with the counters. The caps decide.

use async_trait::async_trait;

use super::MemoryStore;
use crate::domain::{Ledger, Money};
use crate::ports::{Spending, StoreError};

#[async_trait]
impl Spending for MemoryStore {
    async fn spend(&self, ledgers: &[Ledger], micros: i64) -> Result<Vec<Money>, StoreError> {
        self.with_state(|state, now, _| {
            let new = ledgers.iter().filter(|l| !state.spent.has_slot(&l.name)).count();
            self.room_for_clients(state, new)?;
            let totals = ledgers.iter().map(|ledger| {
                let held = state.spent.get(&ledger.name, now).map_or(0, |(total, _)| *total);
                let total = held.saturating_add_signed(micros);
                state
                    .spent
                    .insert(ledger.name.clone(), total, self.instant(ledger.ends_ms));
                Money::from_micros(total)
            });
            Ok(totals.collect())
        })
    }

    async fn first_notice(&self, notice: &str, ends_ms: u64) -> Result<bool, StoreError> {
        self.with_state(|state, now, _| {
            let notice = notice.to_owned();
            if state.notices.get(&notice, now).is_some() {
                return Ok(false);
            }
            self.room_for_clients(state, 1)?;
            state.notices.insert(notice, (), self.instant(ends_ms));
            Ok(true)
        })
    }
}
