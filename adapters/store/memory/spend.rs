//! What was spent (`ports::Spending`) in the embedded store: a total per
//! ledger, and the notices told, each kept until its window ends and
//! bounded with the counters. The caps decide; the bounded add is the
//! domain's (`domain::add_within`).

use async_trait::async_trait;

use super::MemoryStore;
use crate::domain::{add_within, Ledger, Money, Spent};
use crate::ports::{Spending, StoreError};

#[async_trait]
impl Spending for MemoryStore {
    async fn spend(
        &self,
        ledgers: &[Ledger],
        cost: Money,
        limits: &[Option<Money>],
    ) -> Result<Spent, StoreError> {
        self.with_state(|state, now, _| {
            let held: Vec<Money> = ledgers
                .iter()
                .map(|l| Money::from_micros(state.spent.get(&l.name, now).map_or(0, |(total, _)| *total)))
                .collect();
            let spent = add_within(&held, cost, limits);
            if spent.refused.is_some() {
                return Ok(spent);
            }
            let new = ledgers.iter().filter(|l| !state.spent.has_slot(&l.name)).count();
            self.room_for_clients(state, new)?;
            for (ledger, total) in ledgers.iter().zip(&spent.totals) {
                let ends = self.instant(ledger.ends_ms);
                state.spent.insert(ledger.name.clone(), total.micros(), ends);
            }
            Ok(spent)
        })
    }

    async fn refund(&self, ledgers: &[Ledger], cost: Money) -> Result<(), StoreError> {
        self.with_state(|state, now, _| {
            for ledger in ledgers {
                if let Some(total) = state.spent.get_mut(&ledger.name, now) {
                    *total = total.saturating_sub(cost.micros());
                }
            }
            Ok(())
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
