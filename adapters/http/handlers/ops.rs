//! For whoever runs the service: liveness, readiness and metrics.

use std::sync::Arc;

use poem::web::Data;
use poem::{handler, IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::adapters::http::problem::{Problem, ProblemCode};
use crate::adapters::http::{ApiTags, Shared};
use crate::adapters::metrics::Metrics;
use crate::ports::ErrorChain;

pub struct OpsApi;

#[derive(Object)]
pub struct Health {
    /// `ok`.
    status: String,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Readiness {
    /// `ready`.
    status: String,
    /// `ok`: the store answered a PING in time.
    store: String,
    /// The SMS provider chain, checked complete at start; only on a
    /// service without API keys.
    sms: Option<String>,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// The process is serving.
    #[oai(status = 200)]
    Alive(Json<Health>),
}

#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// Ready to send and verify codes.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// A part the service needs does not answer; `detail` says which.
    #[oai(status = 503, content_type = "application/problem+json")]
    NotReady(Json<Problem>),
}

#[OpenApi(tag = "ApiTags::Operations")]
impl OpsApi {
    /// Liveness
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> HealthResponse {
        HealthResponse::Alive(Json(Health { status: "ok".into() }))
    }

    /// Readiness
    ///
    /// 200 only while the store answers a PING within its timeout.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, shared: Data<&Arc<Shared>>) -> ReadyResponse {
        match shared.service.ping_store().await {
            Ok(()) => ReadyResponse::Ready(Json(Readiness {
                status: "ready".into(),
                store: "ok".into(),
                sms: Some(shared.sms_chain.0.clone()).filter(|chain| !chain.is_empty()),
            })),
            Err(e) => {
                // The cause is for the operator's logs; the answer names the part.
                tracing::warn!(error = %ErrorChain(&e), "not ready: the store does not answer");
                ReadyResponse::NotReady(Json(Problem::new(ProblemCode::NotReady, "store: not answering")))
            }
        }
    }
}

/// The SMS providers in use, as readiness reports them (`plivo, then twilio`).
#[derive(Debug, Clone, Default)]
pub struct SmsChain(pub String);

/// Prometheus text format.
#[handler]
pub async fn metrics(metrics: Data<&Arc<Metrics>>) -> Response {
    metrics
        .render()
        .with_content_type("text/plain; version=0.0.4")
        .into_response()
}
