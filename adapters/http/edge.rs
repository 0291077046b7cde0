//! What every request meets on its way in and out, in one layer: an id (the
//! caller's `X-Request-Id`, or a new one) echoed back, the shared data the
//! handlers read, an error turned into its problem document, the `Allow`
//! header of a 405, and one log line and latency sample. Routes are logged by
//! name, never by path: a path can hold a phone number.
//!
//! One layer rather than one per job: each async layer keeps its own copy of
//! the request in its future, and these futures are moved whole into boxes
//! (docs/performance.md).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use poem::http::{HeaderValue, StatusCode};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use poem_openapi::OperationId;

use super::allow::AllowedMethods;
use super::routes::side_route;
use super::{problem, Shared};

pub struct Edge {
    pub shared: Arc<Shared>,
    pub allowed: Arc<AllowedMethods>,
}

impl<E: Endpoint> Middleware<E> for Edge {
    type Output = EdgeEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        EdgeEndpoint {
            inner,
            shared: Arc::clone(&self.shared),
            allowed: Arc::clone(&self.allowed),
        }
    }
}

pub struct EdgeEndpoint<E> {
    inner: E,
    shared: Arc<Shared>,
    allowed: Arc<AllowedMethods>,
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

impl<E: Endpoint> Endpoint for EdgeEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Response> {
        let started = Instant::now();
        let id = request_id(&req);
        let method = req.method().clone();
        let uri = req.uri().clone();
        req.extensions_mut().insert(Arc::clone(&self.shared));
        let mut response = match self.inner.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => problem::catch_all(e).await,
        };
        if response.status() == StatusCode::METHOD_NOT_ALLOWED {
            if let Some(methods) = self.allowed.for_path(uri.path()) {
                response.headers_mut().insert("allow", methods);
            }
        }
        let route = response
            .data::<OperationId>()
            .map_or_else(|| side_route(uri.path()).unwrap_or("unmatched"), |op| op.0);
        let status = response.status();
        let took = started.elapsed();
        self.shared
            .metrics
            .http_request(route, method.as_str(), status.as_str(), took);
        tracing::info!(
            request_id = %id,
            method = %method,
            route,
            status = status.as_u16(),
            latency_ms = took.as_secs_f64() * 1000.0,
            "request"
        );
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert("x-request-id", value);
        }
        Ok(response)
    }
}
