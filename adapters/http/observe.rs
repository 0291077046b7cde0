//! One log line and one latency sample per request, tagged with a request id
//! (the caller's `X-Request-Id`, or a new one) that is echoed back. Routes are
//! logged by name, never by path: a path can hold a phone number.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use poem_openapi::OperationId;

use crate::adapters::metrics::Metrics;

pub struct Observe(pub Arc<Metrics>);

impl<E: Endpoint> Middleware<E> for Observe {
    type Output = ObserveEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ObserveEndpoint {
            inner,
            metrics: Arc::clone(&self.0),
        }
    }
}

pub struct ObserveEndpoint<E> {
    inner: E,
    metrics: Arc<Metrics>,
}

/// A caller's id is kept if it is short and printable, so it can't forge
/// log lines; otherwise a new one is made: this process's random prefix and a
/// count, unique without a trip to the OS's random source per request.
fn request_id(req: &Request) -> String {
    static PROCESS: LazyLock<String> =
        LazyLock::new(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_owned());
    static COUNT: AtomicU64 = AtomicU64::new(0);
    req.header("x-request-id")
        .filter(|id| !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(
            || format!("{}-{}", *PROCESS, COUNT.fetch_add(1, Ordering::Relaxed)),
            str::to_owned,
        )
}

/// The name of a route served outside the OpenAPI operations.
fn fixed_route(path: &str) -> &'static str {
    match path {
        "/metrics" => "metrics",
        "/openapi.json" | "/openapi.yaml" => "spec",
        p if p == "/docs" || p.starts_with("/docs/") => "docs",
        _ => "unmatched",
    }
}

impl<E: Endpoint> Endpoint for ObserveEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        let started = Instant::now();
        let id = request_id(&req);
        let method = req.method().clone();
        let fixed = fixed_route(req.uri().path());
        let mut response = match self.inner.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        let route = response.data::<OperationId>().map_or(fixed, |op| op.0);
        let status = response.status().as_u16();
        let took = started.elapsed();
        self.metrics.http_request(route, method.as_str(), status, took);
        tracing::info!(
            request_id = %id,
            method = %method,
            route,
            status,
            latency_ms = took.as_secs_f64() * 1000.0,
            "request"
        );
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert("x-request-id", value);
        }
        Ok(response)
    }
}
