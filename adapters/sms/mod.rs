//! `SmsSender` adapters: the console (and its local inbox) for local work,
//! Plivo and Twilio for real messages, and a failover that chains two of them.

mod console;
mod failover;
mod inbox;
pub mod plivo;
mod retry;
pub mod signature;
pub mod twilio;

pub use console::{ConsoleOut, ConsoleSender};
pub use failover::Failover;
pub use inbox::{Inbox, InboxMessage};
pub use plivo::PlivoSender;
pub use retry::RetryPolicy;
pub use twilio::TwilioSender;

use retry::AttemptError;

/// A request that got no HTTP answer: worth another try. The URL is left
/// out of the text; it would say nothing the provider name doesn't.
fn transport_error(e: reqwest::Error) -> AttemptError {
    AttemptError::Transient(e.without_url().to_string())
}

/// An HTTP answer that isn't success: 429 and 5xx may pass, the rest won't.
fn vendor_status_error(status: reqwest::StatusCode, detail: &str) -> AttemptError {
    let reason = format!("HTTP {}: {detail}", status.as_u16());
    if status.as_u16() == 429 || status.is_server_error() {
        AttemptError::Transient(reason)
    } else {
        AttemptError::Permanent(reason)
    }
}
