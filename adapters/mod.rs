//! The outside world, behind the ports: stores, SMS senders, the HTTP API
//! and the metrics they report. Adapters import each other only through
//! what is declared shared (`SHARED` in tests/it/architecture.rs): the
//! metrics registry and the Redis plumbing.

pub mod events;
pub mod http;
pub mod metrics;
pub mod redis;
pub mod sms;
pub mod store;
pub mod timers;
