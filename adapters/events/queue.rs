//! The outbox's work: one job per event and endpoint, and what a delivery
//! worker does with jobs. Redis and memory keep jobs the same way behind
//! [`Queue`]; [`Fanout`] decides which endpoints want an event.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::payload;
use crate::domain::Event;
use crate::ports::StoreError;

/// One event for one endpoint, with its body as it will be signed and sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    #[serde(rename = "i")]
    pub event_id: String,
    #[serde(rename = "t")]
    pub event_type: String,
    #[serde(rename = "e")]
    pub endpoint: String,
    /// Attempts made before this one.
    #[serde(rename = "a")]
    pub attempt: u32,
    #[serde(rename = "b")]
    pub body: String,
}

impl Job {
    /// The job as one string, for a stream field or a sorted set member.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn decode(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// A job handed to one worker until it settles it; `token` says where the
/// queue keeps it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub job: Job,
    pub token: String,
}

/// What one take found: the jobs, and whether more were due than it gave
/// (the worker then takes again at once; else it waits for news).
#[derive(Debug, Default)]
pub struct Taken {
    pub jobs: Vec<Claimed>,
    pub more: bool,
}

/// A job kept for the operator after its last attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub job: Job,
    pub reason: String,
    /// Unix seconds it was given up.
    pub at: u64,
}

/// Which endpoints want which event types; none listed: every type.
#[derive(Debug, Clone, Default)]
pub struct Fanout(pub BTreeMap<String, Vec<String>>);

impl Fanout {
    /// The jobs `events` make, one per event and endpoint that wants it.
    pub fn jobs(&self, events: &[Event]) -> Vec<Job> {
        let mut jobs = Vec::new();
        for event in events {
            let wanted: Vec<&String> = self
                .0
                .iter()
                .filter(|(_, types)| types.is_empty() || types.iter().any(|t| t == event.kind.name()))
                .map(|(name, _)| name)
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let body = payload::body(event);
            jobs.extend(wanted.into_iter().map(|endpoint| Job {
                event_id: event.id.clone(),
                event_type: event.kind.name().to_owned(),
                endpoint: endpoint.clone(),
                attempt: 0,
                body: body.clone(),
            }));
        }
        jobs
    }
}

/// What delivery workers need of the outbox. Every instance's workers share
/// it: a job is handed to one of them at a time, and one that dies holding
/// jobs has them handed to another.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Up to about `max` jobs due now, each now this worker's to settle.
    async fn take(&self, max: usize) -> Result<Taken, StoreError>;
    /// Delivered: the jobs are gone.
    async fn done(&self, claimed: &[Claimed]) -> Result<(), StoreError>;
    /// Failed, to be tried again after `wait` as its next attempt.
    async fn retry(&self, claimed: &Claimed, wait: Duration) -> Result<(), StoreError>;
    /// Failed for good: kept as a dead letter.
    async fn dead(&self, claimed: &Claimed, reason: &str) -> Result<(), StoreError>;
    /// Endpoints that answered 410 Gone, until an operator enables them.
    async fn disabled(&self) -> Result<Vec<String>, StoreError>;
    async fn disable(&self, endpoint: &str) -> Result<(), StoreError>;
    async fn enable(&self, endpoint: &str) -> Result<bool, StoreError>;
    /// Jobs waiting (due or later) and dead letters kept.
    async fn sizes(&self) -> Result<(u64, u64), StoreError>;
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError>;
    /// Puts dead letters (all, or those of one event) back as fresh jobs;
    /// says how many.
    async fn replay(&self, event_id: Option<&str>) -> Result<usize, StoreError>;
    /// Resolves when jobs may have been added here, or after `idle`.
    async fn wait(&self, idle: Duration);
}
