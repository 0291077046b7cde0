//! Which endpoint serves a path: the OpenAPI operations, or the documents,
//! metrics and development pages served beside them. A request for an
//! operation goes straight to the operations' own router instead of through a
//! router that nests it (one lookup, and no rewritten URI, per request).

use futures_util::future::Either;
use futures_util::TryFutureExt;
use poem::{Endpoint, IntoResponse, Request, Response, Result};

/// The name of a route served beside the operations, or `None` for a path
/// that is the operations' to answer (404 included).
pub fn side_route(path: &str) -> Option<&'static str> {
    match path {
        "/metrics" => Some("metrics"),
        "/openapi.json" | "/openapi.yaml" => Some("spec"),
        p if p == "/docs" || p.starts_with("/docs/") => Some("docs"),
        p if super::dev::is_dev_path(p) => Some("dev"),
        _ => None,
    }
}

pub struct Routes<A, S> {
    pub operations: A,
    pub side: S,
}

impl<A: Endpoint, S: Endpoint> Endpoint for Routes<A, S> {
    type Output = Response;

    fn call(&self, req: Request) -> impl std::future::Future<Output = Result<Response>> + Send {
        match side_route(req.uri().path()) {
            None => Either::Left(self.operations.call(req).map_ok(IntoResponse::into_response)),
            Some(_) => Either::Right(self.side.call(req).map_ok(IntoResponse::into_response)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_and_metrics_are_side_routes() {
        assert_eq!(side_route("/metrics"), Some("metrics"));
        assert_eq!(side_route("/openapi.yaml"), Some("spec"));
        assert_eq!(side_route("/docs"), Some("docs"));
        assert_eq!(side_route("/docs/index.css"), Some("docs"));
        assert_eq!(side_route("/dev/inbox"), Some("dev"));
        for path in ["/v1/otp", "/docsx", "/devx", "/generate_otp", "/", "/nope"] {
            assert_eq!(side_route(path), None, "{path}");
        }
    }
}
