//! Refuses bodies over a size with 413, whether or not they declare a length.

use poem::http::StatusCode;
use poem::{Body, Endpoint, Middleware, Request, Result};

pub struct BodyLimit(pub usize);

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        BodyLimitEndpoint { inner, limit: self.0 }
    }
}

pub struct BodyLimitEndpoint<E> {
    inner: E,
    limit: usize,
}

impl<E: Endpoint> Endpoint for BodyLimitEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let limit = self.limit;
        let too_large = || {
            poem::Error::from_string(
                format!("the request body is over {limit} bytes"),
                StatusCode::PAYLOAD_TOO_LARGE,
            )
        };
        let declared = req.header("content-length").and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > self.limit) {
            return Err(too_large());
        }
        // A body without a length (chunked) is read up to the limit, no further.
        let body = req
            .take_body()
            .into_bytes_limit(self.limit)
            .await
            .map_err(|e| match e {
                poem::error::ReadBodyError::PayloadTooLarge => too_large(),
                other => poem::Error::from_string(other.to_string(), StatusCode::BAD_REQUEST),
            })?;
        req.set_body(Body::from_bytes(body));
        self.inner.call(req).await
    }
}
