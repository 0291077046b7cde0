//! Redis plumbing the adapters that keep data in Redis share (the store and
//! the event outbox): pooled multiplexed connections, one server or a
//! cluster, every call under a deadline. Declared shared, so adapters need
//! not import each other for it.

mod connections;

pub(crate) use self::connections::{Call, Connections};
