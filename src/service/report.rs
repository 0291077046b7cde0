//! Take a provider's report of an SMS's fate.

use super::{unix_now, OtpService};
use crate::domain::{DeliveryReport, DeliveryState, EventKind, Fallback};
use crate::ports::StoreError;

impl OtpService {
    /// Applies a provider's report of a message's fate; says whether it
    /// changed anything (an unknown, expired or stale report doesn't).
    ///
    /// # Errors
    /// [`StoreError`] when the store can't be reached in time.
    pub async fn report_delivery(
        &self,
        provider: &str,
        message_id: &str,
        state: DeliveryState,
        error_code: Option<String>,
    ) -> Result<bool, StoreError> {
        let report = DeliveryReport {
            provider: provider.to_owned(),
            message_id: message_id.to_owned(),
            state,
            error_code,
            at: unix_now(),
        };
        let Some((phone, verification)) = self.store.update_delivery(&report).await? else {
            return Ok(false);
        };
        // A message that reached no one moves its workflow on at once.
        if matches!(state, DeliveryState::Failed | DeliveryState::Undelivered) {
            self.schedule_fallback(&phone, &verification, message_id, Fallback::Undelivered);
        }
        let updated = EventKind::DeliveryUpdated {
            provider: report.provider,
            message_id: report.message_id,
            state: report.state,
            error_code: report.error_code,
        };
        self.emit(&phone, None, [updated]).await;
        Ok(true)
    }
}
