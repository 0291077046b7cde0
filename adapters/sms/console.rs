//! Local development: each message is one line on standard output, so the
//! developer reads the code there, and goes to the local inbox page when
//! that is on. The only place a code is ever printed.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::domain::{Channel, Code, Locale, Phone, SmsReceipt, SmsText, Speech};
use crate::ports::{Cause, SmsError, SmsSender, VoiceCaller, WhatsappSender};

use super::Inbox;

/// Where the console sender prints.
pub enum ConsoleOut {
    /// Standard output (what `main` gives it).
    Stdout,
    /// Any writer, e.g. a buffer a test reads.
    Writer(Box<dyn Write + Send>),
}

pub struct ConsoleSender {
    out: Out,
    inbox: Option<Arc<Inbox>>,
}

enum Out {
    /// A duplicate of standard output's descriptor, written with one `write`
    /// per line: the kernel keeps each line whole (concurrent writes to one
    /// file, pipe or terminal don't interleave within a call), so no lock of
    /// ours is held across the system call. Under load, a lock held there
    /// made the other worker thread sleep on it.
    Fd(File),
    Writer(Mutex<Box<dyn Write + Send>>),
}

impl ConsoleSender {
    pub fn new(out: ConsoleOut) -> Self {
        let out = match out {
            ConsoleOut::Stdout => match std::io::stdout().as_fd().try_clone_to_owned() {
                Ok(fd) => Out::Fd(File::from(fd)),
                Err(_) => Out::Writer(Mutex::new(Box::new(std::io::stdout()))),
            },
            ConsoleOut::Writer(writer) => Out::Writer(Mutex::new(writer)),
        };
        Self { out, inbox: None }
    }

    /// Also keeps each message in `inbox`, for the local inbox page.
    #[must_use]
    pub fn with_inbox(mut self, inbox: Option<Arc<Inbox>>) -> Self {
        self.inbox = inbox;
        self
    }
}

impl ConsoleSender {
    /// Prints one message as one line (even when its text has several),
    /// and keeps it in the inbox.
    fn print(
        &self,
        channel: Channel,
        to: &Phone,
        text: &str,
        local_id: &str,
    ) -> Result<SmsReceipt, SmsError> {
        let label = match channel {
            Channel::Sms => "SMS",
            Channel::Whatsapp => "WhatsApp",
            Channel::Voice => "Voice call",
        };
        let line = format!("{label} to {}: {}\n", to.as_str(), text.replace('\n', "\\n"));
        let written = match &self.out {
            Out::Fd(file) => (&*file).write_all(line.as_bytes()),
            Out::Writer(writer) => {
                let mut out = writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                out.write_all(line.as_bytes()).and_then(|()| out.flush())
            }
        };
        written.map_err(|e| SmsError::Failed {
            provider: PROVIDER.into(),
            reason: "standard output took no line".into(),
            maybe_sent: false,
            cause: Some(Cause::new(e)),
        })?;
        let receipt = receipt(local_id);
        if let Some(inbox) = &self.inbox {
            inbox.record_on(channel, to, text, &receipt);
        }
        Ok(receipt)
    }
}

#[async_trait]
impl SmsSender for ConsoleSender {
    async fn send(&self, to: &Phone, text: &SmsText, local_id: &str) -> Result<SmsReceipt, SmsError> {
        self.print(Channel::Sms, to, text.as_str(), local_id)
    }

    fn receipt_ahead(&self, local_id: &str) -> Option<SmsReceipt> {
        Some(receipt(local_id))
    }
}

#[async_trait]
impl WhatsappSender for ConsoleSender {
    /// Meta's authentication template body, as WhatsApp shows it in
    /// English, with its copy-code button; the language a real send would
    /// pick is the vendor's to choose.
    async fn send(
        &self,
        to: &Phone,
        code: &Code,
        _locale: Option<&Locale>,
        local_id: &str,
    ) -> Result<SmsReceipt, SmsError> {
        let text = format!(
            "*{}* is your verification code. For your security, do not share this code. [Copy code]",
            code.expose()
        );
        self.print(Channel::Whatsapp, to, &text, local_id)
    }
}

#[async_trait]
impl VoiceCaller for ConsoleSender {
    /// The words a voice would say, in the language it would say them.
    async fn call(&self, to: &Phone, speech: &Speech, local_id: &str) -> Result<SmsReceipt, SmsError> {
        let text = format!("({}) {}", speech.language(), speech.expose());
        self.print(Channel::Voice, to, &text, local_id)
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
