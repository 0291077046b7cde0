//! Delivery reports from Plivo and Twilio. Each is signed with the account's
//! auth token over the URL the vendor was given (`http.public_url` + path,
//! whatever Host the request came with); an unsigned or forged one is
//! refused and nothing is recorded.

use std::collections::BTreeMap;
use std::sync::Arc;

use poem::http::HeaderMap;
use poem::web::Data;
use poem_openapi::payload::{Form, Json};
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::problem::{Problem, ProblemCode};
use super::{ApiTags, Shared};
use crate::adapters::metrics::Metrics;
use crate::adapters::sms::signature::{self, PlivoHeaders};
use crate::adapters::sms::{plivo, twilio};
use crate::config::Secret;
use crate::domain::DeliveryState;
use crate::service::OtpService;

/// What the webhooks check signatures against.
#[derive(Debug, Clone, Default)]
pub struct WebhookKeys {
    /// `http.public_url`, without a trailing slash.
    pub public_url: Option<String>,
    pub plivo_auth_token: Option<Secret>,
    pub twilio_auth_token: Option<Secret>,
}

pub struct WebhookApi;

#[derive(Object)]
pub struct Ack {
    /// Whether the report changed the message's state: an unknown, expired,
    /// repeated or out-of-date report changes nothing.
    recorded: bool,
}

#[derive(ApiResponse)]
pub enum WebhookResponse {
    /// The report was checked and taken.
    #[oai(status = 200)]
    Taken(Json<Ack>),
}

#[derive(ApiResponse, Debug)]
pub enum WebhookError {
    /// The report lacks the message id or its status.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// The signature is missing or wrong.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// The body is over 16 KiB.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The body is not form-encoded.
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// The store did not answer; the vendor will retry.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

fn forbidden(detail: &str) -> WebhookError {
    WebhookError::Forbidden(Json(Problem::new(ProblemCode::InvalidSignature, detail)))
}

fn not_configured() -> WebhookError {
    forbidden("delivery reports from this vendor are not configured here")
}

impl WebhookKeys {
    /// The URL the vendor signed, and its token; none when reports are off.
    fn signing(&self, vendor: &str, token: Option<&Secret>) -> Option<(String, String)> {
        let base = self.public_url.as_ref()?;
        Some((format!("{base}/v1/webhooks/{vendor}"), token?.expose().to_owned()))
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

const TOKEN_RULE: &str = "must be 1 to 64 letters, digits, '-', '_' or '.'";

/// A vendor's message id or error code: short, and nothing that could be
/// markup, a line break or a separator where it is stored or shown.
fn is_token(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Records a checked report. A status the service doesn't track is taken
/// and ignored, so the vendor doesn't retry it.
async fn record(
    service: &OtpService,
    metrics: &Metrics,
    provider: &str,
    params: &BTreeMap<String, String>,
    id_field: &str,
    status_field: &str,
    state_of: fn(&str) -> Option<DeliveryState>,
) -> Result<WebhookResponse, WebhookError> {
    let bad_request =
        |detail: String| WebhookError::BadRequest(Json(Problem::new(ProblemCode::InvalidRequest, detail)));
    let (Some(message_id), Some(status)) = (params.get(id_field), params.get(status_field)) else {
        return Err(bad_request(format!(
            "the report needs {id_field} and {status_field}"
        )));
    };
    // What is stored and shown later must be what a vendor could mean.
    if !is_token(message_id) {
        return Err(bad_request(format!("{id_field} {TOKEN_RULE}")));
    }
    let Some(state) = state_of(status) else {
        return Ok(WebhookResponse::Taken(Json(Ack { recorded: false })));
    };
    // "0" and "000" mean no error in the vendors' reports.
    let error_code = params
        .get("ErrorCode")
        .filter(|c| !c.is_empty() && !c.bytes().all(|b| b == b'0'))
        .cloned();
    if error_code.as_deref().is_some_and(|c| !is_token(c)) {
        return Err(bad_request(format!("ErrorCode {TOKEN_RULE}")));
    }
    let recorded = service
        .report_delivery(provider, message_id, state, error_code)
        .await
        .map_err(|e| WebhookError::Unavailable(Json(Problem::from(e))))?;
    metrics.delivery_report(provider, state.as_str());
    Ok(WebhookResponse::Taken(Json(Ack { recorded })))
}

#[OpenApi(prefix_path = "/v1/webhooks", tag = "ApiTags::Webhooks")]
impl WebhookApi {
    /// Plivo delivery report
    ///
    /// Plivo's message status callback, signed with `X-Plivo-Signature-V3`
    /// (V2, which leaves the body unsigned, is refused). Needs no API key:
    /// the signature is its authentication.
    #[oai(path = "/plivo", method = "post", operation_id = "plivo_delivery_report")]
    async fn plivo(
        &self,
        shared: Data<&Arc<Shared>>,
        headers: &HeaderMap,
        /// `MessageUUID`, `Status`, `ErrorCode` and whatever else Plivo sends.
        form: Form<BTreeMap<String, String>>,
    ) -> Result<WebhookResponse, WebhookError> {
        let keys = &shared.webhook_keys;
        let (url, token) = keys
            .signing("plivo", keys.plivo_auth_token.as_ref())
            .ok_or_else(not_configured)?;
        let params: Vec<(String, String)> = form.0.clone().into_iter().collect();
        let signed = PlivoHeaders {
            v3: header(headers, "x-plivo-signature-v3"),
            v3_nonce: header(headers, "x-plivo-signature-v3-nonce"),
        };
        if !signature::plivo_verified(&token, &url, &params, signed) {
            return Err(forbidden("the Plivo signature is missing or wrong"));
        }
        record(
            &shared.service,
            &shared.metrics,
            plivo::NAME,
            &form.0,
            "MessageUUID",
            "Status",
            plivo::delivery_state,
        )
        .await
    }

    /// Twilio delivery report
    ///
    /// Twilio's message status callback, signed with `X-Twilio-Signature`.
    /// Needs no API key: the signature is its authentication.
    #[oai(path = "/twilio", method = "post", operation_id = "twilio_delivery_report")]
    async fn twilio(
        &self,
        shared: Data<&Arc<Shared>>,
        headers: &HeaderMap,
        /// `MessageSid`, `MessageStatus`, `ErrorCode` and whatever else Twilio sends.
        form: Form<BTreeMap<String, String>>,
    ) -> Result<WebhookResponse, WebhookError> {
        let keys = &shared.webhook_keys;
        let (url, token) = keys
            .signing("twilio", keys.twilio_auth_token.as_ref())
            .ok_or_else(not_configured)?;
        let params: Vec<(String, String)> = form.0.clone().into_iter().collect();
        let given = header(headers, "x-twilio-signature").unwrap_or_default();
        if !signature::twilio_verified(&token, &url, &params, given) {
            return Err(forbidden("the Twilio signature is missing or wrong"));
        }
        record(
            &shared.service,
            &shared.metrics,
            twilio::NAME,
            &form.0,
            "MessageSid",
            "MessageStatus",
            twilio::delivery_state,
        )
        .await
    }
}
