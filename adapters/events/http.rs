//! The events' HTTP client: hyper's own pooled client, HTTP/1.1 kept alive
//! per endpoint, over TLS for `https://`. An event POST needs none of what
//! reqwest adds on top (redirects, retries, proxies, decompression, URL
//! handling per request), and on the bench machine that layer cost about
//! 23 µs of CPU per request against hyper's 14 (docs/performance.md).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Most of an answer's body read, so its connection can serve the next
/// event; a longer one is dropped with its connection.
const BODY_READ: usize = 64 * 1024;

/// One POST, as the worker makes it.
pub struct Post<'a> {
    pub uri: &'a Uri,
    pub headers: [(&'static str, String); 3],
    pub body: Bytes,
}

/// What an endpoint answered, as far as delivery cares.
pub struct Answer {
    pub status: StatusCode,
    /// `Retry-After` in seconds, when the endpoint sent one.
    pub retry_after: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("no answer within {0} ms")]
    TimedOut(u64),
    #[error(transparent)]
    Request(#[from] hyper_util::client::legacy::Error),
    #[error("the request could not be made: {0}")]
    Build(#[from] hyper::http::Error),
}

/// Connections to every endpoint, each request bounded by `timeout`.
#[derive(Clone)]
pub struct EventClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl EventClient {
    /// `timeout` bounds a whole attempt: connecting, sending, the answer's
    /// head and as much of its body as is read.
    pub fn new(timeout: Duration) -> Self {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(timeout.min(Duration::from_secs(5))));
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        Self {
            client: Client::builder(TokioExecutor::new()).build(tls),
            timeout,
        }
    }

    pub async fn post(&self, post: Post<'_>) -> Result<Answer, PostError> {
        let millis = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX);
        tokio::time::timeout(self.timeout, self.attempt(post))
            .await
            .map_err(|_| PostError::TimedOut(millis))?
    }

    async fn attempt(&self, post: Post<'_>) -> Result<Answer, PostError> {
        let mut request = Request::post(post.uri.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(
                USER_AGENT,
                HeaderValue::from_static(concat!("otpd/", env!("CARGO_PKG_VERSION"))),
            );
        for (name, value) in post.headers {
            request = request.header(name, value);
        }
        let response = self.client.request(request.body(Full::new(post.body))?).await?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // Read to its end, the connection goes back to the pool; the body
        // itself says nothing delivery needs.
        let _ = Limited::new(response.into_body(), BODY_READ).collect().await;
        Ok(Answer { status, retry_after })
    }
}
