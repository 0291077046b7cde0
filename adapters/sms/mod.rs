//! `SmsSender` adapters: the console (and its local inbox) for local work,
//! one folder per vendor for real messages, all sent through one
//! [`VendorSender`], a failover that chains two senders, and routes that
//! pick a chain by the destination.

mod console;
mod dlt;
mod failover;
pub mod http;
mod inbox;
pub mod infobip;
pub mod meta;
pub mod plivo;
mod retry;
mod routing;
pub mod sealed_speech;
mod signing;
pub mod sinch;
pub mod sns;
pub mod telnyx;
pub mod twilio;
mod vendor;
pub mod vonage;
pub mod whatsapp;
mod xml;

pub use console::{ConsoleOut, ConsoleSender};
pub use dlt::{Dlt, DltCategory, DltError, DltField};
pub use failover::Failover;
pub use inbox::{Inbox, InboxMessage};
pub use retry::{AttemptError, RetryPolicy};
pub use routing::Routes;
pub use signing::RAW_BODY;
pub use vendor::{ReportFields, ReportKey, Vendor, VendorSender};
