//! The outside world, behind the ports: stores, SMS senders, the HTTP API
//! and the metrics they report.

pub mod events;
pub mod http;
pub mod metrics;
pub mod sms;
pub mod store;
