//! The benchmark's yardsticks: the least a Redis-backed poem service can do per
//! request, so `scripts/bench.sh` can say how close otpd comes to it.
//!
//! Two endpoints take the same body as `POST /v1/otp`
//! (`{"phone":"+14155552671"}`), do one `SETEX` of a small value under
//! `<prefix>{<phone>}`, and answer 202 with a small JSON body. Nothing else:
//! no validation, no hashing, no SMS, no logs. They differ only in how the
//! `SETEX` reaches Redis:
//! - `POST /ref`: through a bb8 pool of bb8-redis connections, each held for
//!   its call as bb8 is used (the pool reference);
//! - `POST /mux`: through one `redis::aio::MultiplexedConnection` shared by
//!   every request, which pipelines concurrent calls onto one socket (the
//!   multiplexed reference: about the most one round trip per request allows).
//!
//! `POST /hook` answers 204 to anything: the event endpoint of the bench's
//! otpd instances.
//!
//! ```text
//! cargo run --release --example bench_reference -- 127.0.0.1:18081
//! ```
//!
//! Settings, each from the environment (an argument wins for the address):
//! - `REF_LISTEN` (or the first argument): address to serve on, default `127.0.0.1:18081`;
//! - `REF_REDIS_URL`: default `redis://127.0.0.1:6379`;
//! - `REF_KEY_PREFIX`: put before every key, default `bench:ref:`;
//! - `REF_POOL_SIZE`: the pool's connections, default 32: one per connection the
//!   benchmark opens, so no request waits for a pool slot. Of 8, 16 and 32,
//!   32 served the most requests (docs/performance.md).

use std::sync::Arc;
use std::time::Duration;

use bb8::Pool;
use bb8_redis::RedisConnectionManager;
use poem::http::StatusCode;
use poem::listener::TcpListener;
use poem::web::{Data, Json};
use poem::{handler, post, EndpointExt, IntoResponse, Response, Route, Server};
use redis::aio::MultiplexedConnection;
use serde::Deserialize;

/// What each request needs: the pool, the multiplexed connection and the key prefix.
struct Shared {
    pool: Pool<RedisConnectionManager>,
    mux: MultiplexedConnection,
    prefix: String,
}

#[derive(Deserialize)]
struct Body {
    phone: String,
}

/// The one command both references run.
fn setex(shared: &Shared, phone: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("SETEX");
    cmd.arg(format!("{}{{{}}}", shared.prefix, phone))
        .arg(180)
        .arg("1");
    cmd
}

/// 202 once stored; 503 if Redis failed, so a broken run shows in the
/// bench's status counts rather than as fast errors.
fn answer(stored: Result<(), String>) -> Response {
    match stored {
        Ok(()) => Json(serde_json::json!({ "status": "pending", "expires_in": 180 }))
            .with_status(StatusCode::ACCEPTED)
            .into_response(),
        Err(e) => {
            eprintln!("bench_reference: redis: {e}");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// One SETEX through a pooled connection held for the call.
#[handler]
async fn pooled(Data(shared): Data<&Arc<Shared>>, Json(body): Json<Body>) -> Response {
    let stored = async {
        let mut conn = shared.pool.get().await.map_err(|e| e.to_string())?;
        setex(shared, &body.phone)
            .query_async::<()>(&mut *conn)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    answer(stored)
}

/// One SETEX through the shared multiplexed connection (a clone is a handle
/// to the same socket).
#[handler]
async fn multiplexed(Data(shared): Data<&Arc<Shared>>, Json(body): Json<Body>) -> Response {
    let mut conn = shared.mux.clone();
    let stored = setex(shared, &body.phone)
        .query_async::<()>(&mut conn)
        .await
        .map_err(|e| e.to_string());
    answer(stored)
}

/// An app's event endpoint at its least: takes the body, answers 204.
#[handler]
async fn hook(body: poem::Body) -> StatusCode {
    let _ = body.into_bytes().await;
    StatusCode::NO_CONTENT
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| env_or("REF_LISTEN", "127.0.0.1:18081"));
    let url = env_or("REF_REDIS_URL", "redis://127.0.0.1:6379");
    let prefix = env_or("REF_KEY_PREFIX", "bench:ref:");
    let pool_size: u32 = env_or("REF_POOL_SIZE", "32").parse()?;

    let pool = Pool::builder()
        .max_size(pool_size.max(1))
        .connection_timeout(Duration::from_millis(500))
        // As in otpd: no PING on checkout, which would double the round trips.
        .test_on_check_out(false)
        .build(RedisConnectionManager::new(url.as_str())?)
        .await?;
    let mux = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let app = Route::new()
        .at("/ref", post(pooled))
        .at("/mux", post(multiplexed))
        .at("/hook", post(hook))
        .data(Arc::new(Shared { pool, mux, prefix }));
    eprintln!("bench_reference listening on http://{listen} (/ref, /mux, /hook)");
    Server::new(TcpListener::bind(listen)).run(app).await?;
    Ok(())
}
