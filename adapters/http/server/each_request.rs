//! What every request meets on its way in and out, in one layer: a method
//! outside HTTP's own refused at once, an id (the caller's `X-Request-Id`, or
//! a new random one) echoed back, the shared data the handlers read, an error
//! turned into its problem document, the `Allow` header of a 405,
//! `nosniff`, Twilio's error shape on `/v2`, and one log line and latency
//! sample. Every label and log field
//! comes from a closed set: routes by name, never by path (a path can hold a
//! phone number), methods by name or `other`.
//!
//! One layer rather than one per job: each async layer keeps its own copy of
//! the request in its future, and these futures are moved whole into boxes
//! (docs/performance.md).

use std::sync::Arc;
use std::time::Instant;

use poem::http::{HeaderValue, Method, StatusCode};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use poem_openapi::OperationId;

use crate::adapters::http::problem::{self, twilio, Problem, ProblemCode};
use crate::adapters::http::server::route_table::{side_name, RouteTable};
use crate::adapters::http::Shared;

pub struct EachRequest {
    pub shared: Arc<Shared>,
    pub routes: Arc<RouteTable>,
}

impl<E: Endpoint> Middleware<E> for EachRequest {
    type Output = EachRequestEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        EachRequestEndpoint {
            inner,
            shared: Arc::clone(&self.shared),
            routes: Arc::clone(&self.routes),
        }
    }
}

pub struct EachRequestEndpoint<E> {
    inner: E,
    shared: Arc<Shared>,
    routes: Arc<RouteTable>,
}

/// A caller's id is kept if it is short and printable, so it can't forge
/// log lines; otherwise a new one is made of 96 random bits from the
/// thread's CSPRNG, which says nothing of how many requests came before.
fn request_id(req: &Request) -> String {
    req.header("x-request-id")
        .filter(|id| !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| hex::encode(rand::random::<[u8; 12]>()), str::to_owned)
}

/// The method as a label: one of HTTP's own (RFC 9110, and PATCH), else
/// `None`. hyper takes any token as a method, hundreds of kilobytes long.
fn method_label(method: &Method) -> Option<&'static str> {
    Some(match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => return None,
    })
}

impl<E: Endpoint> Endpoint for EachRequestEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Response> {
        let started = Instant::now();
        let id = request_id(&req);
        let method = method_label(req.method());
        let uri = req.uri().clone();
        let mut response = match method {
            // No route takes it: answered before any body, key or route
            // work; a route that exists says which methods it takes (405
            // and `Allow`, below), any other path 501.
            None if self.routes.allow(uri.path()).is_some() => Problem::new(
                ProblemCode::MethodNotAllowed,
                "the route does not take this method",
            )
            .into_response(),
            None => Problem::new(
                ProblemCode::MethodNotImplemented,
                "the method is not one HTTP defines",
            )
            .into_response(),
            Some(_) => {
                req.extensions_mut().insert(Arc::clone(&self.shared));
                match self.inner.call(req).await {
                    Ok(r) => r.into_response(),
                    Err(e) => problem::catch_all(e).await,
                }
            }
        };
        if response.status() == StatusCode::METHOD_NOT_ALLOWED {
            if let Some(methods) = self.routes.allow(uri.path()) {
                response.headers_mut().insert("allow", methods);
            }
        }
        if uri.path().starts_with("/v2/") {
            // The Twilio Verify routes answer Twilio's errors, even those
            // raised before their handlers.
            response = twilio::translate(response);
        }
        let route = response
            .data::<OperationId>()
            .map_or_else(|| side_name(uri.path()).unwrap_or("unmatched"), |op| op.0);
        let status = response.status();
        let took = started.elapsed();
        let method = method.unwrap_or("other");
        self.shared
            .metrics
            .http_request(route, method, status.as_str(), took);
        tracing::info!(
            request_id = %id,
            method,
            route,
            status = status.as_u16(),
            latency_ms = took.as_secs_f64() * 1000.0,
            "request"
        );
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&id) {
            headers.insert("x-request-id", value);
        }
        headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
        Ok(response)
    }
}
