//! Integration tests, one binary: the real server on a free port, real Redis.

mod api;
mod architecture;
mod binary;
mod cluster;
mod config;
mod dev_pages;
mod dropin;
mod events;
mod faults;
mod hardening;
mod helpers;
mod languages;
mod limits;
mod ops;
mod own_redis;
mod properties;
mod redis_store;
mod reports_more;
mod routing;
mod sms_vendors;
mod spec;
mod store_contract;
mod twilio_verify;
mod vendors_more;
mod verifications;
mod webhooks;
