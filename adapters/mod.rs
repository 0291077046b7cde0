//! The outside world, behind the ports: stores, SMS senders and the HTTP API.

pub mod http;
pub mod sms;
pub mod store;
