//! The handlers behind the development routes: two pages and their assets,
//! embedded in the binary so they work offline, and the inbox as JSON and as
//! a stream of server-sent events.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, Stream};
use poem::web::sse::{Event, SSE};
use poem::web::{Data, Json};
use poem::{handler, IntoResponse, Response};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use crate::adapters::sms::{Inbox, InboxMessage};

/// A comment on the event stream this often keeps it from looking idle to
/// the browser, to proxies and to `http.idle_timeout_secs` (60 s by default).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

fn asset(body: &'static str, content_type: &'static str) -> Response {
    body.with_content_type(content_type).into_response()
}

#[handler]
pub fn inbox_page() -> Response {
    asset(include_str!("assets/inbox.html"), "text/html; charset=utf-8")
}

#[handler]
pub fn try_page() -> Response {
    asset(include_str!("assets/try.html"), "text/html; charset=utf-8")
}

#[handler]
pub fn style() -> Response {
    asset(include_str!("assets/dev.css"), "text/css; charset=utf-8")
}

#[handler]
pub fn inbox_script() -> Response {
    asset(include_str!("assets/inbox.js"), "text/javascript; charset=utf-8")
}

#[handler]
pub fn try_script() -> Response {
    asset(include_str!("assets/try.js"), "text/javascript; charset=utf-8")
}

#[derive(Serialize)]
pub struct Messages {
    /// Newest first.
    messages: Vec<InboxMessage>,
    /// How many the inbox keeps; older ones are dropped.
    capacity: usize,
}

#[handler]
pub fn messages(inbox: Data<&Arc<Inbox>>) -> Json<Messages> {
    Json(Messages {
        messages: inbox.newest_first(),
        capacity: inbox.capacity(),
    })
}

/// Each message from now on as an event whose data is its JSON, and a
/// `resync` event when this stream fell behind and lost some (the page then
/// reloads the list). Ends when the inbox closes at shutdown.
#[handler]
pub fn events(inbox: Data<&Arc<Inbox>>) -> SSE {
    SSE::new(news(&inbox)).keep_alive(KEEP_ALIVE)
}

fn news(inbox: &Inbox) -> impl Stream<Item = Event> + Send + 'static {
    let state = (inbox.subscribe(), inbox.closed());
    stream::unfold(state, |(mut news, mut closed)| async move {
        let event = tokio::select! {
            received = news.recv() => match received {
                Ok(message) => Event::message(serde_json::to_string(&*message).ok()?)
                    .id(message.id.to_string()),
                Err(RecvError::Lagged(_)) => Event::message("").event_type("resync"),
                Err(RecvError::Closed) => return None,
            },
            _ = closed.wait_for(|closed| *closed) => return None,
        };
        Some((event, (news, closed)))
    })
}
