//! The local development pages: an SMS inbox fed by the console sender, and
//! a page that walks through a verification with the public API. They exist
//! only when start-up built an inbox (console only, loopback only: see
//! docs/behaviour.md), are served outside the OpenAPI document, and need no
//! API key. Anywhere else `/dev/...` is an unknown route like any other.

mod pages;

use std::future::Future;
use std::sync::Arc;

use futures_util::future::Either;
use futures_util::TryFutureExt;
use poem::endpoint::BoxEndpoint;
use poem::middleware::SetHeader;
use poem::{get, Endpoint, EndpointExt, IntoResponse, Request, Response, Result, Route};

use crate::adapters::sms::Inbox;

/// The inbox page.
pub const INBOX: &str = "/dev/inbox";
/// The walk-through of a verification.
pub const TRY: &str = "/dev/try";
/// The inbox's messages as JSON, newest first.
pub const MESSAGES: &str = "/dev/inbox/messages";
/// Each new message, as server-sent events.
pub const EVENTS: &str = "/dev/inbox/events";
/// The pages' style sheet and scripts.
pub const STYLE: &str = "/dev/assets/dev.css";
pub const INBOX_SCRIPT: &str = "/dev/assets/inbox.js";
pub const TRY_SCRIPT: &str = "/dev/assets/try.js";

/// Every route, each answering GET only.
pub const ROUTES: [&str; 7] = [INBOX, TRY, MESSAGES, EVENTS, STYLE, INBOX_SCRIPT, TRY_SCRIPT];

/// Where every development page lives.
pub const PREFIX: &str = "/dev";

/// Whether a path is one of the development pages' (served or not).
pub fn is_dev_path(path: &str) -> bool {
    path == PREFIX
        || path
            .strip_prefix(PREFIX)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The pages carry codes: no caching, no framing, nothing but their own
/// scripts and styles, and no guessing of content types. Forms are sent by
/// script, never navigated (`form-action 'none'`).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The pages and their endpoints around one inbox.
pub fn endpoint(inbox: Arc<Inbox>) -> BoxEndpoint<'static, Response> {
    Route::new()
        .at(INBOX, get(pages::inbox_page))
        .at(TRY, get(pages::try_page))
        .at(MESSAGES, get(pages::messages))
        .at(EVENTS, get(pages::events))
        .at(STYLE, get(pages::style))
        .at(INBOX_SCRIPT, get(pages::inbox_script))
        .at(TRY_SCRIPT, get(pages::try_script))
        .data(inbox)
        .with(
            SetHeader::new()
                .overriding("content-security-policy", CONTENT_SECURITY_POLICY)
                .overriding("x-content-type-options", "nosniff")
                .overriding("cache-control", "no-store")
                .overriding("referrer-policy", "no-referrer"),
        )
        .map_to_response()
        .boxed()
}

/// Sends the development paths to `pages`, when there are pages and the
/// request names this machine; everything else goes to `rest`. It sits
/// outside the API key check: the pages are for the developer at this
/// machine, and the key, when one is needed, is typed into the try page.
pub struct Mount<E> {
    pub rest: E,
    pub pages: Option<BoxEndpoint<'static, Response>>,
}

impl<E: Endpoint> Endpoint for Mount<E> {
    type Output = Response;

    fn call(&self, req: Request) -> impl Future<Output = Result<Response>> + Send {
        match &self.pages {
            Some(pages) if is_dev_path(req.uri().path()) && names_loopback(&req) && !proxied(&req) => {
                Either::Left(pages.call(req))
            }
            _ => Either::Right(self.rest.call(req).map_ok(IntoResponse::into_response)),
        }
    }
}

/// Whether a proxy carried the request (from anywhere): the pages are for
/// a browser on this machine, never for one a proxy forwards.
fn proxied(req: &Request) -> bool {
    ["x-forwarded-for", "forwarded", "x-real-ip", "x-forwarded-host"]
        .iter()
        .any(|name| req.headers().contains_key(*name))
}

/// Whether the `Host` the browser asked for is this machine by name or
/// address. A web page elsewhere could otherwise point a name of its own at
/// 127.0.0.1 (DNS rebinding) and read the inbox as its own origin.
fn names_loopback(req: &Request) -> bool {
    let Some(host) = req.header("host").or_else(|| req.uri().host()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_host(host: &str) -> Request {
        Request::builder()
            .uri_str("/dev/inbox")
            .header("host", host)
            .finish()
    }

    #[test]
    fn only_names_of_this_machine_reach_the_pages() {
        for host in [
            "localhost:8080",
            "LOCALHOST",
            "127.0.0.1:8080",
            "127.1.2.3",
            "[::1]:8080",
            "[::1]",
        ] {
            assert!(names_loopback(&with_host(host)), "{host}");
        }
        for host in [
            "example.com",
            "attacker.example:8080",
            "10.0.0.1:8080",
            "[::2]:80",
            "localhost.example",
        ] {
            assert!(!names_loopback(&with_host(host)), "{host}");
        }
    }

    #[test]
    fn dev_paths_are_the_dev_folder_only() {
        for path in ROUTES {
            assert!(is_dev_path(path), "{path}");
        }
        assert!(is_dev_path("/dev"));
        for path in ["/devx", "/v1/otp", "/", "/docs/dev"] {
            assert!(!is_dev_path(path), "{path}");
        }
    }
}
