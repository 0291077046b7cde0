//! Integration tests, one binary: the real server on a free port, real Redis.

mod api;
mod architecture;
mod binary;
mod config;
mod dropin;
mod helpers;
mod limits;
mod ops;
mod redis_store;
mod sms_vendors;
mod spec;
mod store_contract;
mod webhooks;
