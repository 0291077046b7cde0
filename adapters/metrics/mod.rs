//! Prometheus metrics, one registry per running service (so tests that run
//! several services in one process each see their own numbers).

use std::time::Duration;

use crate::domain::{Channel, Fallback, Group, Money};
use crate::ports::Meter;

use prometheus::core::Collector;
use prometheus::{
    CounterVec, Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    sends: IntCounterVec,
    verifications: IntCounterVec,
    rejections: IntCounterVec,
    store_calls: IntCounterVec,
    store_errors: IntCounter,
    http_requests: HistogramVec,
    provider_calls: HistogramVec,
    delivery_reports: IntCounterVec,
    vendor_sends: IntCounterVec,
    events: IntCounterVec,
    event_deliveries: HistogramVec,
    event_dead_letters: IntCounterVec,
    events_waiting: IntGauge,
    events_dead: IntGauge,
    country_sends: IntCounterVec,
    country_approvals: IntCounterVec,
    country_blocks: IntCounterVec,
    fallbacks: IntCounterVec,
    country_spend: CounterVec,
}

/// Request latencies from 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            registered(&registry, name, IntCounterVec::new(Opts::new(name, help), labels))
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
            registered(&registry, name, HistogramVec::new(opts, labels))
        };
        let plain_counter = |name: &str, help: &str| registered(&registry, name, IntCounter::new(name, help));
        let sends = counter(
            "otpd_sends_total",
            "Codes asked for, by outcome and SMS provider.",
            &["outcome", "provider"],
        );
        let verifications = counter(
            "otpd_verifications_total",
            "Verifications, by outcome.",
            &["outcome"],
        );
        let rejections = counter(
            "otpd_rejections_total",
            "Requests refused by an abuse limit, by limit.",
            &["limit"],
        );
        let events = counter(
            "otpd_events_total",
            "Events made, by type and outcome: `kept` in the outbox, or `dropped` (the outbox full or failing).",
            &["type", "outcome"],
        );
        let event_deliveries = histogram(
            "otpd_event_deliveries_seconds",
            "Attempts to deliver an event, by endpoint and outcome (`delivered`, `failed`, `gone`): count and latency.",
            &["endpoint", "outcome"],
        );
        let event_dead_letters = counter(
            "otpd_event_dead_letters_total",
            "Events given up on after their last retry, by endpoint.",
            &["endpoint"],
        );
        let gauge = |name: &str, help: &str| registered(&registry, name, IntGauge::new(name, help));
        let events_waiting = gauge(
            "otpd_events_waiting",
            "Event deliveries in the outbox, due or waiting to be retried (read every 10 s).",
        );
        let events_dead = gauge(
            "otpd_events_dead",
            "Dead letters kept in the outbox (read every 10 s).",
        );
        let delivery_reports = counter(
            "otpd_delivery_reports_total",
            "Signed delivery reports taken, by provider and state.",
            &["provider", "state"],
        );
        // Countries are ISO codes (about 250) or `none`: a bounded label.
        let vendor_sends = counter(
            "otpd_sms_vendor_sends_total",
            "Messages handed to SMS vendors, retries included once, by vendor, destination country and outcome.",
            &["provider", "country", "outcome"],
        );
        let http_requests = histogram(
            "otpd_http_request_duration_seconds",
            "HTTP requests, by route, method and status.",
            &["route", "method", "status"],
        );
        let provider_calls = histogram(
            "otpd_sms_provider_request_duration_seconds",
            "Calls to SMS providers, one per try, by provider and outcome.",
            &["provider", "outcome"],
        );
        let store_calls = counter(
            "otpd_store_calls_total",
            "Calls made to Redis, by caller (requests: the API's store; events: the outbox and its worker): \
             one round trip each, but for the first run of a script, which loads it.",
            &["caller"],
        );
        let store_errors = plain_counter("otpd_store_errors_total", "Store calls that failed or timed out.");
        let country_sends = counter(
            "otpd_country_sends_total",
            "Codes handed to a vendor, by destination country (test numbers not counted).",
            &["country"],
        );
        let country_approvals = counter(
            "otpd_country_approvals_total",
            "Codes approved by their right code, by destination country (test numbers not counted).",
            &["country"],
        );
        let country_blocks = counter(
            "otpd_country_blocks_total",
            "Destination groups the pumping breaker blocked, by country, level and mode.",
            &["country", "level", "mode"],
        );
        let fallbacks = counter(
            "otpd_fallbacks_total",
            "Codes a workflow sent on its next channel, by that channel and why (undelivered, no_report).",
            &["channel", "reason"],
        );
        let country_spend = registered(
            &registry,
            "otpd_country_spend_total",
            CounterVec::new(
                Opts::new(
                    "otpd_country_spend_total",
                    "What codes handed to vendors cost by the price table, in spend.currency, by destination country.",
                ),
                &["country"],
            ),
        );
        Self {
            registry,
            sends,
            verifications,
            rejections,
            store_calls,
            store_errors,
            http_requests,
            provider_calls,
            delivery_reports,
            vendor_sends,
            events,
            event_deliveries,
            event_dead_letters,
            events_waiting,
            events_dead,
            country_sends,
            country_approvals,
            country_blocks,
            fallbacks,
            country_spend,
        }
    }

    pub fn event(&self, event_type: &str, outcome: &str) {
        self.events.with_label_values(&[event_type, outcome]).inc();
    }

    pub fn event_delivery(&self, endpoint: &str, outcome: &str, took: Duration) {
        self.event_deliveries
            .with_label_values(&[endpoint, outcome])
            .observe(took.as_secs_f64());
    }

    pub fn event_dead_letter(&self, endpoint: &str) {
        self.event_dead_letters.with_label_values(&[endpoint]).inc();
    }

    pub fn event_backlog(&self, waiting: u64, dead: u64) {
        self.events_waiting
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
        self.events_dead.set(i64::try_from(dead).unwrap_or(i64::MAX));
    }

    pub fn send(&self, outcome: &str, provider: &str) {
        self.sends.with_label_values(&[outcome, provider]).inc();
    }

    pub fn verification(&self, outcome: &str) {
        self.verifications.with_label_values(&[outcome]).inc();
    }

    pub fn rejection(&self, limit: &str) {
        self.rejections.with_label_values(&[limit]).inc();
    }

    /// The call counter of one caller (`requests` or `events`), looked up
    /// once by its holder rather than per call.
    pub fn store_calls(&self, caller: &str) -> IntCounter {
        self.store_calls.with_label_values(&[caller])
    }

    pub fn store_error(&self) {
        self.store_errors.inc();
    }

    pub fn http_request(&self, route: &str, method: &str, status: &str, took: Duration) {
        self.http_requests
            .with_label_values(&[route, method, status])
            .observe(took.as_secs_f64());
    }

    pub fn provider_call(&self, provider: &str, outcome: &str, took: Duration) {
        self.provider_calls
            .with_label_values(&[provider, outcome])
            .observe(took.as_secs_f64());
    }

    pub fn vendor_send(&self, provider: &str, country: &str, outcome: &str) {
        self.vendor_sends
            .with_label_values(&[provider, country, outcome])
            .inc();
    }

    pub fn delivery_report(&self, provider: &str, state: &str) {
        self.delivery_reports.with_label_values(&[provider, state]).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec can't fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// `metric`, registered under `name`. Start-up only: a metric that can't be
/// made or registered is a bug in this file.
fn registered<M: Collector + Clone + 'static>(
    registry: &Registry,
    name: &str,
    metric: prometheus::Result<M>,
) -> M {
    let metric = metric.unwrap_or_else(|e| panic!("{name}: {e}"));
    registry
        .register(Box::new(metric.clone()))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    metric
}

impl Meter for Metrics {
    fn code_sent(&self, country: &str, cost: Money) {
        self.country_sends.with_label_values(&[country]).inc();
        // Millionths as units: exact to the digits a bill has.
        self.country_spend
            .with_label_values(&[country])
            .inc_by(cost.micros() as f64 / 1e6);
    }

    fn code_approved(&self, country: &str) {
        self.country_approvals.with_label_values(&[country]).inc();
    }

    fn fell_back(&self, channel: Channel, why: Fallback) {
        self.fallbacks
            .with_label_values(&[channel.as_str(), why.as_str()])
            .inc();
    }

    fn blocked(&self, group: &Group, enforced: bool) {
        let mode = if enforced { "enforce" } else { "monitor" };
        self.country_blocks
            .with_label_values(&[&group.country, group.level.as_str(), mode])
            .inc();
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
