//! Refuses bodies over a size with 413, whether or not they declare a length,
//! and bodies that take too long to arrive with 408, so a slow client can't
//! hold a request open.

use poem::http::StatusCode;
use poem::{Body, Endpoint, Middleware, Request, Result};

pub struct BodyLimit {
    pub max_bytes: usize,
    pub timeout: std::time::Duration,
}

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        BodyLimitEndpoint {
            inner,
            limit: self.max_bytes,
            timeout: self.timeout,
        }
    }
}

pub struct BodyLimitEndpoint<E> {
    inner: E,
    limit: usize,
    timeout: std::time::Duration,
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
        let read = tokio::time::timeout(self.timeout, req.take_body().into_bytes_limit(self.limit));
        let body = read
            .await
            .map_err(|_| {
                let detail = format!(
                    "the request body did not arrive within {} ms",
                    self.timeout.as_millis()
                );
                poem::Error::from_string(detail, StatusCode::REQUEST_TIMEOUT)
            })?
            .map_err(|e| match e {
                poem::error::ReadBodyError::PayloadTooLarge => too_large(),
                other => poem::Error::from_string(other.to_string(), StatusCode::BAD_REQUEST),
            })?;
        req.set_body(Body::from_bytes(body));
        self.inner.call(req).await
    }
}
