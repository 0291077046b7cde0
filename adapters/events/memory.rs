//! The outbox of one process, beside the memory store: jobs in a bounded
//! queue, retries ordered by time, the last 1,000 dead letters. Kept only
//! while the process runs: a restart loses whatever was not yet delivered.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::queue::{Claimed, DeadLetter, Fanout, Job, Queue, Taken};
use crate::domain::Event;
use crate::ports::{EventOutbox, OutboxError, StoreError};

/// Dead letters kept; the oldest go first.
const DEAD_KEPT: usize = 1000;

pub struct MemoryOutbox {
    fanout: Fanout,
    max_jobs: usize,
    state: Mutex<State>,
    added: Notify,
}

#[derive(Default)]
struct State {
    ready: VecDeque<Job>,
    /// Handed to a worker, by token.
    claimed: HashMap<u64, Job>,
    later: BinaryHeap<Reverse<(Instant, u64)>>,
    later_jobs: HashMap<u64, Job>,
    dead: VecDeque<DeadLetter>,
    disabled: BTreeSet<String>,
    next_token: u64,
}

impl State {
    fn held(&self) -> usize {
        self.ready.len() + self.claimed.len() + self.later_jobs.len()
    }
}

impl MemoryOutbox {
    pub fn new(fanout: Fanout, max_jobs: usize) -> Self {
        Self {
            fanout,
            max_jobs,
            state: Mutex::default(),
            added: Notify::new(),
        }
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state)
    }

    fn settle(&self, claimed: &Claimed) -> Option<Job> {
        let token = claimed.token.parse::<u64>().ok()?;
        self.with_state(|state| state.claimed.remove(&token))
    }
}

#[async_trait]
impl EventOutbox for MemoryOutbox {
    async fn publish(&self, events: &[Event]) -> Result<(), OutboxError> {
        let jobs = self.fanout.jobs(events);
        if jobs.is_empty() {
            return Ok(());
        }
        let bounded = !events.iter().any(Event::must_be_kept);
        self.with_state(|state| {
            if bounded && state.held() + jobs.len() > self.max_jobs {
                return Err(OutboxError::Full(self.max_jobs));
            }
            state.ready.extend(jobs);
            Ok(())
        })?;
        self.added.notify_one();
        Ok(())
    }
}

#[async_trait]
impl Queue for MemoryOutbox {
    async fn take(&self, max: usize) -> Result<Taken, StoreError> {
        Ok(self.with_state(|state| {
            let now = Instant::now();
            while let Some(Reverse((due, token))) = state.later.peek().copied() {
                if due > now {
                    break;
                }
                state.later.pop();
                if let Some(job) = state.later_jobs.remove(&token) {
                    state.ready.push_back(job);
                }
            }
            let mut taken = Vec::new();
            while taken.len() < max {
                let Some(job) = state.ready.pop_front() else {
                    break;
                };
                state.next_token += 1;
                let token = state.next_token;
                state.claimed.insert(token, job.clone());
                taken.push(Claimed {
                    job,
                    token: token.to_string(),
                });
            }
            Taken {
                jobs: taken,
                more: !state.ready.is_empty(),
            }
        }))
    }

    async fn done(&self, claimed: &[Claimed]) -> Result<(), StoreError> {
        for one in claimed {
            self.settle(one);
        }
        Ok(())
    }

    async fn retry(&self, claimed: &Claimed, wait: Duration) -> Result<(), StoreError> {
        if let Some(mut job) = self.settle(claimed) {
            job.attempt += 1;
            self.with_state(|state| {
                state.next_token += 1;
                let token = state.next_token;
                state.later.push(Reverse((Instant::now() + wait, token)));
                state.later_jobs.insert(token, job);
            });
        }
        Ok(())
    }

    async fn dead(&self, claimed: &Claimed, reason: &str) -> Result<(), StoreError> {
        if let Some(job) = self.settle(claimed) {
            self.with_state(|state| {
                if state.dead.len() == DEAD_KEPT {
                    state.dead.pop_front();
                }
                state.dead.push_back(DeadLetter {
                    job,
                    reason: reason.to_owned(),
                    at: super::unix_now(),
                });
            });
        }
        Ok(())
    }

    async fn disabled(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.with_state(|state| state.disabled.iter().cloned().collect()))
    }

    async fn disable(&self, endpoint: &str) -> Result<(), StoreError> {
        self.with_state(|state| state.disabled.insert(endpoint.to_owned()));
        Ok(())
    }

    async fn enable(&self, endpoint: &str) -> Result<bool, StoreError> {
        Ok(self.with_state(|state| state.disabled.remove(endpoint)))
    }

    async fn sizes(&self) -> Result<(u64, u64), StoreError> {
        Ok(self.with_state(|state| (state.held() as u64, state.dead.len() as u64)))
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(self.with_state(|state| state.dead.iter().cloned().collect()))
    }

    async fn replay(&self, event_id: Option<&str>) -> Result<usize, StoreError> {
        let replayed = self.with_state(|state| {
            let (again, kept): (Vec<_>, Vec<_>) = state
                .dead
                .drain(..)
                .partition(|d| event_id.is_none_or(|id| d.job.event_id == id));
            state.dead = kept.into();
            let n = again.len();
            state
                .ready
                .extend(again.into_iter().map(|d| Job { attempt: 0, ..d.job }));
            n
        });
        self.added.notify_one();
        Ok(replayed)
    }

    async fn wait(&self, idle: Duration) {
        let _ = tokio::time::timeout(idle, self.added.notified()).await;
    }
}
