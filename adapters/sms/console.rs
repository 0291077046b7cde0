//! Local development: each message is one line on standard output, so the
//! developer reads the code there. The only place a code is ever printed.

use std::io::Write;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::SmsReceipt;
use crate::domain::{Phone, SmsText};
use crate::ports::{SmsError, SmsSender};

pub struct ConsoleSender {
    out: Mutex<Box<dyn Write + Send>>,
}

impl ConsoleSender {
    pub fn stdout() -> Self {
        Self::new(Box::new(std::io::stdout()))
    }

    /// Writes to `out` instead, e.g. a buffer a test reads.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self { out: Mutex::new(out) }
    }
}

#[async_trait]
impl SmsSender for ConsoleSender {
    async fn send(&self, to: &Phone, text: &SmsText, local_id: &str) -> Result<SmsReceipt, SmsError> {
        // One line per message, even when the text has several.
        let line = format!("SMS to {}: {}\n", to.as_str(), text.as_str().replace('\n', "\\n"));
        let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        out.write_all(line.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| SmsError::Failed {
                provider: PROVIDER.into(),
                reason: e.to_string(),
            })?;
        Ok(receipt(local_id))
    }

    fn receipt_ahead(&self, local_id: &str) -> Option<SmsReceipt> {
        Some(receipt(local_id))
    }
}

const PROVIDER: &str = "console";

/// A printed message has no provider to name it, so it goes by the service's id.
fn receipt(local_id: &str) -> SmsReceipt {
    SmsReceipt {
        provider: PROVIDER.into(),
        message_id: local_id.to_owned(),
        tracked: false,
    }
}
