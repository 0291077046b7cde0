//! Delivery reports from Plivo, Twilio, Vonage and Telnyx, and the calls'
//! reports from Plivo and Twilio. Plivo and Twilio
//! sign with the account's auth token over the URL the vendor was given
//! (`http.public_url` + path, whatever Host the request came with); Vonage
//! signs the receipt's fields with the signature secret, by the method the
//! account chose, and sends them as a query, a form or JSON, and its call
//! events with a JWT over the raw body's hash; Telnyx signs the raw body
//! with its Ed25519 key. An unsigned or forged report is
//! refused and nothing is recorded.

use std::collections::BTreeMap;
use std::sync::Arc;

use poem::http::{HeaderMap, Uri};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::{Form, Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::adapters::http::extract::raw_json::RawJson;
use crate::adapters::http::extract::report_params::ReportParams;
use crate::adapters::http::problem::{Problem, ProblemCode};
use crate::adapters::http::{ApiTags, Shared};
use crate::adapters::sms::meta;
use crate::adapters::sms::plivo::{voice as plivo_voice, Plivo};
use crate::adapters::sms::telnyx::Telnyx;
use crate::adapters::sms::twilio::{voice, Twilio};
use crate::adapters::sms::vonage::{call_events, voice as vonage_voice, Vonage};
use crate::adapters::sms::{ReportFields, ReportKey, Vendor, RAW_BODY};
use crate::config::Secret;
use crate::domain::DeliveryState;

/// What the webhooks check signatures against.
#[derive(Debug, Clone, Default)]
pub struct WebhookKeys {
    /// `http.public_url`, without a trailing slash.
    pub public_url: Option<String>,
    /// What each vendor whose reports are taken signs them with, by vendor
    /// name.
    pub tokens: BTreeMap<&'static str, ReportKey>,
    /// Meta's, when WhatsApp messages go through its Cloud API.
    pub meta: Option<MetaKeys>,
}

/// What Meta's webhook is checked with.
#[derive(Debug, Clone)]
pub struct MetaKeys {
    /// Signs each notification (`X-Hub-Signature-256`).
    pub app_secret: Secret,
    /// What the verification request must carry as `hub.verify_token`.
    pub verify_token: Secret,
}

/// Where `vendor` posts its reports, as it is told at each send and as it
/// signs them. The path is the route's below (`/v1/webhooks/<name>`).
pub fn report_url(public_url: &str, vendor: &str) -> String {
    format!("{public_url}/v1/webhooks/{vendor}")
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

#[derive(ApiResponse)]
pub enum ChallengeResponse {
    /// The verification request's challenge, as it was sent.
    #[oai(status = 200)]
    Answer(PlainText<String>),
}

#[derive(ApiResponse, Debug)]
pub enum WebhookError {
    /// The report lacks the message id or its status, or doesn't read as
    /// one (Vonage's: a parameter twice, or not UTF-8).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// The signature is missing or wrong.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// The body is over 16 KiB.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The body is not of the route's type: form-encoded, or JSON for
    /// Telnyx, Meta and Vonage's call events; either for Vonage's receipts.
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// The store did not answer; the vendor will retry.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

fn forbidden(detail: &str) -> WebhookError {
    WebhookError::Forbidden(Json(Problem::new(ProblemCode::InvalidSignature, detail)))
}

fn bad_request(detail: String) -> WebhookError {
    WebhookError::BadRequest(Json(Problem::new(ProblemCode::InvalidRequest, detail)))
}

fn not_configured() -> WebhookError {
    forbidden("delivery reports from this vendor are not configured here")
}

const TOKEN_RULE: &str = "must be 1 to 64 letters, digits, '-', '_' or '.'";
const WAMID_RULE: &str = "must be 1 to 128 letters, digits, '-', '_', '.', '+', '/' or '='";

/// A WhatsApp message id (`wamid.` and base64): longer than other
/// vendors' ids, and base64's characters, none of them markup or a
/// separator where it is stored or shown.
fn is_wamid(text: &str) -> bool {
    (1..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+' | b'/' | b'='))
}

/// A vendor's message id or error code: short, and nothing that could be
/// markup, a line break or a separator where it is stored or shown.
fn is_token(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// What a kind of report is: where it is posted, its fields, their states
/// and its signature.
struct ReportKind {
    provider: &'static str,
    title: &'static str,
    /// Its path below `http.public_url`, as the vendor was told it.
    path: String,
    fields: ReportFields,
    state: fn(&str) -> Option<DeliveryState>,
    signed: SignatureCheck,
}

/// Whether a report's params and headers, posted to a URL, were signed
/// with a key.
type SignatureCheck = fn(&ReportKey, &str, &[(String, String)], &HeaderMap) -> bool;

impl ReportKind {
    /// A vendor's message reports, at `/v1/webhooks/<name>`.
    fn of<V: Vendor>() -> Self {
        Self {
            provider: V::NAME,
            title: V::TITLE,
            path: report_url("", V::NAME),
            fields: V::REPORT,
            state: V::delivery_state,
            signed: V::report_signed,
        }
    }
}

/// Checks a report's signature and records it. A status the service doesn't
/// track is taken and ignored, so the vendor doesn't retry it.
async fn take<V: Vendor>(
    shared: &Shared,
    headers: &HeaderMap,
    params: BTreeMap<String, String>,
) -> Result<WebhookResponse, WebhookError> {
    take_report(shared, &ReportKind::of::<V>(), headers, params).await
}

async fn take_report(
    shared: &Shared,
    kind: &ReportKind,
    headers: &HeaderMap,
    params: BTreeMap<String, String>,
) -> Result<WebhookResponse, WebhookError> {
    let keys = &shared.webhook_keys;
    let (Some(base), Some(token)) = (&keys.public_url, keys.tokens.get(kind.provider)) else {
        return Err(not_configured());
    };
    let url = format!("{base}{}", kind.path);
    let pairs: Vec<(String, String)> = params.clone().into_iter().collect();
    if !(kind.signed)(token, &url, &pairs, headers) {
        return Err(forbidden(&format!(
            "the {} signature is missing or wrong",
            kind.title
        )));
    }
    let fields = kind.fields;
    let (Some(message_id), Some(status)) = (params.get(fields.message_id), params.get(fields.status)) else {
        return Err(bad_request(format!(
            "the report needs {} and {}",
            fields.message_id, fields.status
        )));
    };
    // What is stored and shown later must be what a vendor could mean.
    if !is_token(message_id) {
        return Err(bad_request(format!("{} {TOKEN_RULE}", fields.message_id)));
    }
    let Some(state) = (kind.state)(status) else {
        return Ok(WebhookResponse::Taken(Json(Ack { recorded: false })));
    };
    // "0" and "000" mean no error in the vendors' reports, and a delivered
    // message has none (Plivo names every hangup's cause, even a normal one).
    let error_code = params
        .get(fields.error_code)
        .filter(|c| !c.is_empty() && !c.bytes().all(|b| b == b'0'))
        .filter(|_| state != DeliveryState::Delivered)
        .cloned();
    if error_code.as_deref().is_some_and(|c| !is_token(c)) {
        return Err(bad_request(format!("{} {TOKEN_RULE}", fields.error_code)));
    }
    let recorded = shared
        .service
        .report_delivery(kind.provider, message_id, state, error_code)
        .await
        .map_err(|e| WebhookError::Unavailable(Json(Problem::from(e))))?;
    shared.metrics.delivery_report(kind.provider, state.as_str());
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
        take::<Plivo>(&shared, headers, form.0).await
    }

    /// Plivo call hangup
    ///
    /// Plivo's hangup callback of a call that read a code, matched by its
    /// `RequestUUID` (`CallStatus` `completed` is the code heard; `busy`,
    /// `no-answer` and `timeout` reached no one; `failed` and `cancel`
    /// failed), signed with `X-Plivo-Signature-V3`. Needs no API key: the
    /// signature is its authentication.
    #[oai(path = "/plivo/calls", method = "post", operation_id = "plivo_call_hangup")]
    async fn plivo_calls(
        &self,
        shared: Data<&Arc<Shared>>,
        headers: &HeaderMap,
        /// `RequestUUID`, `CallStatus`, `HangupCause` and whatever else Plivo sends.
        form: Form<BTreeMap<String, String>>,
    ) -> Result<WebhookResponse, WebhookError> {
        let kind = ReportKind {
            path: plivo_voice::CALLBACK_PATH.to_owned(),
            fields: ReportFields {
                message_id: plivo_voice::REQUEST_UUID,
                status: plivo_voice::CALL_STATUS,
                error_code: plivo_voice::HANGUP_CAUSE,
            },
            state: plivo_voice::call_state,
            ..ReportKind::of::<Plivo>()
        };
        take_report(&shared, &kind, headers, form.0).await
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
        take::<Twilio>(&shared, headers, form.0).await
    }

    /// Twilio call status
    ///
    /// Twilio's status callback of a call that read a code (`CallStatus`
    /// `completed` is the code heard; `busy`, `no-answer`, `failed` and
    /// `canceled` reached no one), signed with `X-Twilio-Signature`. Needs
    /// no API key: the signature is its authentication.
    #[oai(path = "/twilio/calls", method = "post", operation_id = "twilio_call_status")]
    async fn twilio_calls(
        &self,
        shared: Data<&Arc<Shared>>,
        headers: &HeaderMap,
        /// `CallSid`, `CallStatus` and whatever else Twilio sends.
        form: Form<BTreeMap<String, String>>,
    ) -> Result<WebhookResponse, WebhookError> {
        let kind = ReportKind {
            path: voice::CALLBACK_PATH.to_owned(),
            fields: ReportFields {
                message_id: voice::CALL_SID,
                status: voice::CALL_STATUS,
                error_code: Twilio::REPORT.error_code,
            },
            state: voice::call_state,
            ..ReportKind::of::<Twilio>()
        };
        take_report(&shared, &kind, headers, form.0).await
    }

    /// Vonage delivery receipt
    ///
    /// Vonage's SMS API delivery receipt, posted as a form or as JSON (the
    /// account's webhook method POST or POST-JSON), signed with `sig` and
    /// `timestamp` by the account's signature secret and the method set in
    /// `sms.vonage.signature_method`. Each parameter may come once. Needs no
    /// API key: the signature is its authentication.
    #[oai(path = "/vonage", method = "post", operation_id = "vonage_delivery_report")]
    async fn vonage(
        &self,
        shared: Data<&Arc<Shared>>,
        headers: &HeaderMap,
        /// `messageId`, `status`, `err-code`, `timestamp`, `sig` and whatever else Vonage sends.
        params: ReportParams,
    ) -> Result<WebhookResponse, WebhookError> {
        take::<Vonage>(&shared, headers, params.0).await
    }

    /// Vonage delivery receipt, by GET
    ///
    /// The same receipt as a query string (the account's webhook method
    /// GET): `messageId`, `status`, `err-code`, `timestamp`, `sig` and
    /// whatever else Vonage sends, each once. Needs no API key: the
    /// signature is its authentication.
    #[oai(path = "/vonage", method = "get", operation_id = "vonage_delivery_report_get")]
    async fn vonage_get(
        &self,
        shared: Data<&Arc<Shared>>,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Result<WebhookResponse, WebhookError> {
        let query = uri.query().unwrap_or_default();
        let params = ReportParams::from_urlencoded(query.as_bytes()).map_err(bad_request)?;
        take::<Vonage>(&shared, headers, params.0).await
    }

    /// Vonage call event
    ///
    /// Vonage's Voice API event of a call that read a code (`status`
    /// `completed` is the code heard; `busy`, `timeout`, `unanswered`,
    /// `rejected`, `failed` and `cancelled` reached no one), signed with a
    /// JWT in `Authorization: Bearer` (HS256, the account's signature
    /// secret) whose `payload_hash` is the body's SHA-256 and whose `iat`
    /// is at most five minutes old. Needs no API key: the signature is its
    /// authentication.
    #[oai(path = "/vonage/calls", method = "post", operation_id = "vonage_call_event")]
    async fn vonage_calls(
        &self,
        shared: Data<&Arc<Shared>>,
        headers: &HeaderMap,
        /// The event: `uuid`, `status`, `detail` and whatever else Vonage sends.
        body: RawJson,
    ) -> Result<WebhookResponse, WebhookError> {
        let kind = ReportKind {
            path: vonage_voice::CALLBACK_PATH.to_owned(),
            fields: ReportFields {
                message_id: call_events::CALL_UUID,
                status: call_events::CALL_STATUS,
                error_code: call_events::CALL_DETAIL,
            },
            state: vonage_voice::call_state,
            signed: call_events::signed,
            ..ReportKind::of::<Vonage>()
        };
        let mut params = BTreeMap::new();
        for name in [kind.fields.message_id, kind.fields.status, kind.fields.error_code] {
            if let Some(value) = body.value[name].as_str() {
                params.insert(name.to_owned(), value.to_owned());
            }
        }
        params.insert(RAW_BODY.to_owned(), body.raw);
        take_report(&shared, &kind, headers, params).await
    }

    /// Telnyx delivery report
    ///
    /// Telnyx's `message.sent` and `message.finalized` webhooks, signed with
    /// `telnyx-signature-ed25519` over `telnyx-timestamp|body`. Needs no
    /// API key: the signature is its authentication.
    #[oai(path = "/telnyx", method = "post", operation_id = "telnyx_delivery_report")]
    async fn telnyx(
        &self,
        shared: Data<&Arc<Shared>>,
        headers: &HeaderMap,
        /// The event: `data.payload.id`, `data.payload.to[0].status`, `data.payload.errors[0].code`.
        body: RawJson,
    ) -> Result<WebhookResponse, WebhookError> {
        let payload = &body.value["data"]["payload"];
        let field = |value: &serde_json::Value| value.as_str().map(str::to_owned);
        let fields = Telnyx::REPORT;
        let mut params = BTreeMap::new();
        for (name, value) in [
            (fields.message_id, field(&payload["id"])),
            (fields.status, field(&payload["to"][0]["status"])),
            (fields.error_code, field(&payload["errors"][0]["code"])),
        ] {
            if let Some(value) = value {
                params.insert(name.to_owned(), value);
            }
        }
        params.insert(RAW_BODY.to_owned(), body.raw);
        take::<Telnyx>(&shared, headers, params).await
    }

    /// Meta webhook verification
    ///
    /// The request Meta makes when the app's webhook is set: it subscribes
    /// with the configured `whatsapp.meta.verify_token`, and is answered
    /// with its `hub.challenge`. Anything else is refused.
    #[oai(path = "/meta", method = "get", operation_id = "meta_webhook_verification")]
    async fn meta_verification(
        &self,
        shared: Data<&Arc<Shared>>,
        #[oai(name = "hub.mode")] mode: Query<Option<String>>,
        #[oai(name = "hub.verify_token")] token: Query<Option<String>>,
        #[oai(name = "hub.challenge")] challenge: Query<Option<String>>,
    ) -> Result<ChallengeResponse, WebhookError> {
        let keys = shared.webhook_keys.meta.as_ref().ok_or_else(not_configured)?;
        meta::challenge_answer(
            mode.0.as_deref(),
            token.0.as_deref(),
            challenge.0.as_deref(),
            &keys.verify_token,
        )
        .map(|challenge| ChallengeResponse::Answer(PlainText(challenge)))
        .map_err(|refused| match refused {
            meta::ChallengeRefused::Token => forbidden("the verification request's mode or token is wrong"),
            meta::ChallengeRefused::Challenge => {
                bad_request("hub.challenge must be 1 to 128 letters and digits".to_owned())
            }
        })
    }

    /// WhatsApp message statuses
    ///
    /// Meta's `messages` webhook, signed with the app secret
    /// (`X-Hub-Signature-256`) over the raw body. Each status (`sent`,
    /// `delivered`, `read`, `failed`) of a message otpd sent is recorded as
    /// its delivery; anything else the body carries is taken and ignored.
    /// Needs no API key: the signature is its authentication.
    #[oai(path = "/meta", method = "post", operation_id = "meta_message_statuses")]
    async fn meta(
        &self,
        shared: Data<&Arc<Shared>>,
        headers: &HeaderMap,
        /// The notification: `entry[].changes[].value.statuses[]`.
        body: RawJson,
    ) -> Result<WebhookResponse, WebhookError> {
        let keys = shared.webhook_keys.meta.as_ref().ok_or_else(not_configured)?;
        let signature = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok());
        if !meta::signed(&keys.app_secret, body.raw.as_bytes(), signature) {
            return Err(forbidden("the Meta signature is missing or wrong"));
        }
        let mut recorded = false;
        for status in meta::statuses(&body.value) {
            let Some(state) = status.state else {
                continue;
            };
            if !is_wamid(&status.message_id) {
                return Err(bad_request(format!("a status's id {WAMID_RULE}")));
            }
            let taken = shared
                .service
                .report_delivery(meta::NAME, &status.message_id, state, status.error_code)
                .await
                .map_err(|e| WebhookError::Unavailable(Json(Problem::from(e))))?;
            shared.metrics.delivery_report(meta::NAME, state.as_str());
            recorded |= taken;
        }
        Ok(WebhookResponse::Taken(Json(Ack { recorded })))
    }
}
