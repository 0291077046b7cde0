//! otpd: send six-digit codes by SMS and verify them exactly once.
//!
//! `domain` holds the policy, `ports` the traits it needs, `service` the use
//! cases; `adapters` (a folder beside `src`) plug in Redis, SMS vendors and HTTP.

#![forbid(unsafe_code)]

pub mod config;
pub mod domain;
mod numbering;
pub mod ports;
pub mod service;
pub mod startup;

#[path = "../adapters/mod.rs"]
pub mod adapters;
