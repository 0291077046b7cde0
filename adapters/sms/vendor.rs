//! What the sender, the webhook route and start-up need from an SMS vendor
//! reached over HTTP, and the one `SmsSender` that serves every vendor: each
//! vendor says how to ask and how to read the answer, the rest is here.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

use super::dlt::Dlt;
use super::retry::{send_with_retries, transport_error, vendor_said, AttemptError, RetryPolicy};
use crate::adapters::metrics::Metrics;
use crate::config::{ConfigError, Secret, VonageSignatureMethod};
use crate::domain::{DeliveryState, Phone, SmsReceipt, SmsText};
use crate::ports::{SmsError, SmsSender};

/// An SMS vendor: its settings, its API and its delivery reports.
pub trait Vendor: fmt::Debug + Send + Sync + Sized + 'static {
    /// Lower case, as in receipts, metrics, `sms.<name>` and the report path.
    const NAME: &'static str;
    /// As people write it, for error texts.
    const TITLE: &'static str;
    /// The field of a successful reply that holds the message id, named in
    /// the error when it is missing.
    const ID_FIELD: &'static str;
    /// Which fields of its delivery report say what.
    const REPORT: ReportFields;

    /// Its section of the settings.
    type Settings: Clone;
    /// Its API's answer, success or error; a body that doesn't read as one
    /// counts as the default.
    type Reply: DeserializeOwned + Default + Send;
    /// Whether a success status may still carry a refusal in its body (as
    /// Vonage's always-200 answers do): then a success without a message id
    /// is read by [`Vendor::refusal`].
    const ERRORS_IN_SUCCESS: bool = false;

    /// Checks, at start, that the settings can send.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first missing setting.
    fn check(settings: &Self::Settings) -> Result<(), ConfigError>;

    /// The vendor as `settings` describe it (checked or not: tests build
    /// one from partial settings).
    fn new(settings: &Self::Settings) -> Self;

    /// The settings with `sender` as the sender (a route's own, for one
    /// country): a number, a short code or an alphanumeric sender id.
    fn set_sender(settings: &mut Self::Settings, sender: &str);

    /// Keeps a route's DLT ids for its requests, and says whether they will
    /// carry them: `false` (the default) for a vendor whose API has no
    /// place for them.
    fn set_dlt(&mut self, _dlt: &Dlt) -> bool {
        false
    }

    /// The setting that makes every request of this vendor need DLT ids
    /// (the generic vendor's templates may name them), if one does.
    fn wants_dlt(_settings: &Self::Settings) -> Option<&'static str> {
        None
    }

    /// What its delivery reports are checked with, and the setting of its
    /// secret; `None` for a vendor whose reports otpd doesn't take.
    fn report_key(settings: &Self::Settings) -> Option<(&'static str, ReportKey)>;

    /// The request that sends `text` to `to`, asking for delivery reports
    /// at `callback` when given; `local_id` is otpd's own name for it.
    fn request(
        &self,
        http: &Client,
        to: &Phone,
        text: &SmsText,
        local_id: &str,
        callback: Option<&str>,
    ) -> RequestBuilder;

    /// Reads an answer's body: JSON unless the vendor answers otherwise (SNS
    /// answers XML); a body that doesn't read counts as the default.
    fn parse_reply(body: &[u8]) -> Self::Reply {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// The message id a successful reply names.
    fn message_id(&self, reply: &Self::Reply) -> Option<String>;

    /// What a reply that isn't success means: a refused number, worth
    /// another try (see [`status_error`]), or final.
    fn refusal(&self, status: StatusCode, reply: Self::Reply) -> AttemptError;

    /// The state a report's status names; `None` for one not tracked.
    fn delivery_state(status: &str) -> Option<DeliveryState>;

    /// Whether a report with these `params` and `headers`, sent to `url`,
    /// was signed with `key`.
    fn report_signed(key: &ReportKey, url: &str, params: &[(String, String)], headers: &HeaderMap) -> bool;
}

/// What a vendor's reports are checked with: the secret (or public key)
/// they are signed with, and how, for a vendor whose accounts choose how
/// they sign (Vonage's signature method; the other vendors sign one way and
/// ignore it).
#[derive(Debug, Clone)]
pub struct ReportKey {
    pub secret: Secret,
    pub method: VonageSignatureMethod,
}

impl ReportKey {
    pub fn new(secret: &Secret) -> Self {
        Self {
            secret: secret.clone(),
            method: VonageSignatureMethod::default(),
        }
    }
}

/// The form fields of a delivery report.
#[derive(Debug, Clone, Copy)]
pub struct ReportFields {
    pub message_id: &'static str,
    pub status: &'static str,
    pub error_code: &'static str,
}

/// A vendor as an `SmsSender`, with the shared failure policy.
#[derive(Debug)]
pub struct VendorSender<V> {
    vendor: V,
    http: reqwest::Client,
    status_callback: Option<String>,
    policy: RetryPolicy,
    metrics: Arc<Metrics>,
}

impl<V: Vendor> VendorSender<V> {
    pub fn new(
        settings: &V::Settings,
        http: reqwest::Client,
        policy: RetryPolicy,
        status_callback: Option<String>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            vendor: V::new(settings),
            http,
            status_callback,
            policy,
            metrics,
        }
    }

    /// Gives the vendor a route's DLT ids; whether its requests carry them.
    pub fn set_dlt(&mut self, dlt: &Dlt) -> bool {
        self.vendor.set_dlt(dlt)
    }

    async fn attempt(&self, to: &Phone, text: &SmsText, local_id: &str) -> Result<String, AttemptError> {
        let response = self
            .vendor
            .request(&self.http, to, text, local_id, self.status_callback.as_deref())
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let reply = response
            .bytes()
            .await
            .map(|body| V::parse_reply(&body))
            .unwrap_or_default();
        if status.is_success() {
            if let Some(id) = self.vendor.message_id(&reply) {
                return Ok(id);
            }
            if !V::ERRORS_IN_SUCCESS {
                return Err(AttemptError::Permanent(format!(
                    "{status} without a {}",
                    V::ID_FIELD
                )));
            }
        }
        Err(self.vendor.refusal(status, reply))
    }
}

#[async_trait]
impl<V: Vendor> SmsSender for VendorSender<V> {
    async fn send(&self, to: &Phone, text: &SmsText, local_id: &str) -> Result<SmsReceipt, SmsError> {
        let tracked = self.status_callback.is_some();
        send_with_retries(V::NAME, to, &self.policy, tracked, &self.metrics, || {
            self.attempt(to, text, local_id)
        })
        .await
    }
}

/// An HTTP answer that isn't success: 429 and 5xx may pass, the rest won't.
/// `detail` is the vendor's, kept as [`vendor_said`] keeps it.
pub fn status_error(status: StatusCode, detail: &str) -> AttemptError {
    let reason = format!("HTTP {}: {}", status.as_u16(), vendor_said(detail));
    if status.as_u16() == 429 || status.is_server_error() {
        AttemptError::Transient(reason, None)
    } else {
        AttemptError::Permanent(reason)
    }
}

/// A setting the vendor can't do without.
///
/// # Errors
/// A [`ConfigError`] naming `key` when `value` is empty.
pub fn required(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        return Err(ConfigError::new(key, "is required by the chosen SMS provider"));
    }
    Ok(())
}

/// A header's value, if it is there and readable.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
