//! The HTTP surface: the `/v1` API and the drop-in routes, described by a
//! generated OpenAPI document with Swagger UI at `/docs`, and the local
//! development pages under `/dev` when start-up built an inbox.

mod answers;
pub mod dev;
pub mod extract;
pub mod handlers;
pub mod problem;
pub mod server;

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, IntoEndpoint, Route};
use poem_openapi::{OpenApiService, Tags};

use self::extract::auth::{self, ApiKeys};
use self::extract::client_ip::TrustedProxies;
use self::handlers::ops::{self, SmsChain};
use self::handlers::twilio_verify::TwilioSurface;
use self::handlers::webhooks::WebhookKeys;
use self::handlers::{documents, dropin, otp, twilio_verify, verifications, voice_answers, webhooks};
use self::server::route_table::{self, RouteTable};
use self::server::{body_limit, dispatch, each_request};
use crate::adapters::metrics::Metrics;
use crate::adapters::sms::sealed_speech::SpeechSeal;
use crate::adapters::sms::Inbox;
use crate::service::OtpService;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

#[derive(Tags)]
pub enum ApiTags {
    /// Send and verify one-time codes.
    Otp,
    /// The original service's routes, for old clients. Use `/v1` in new code.
    DropIn,
    /// Delivery reports from the SMS vendors, checked by their signatures.
    Webhooks,
    /// Liveness and readiness, for whoever runs the service.
    Operations,
    /// Twilio Verify v2, on the wire: point a Twilio SDK at otpd
    /// (docs/twilio-migration.md). Signed in with HTTP Basic (account SID
    /// and auth token); errors in Twilio's shape, not problems.
    TwilioVerify,
}

pub type Spec = OpenApiService<
    (
        otp::OtpApi,
        verifications::VerificationApi,
        twilio_verify::TwilioVerifyApi,
        webhooks::WebhookApi,
        voice_answers::VoiceAnswerApi,
        dropin::DropInApi,
        ops::OpsApi,
    ),
    (),
>;

/// The API description; the committed `openapi.yaml` is `spec().spec_yaml()`.
pub fn spec() -> Spec {
    OpenApiService::new(
        (
            otp::OtpApi,
            verifications::VerificationApi,
            twilio_verify::TwilioVerifyApi,
            webhooks::WebhookApi,
            voice_answers::VoiceAnswerApi,
            dropin::DropInApi,
            ops::OpsApi,
        ),
        "otpd",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Sends 6-digit one-time codes by SMS and verifies each exactly once. \
         Every error is `application/problem+json` with a stable `code`.",
    )
}

/// Who may call, and how the client's address is read.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub api_keys: ApiKeys,
    pub trusted_proxies: TrustedProxies,
    pub webhook_keys: WebhookKeys,
    /// Longest time to receive a request body.
    pub body_timeout: std::time::Duration,
    /// The Twilio Verify API, when configured.
    pub twilio: Option<Arc<TwilioSurface>>,
    /// What opens the words Plivo fetches for a call, when calls go
    /// through Plivo.
    pub answer_seal: Option<Arc<SpeechSeal>>,
}

/// What the handlers need, put on each request as one piece of data rather
/// than one per part: each piece is a map insert and a layer of the request's
/// future.
pub struct Shared {
    pub service: Arc<OtpService>,
    pub metrics: Arc<Metrics>,
    pub sms_chain: SmsChain,
    pub trusted_proxies: TrustedProxies,
    pub webhook_keys: WebhookKeys,
    pub twilio: Option<Arc<TwilioSurface>>,
    pub answer_seal: Option<Arc<SpeechSeal>>,
}

/// The whole HTTP application around one service. `/metrics` is served here
/// unless `metrics_elsewhere` (see [`metrics_app`]); the `/dev` pages only
/// with an `inbox`.
pub fn app(
    service: Arc<OtpService>,
    access: Access,
    metrics: Arc<Metrics>,
    sms_chain: SmsChain,
    metrics_elsewhere: bool,
    inbox: Option<Arc<Inbox>>,
) -> impl Endpoint {
    let spec = spec();
    let route_table = Arc::new(RouteTable::from_spec(&spec.spec()));
    let swagger_ui = Arc::new(documents::Document::page(spec.swagger_ui_html()));
    let mut side = Route::new()
        .at(
            route_table::SPEC_JSON,
            documents::Document::new("application/json; charset=utf-8", spec.spec()),
        )
        .at(
            route_table::SPEC_YAML,
            documents::Document::new("application/yaml; charset=utf-8", spec.spec_yaml()),
        )
        .at(route_table::DOCS, Arc::clone(&swagger_ui))
        .at(format!("{}/", route_table::DOCS), swagger_ui);
    if !metrics_elsewhere {
        side = side.at(route_table::METRICS, ops::metrics.data(Arc::clone(&metrics)));
    }
    // Readiness is open to every prober; which vendors otpd uses is the
    // operator's business once callers need a key.
    let sms_chain = if access.api_keys.is_empty() {
        sms_chain
    } else {
        SmsChain::default()
    };
    let shared = Shared {
        service,
        metrics,
        sms_chain,
        trusted_proxies: access.trusted_proxies,
        webhook_keys: access.webhook_keys,
        twilio: access.twilio,
        answer_seal: access.answer_seal,
    };
    let api = dispatch::Dispatch {
        operations: spec.into_endpoint(),
        side,
    }
    .with(body_limit::BodyLimit {
        max_bytes: MAX_BODY_BYTES,
        timeout: access.body_timeout,
    })
    .with(auth::RequireApiKey {
        keys: Arc::new(access.api_keys),
        routes: Arc::clone(&route_table),
    });
    dev::Mount {
        rest: api,
        pages: inbox.map(dev::endpoint),
    }
    .with(each_request::EachRequest {
        shared: Arc::new(shared),
        routes: route_table,
    })
}

/// Just `/metrics`, for `metrics.listen`.
pub fn metrics_app(metrics: Arc<Metrics>) -> impl Endpoint {
    Route::new()
        .at(route_table::METRICS, ops::metrics)
        .data(metrics)
        .catch_all_error(problem::catch_all)
}
