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
    async fn send(&self, to: &Phone, text: &SmsText) -> Result<SmsReceipt, SmsError> {
        let message_id = uuid::Uuid::new_v4().to_string();
        // One line per message, even when the text has several.
        let line = format!("SMS to {}: {}\n", to.as_str(), text.as_str().replace('\n', "\\n"));
        let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        out.write_all(line.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| SmsError::Failed {
                provider: "console".into(),
                reason: e.to_string(),
            })?;
        Ok(SmsReceipt {
            provider: "console".into(),
            message_id,
            tracked: false,
        })
    }
}
