//! `SmsSender` adapters.

mod console;

pub use console::ConsoleSender;
