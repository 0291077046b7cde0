//! Which endpoint serves a path: the OpenAPI operations, or the documents,
//! metrics and development pages served beside them. A request for an
//! operation goes straight to the operations' own router instead of through a
//! router that nests it (one lookup, and no rewritten URI, per request).

use futures_util::future::Either;
use futures_util::TryFutureExt;
use poem::{Endpoint, IntoResponse, Request, Response, Result};

use crate::adapters::http::server::route_table::side_name;

pub struct Dispatch<A, S> {
    pub operations: A,
    pub side: S,
}

impl<A: Endpoint, S: Endpoint> Endpoint for Dispatch<A, S> {
    type Output = Response;

    fn call(&self, req: Request) -> impl std::future::Future<Output = Result<Response>> + Send {
        match side_name(req.uri().path()) {
            None => Either::Left(self.operations.call(req).map_ok(IntoResponse::into_response)),
            Some(_) => Either::Right(self.side.call(req).map_ok(IntoResponse::into_response)),
        }
    }
}
