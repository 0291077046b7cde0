//! A second provider that takes over when the first sends nothing.

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{Phone, SmsReceipt, SmsText};
use crate::ports::{ErrorChain, SmsError, SmsSender};

pub struct Failover {
    primary: Arc<dyn SmsSender>,
    fallback: Arc<dyn SmsSender>,
}

impl Failover {
    pub fn new(primary: Arc<dyn SmsSender>, fallback: Arc<dyn SmsSender>) -> Self {
        Self { primary, fallback }
    }
}

#[async_trait]
impl SmsSender for Failover {
    async fn send(&self, to: &Phone, text: &SmsText, local_id: &str) -> Result<SmsReceipt, SmsError> {
        match self.primary.send(to, text, local_id).await {
            // A refused number would be refused by the next vendor too.
            Err(e @ SmsError::Failed { .. }) => {
                tracing::warn!(error = %ErrorChain(&e), "primary sms provider failed, using the fallback");
                let primary_maybe_sent = matches!(e, SmsError::Failed { maybe_sent: true, .. });
                match self.fallback.send(to, text, local_id).await {
                    // Either may have sent it.
                    Err(SmsError::Failed {
                        provider,
                        reason,
                        maybe_sent,
                        cause,
                    }) => Err(SmsError::Failed {
                        provider,
                        reason,
                        maybe_sent: maybe_sent || primary_maybe_sent,
                        cause,
                    }),
                    other => other,
                }
            }
            other => other,
        }
    }

    /// The fallback's receipt is a surprise the service records after the send.
    fn receipt_ahead(&self, local_id: &str) -> Option<SmsReceipt> {
        self.primary.receipt_ahead(local_id)
    }
}
