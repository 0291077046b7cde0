//! `otpd healthcheck`: asks the serving process on this machine for
//! `/healthz`, for a container's `HEALTHCHECK`, where no shell or curl is.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest wait for the answer; a container runtime kills a check that
/// takes longer than its own timeout anyway.
const TIMEOUT: Duration = Duration::from_secs(3);

/// `Ok` when the process serving on `listen` answers `/healthz` with 200.
///
/// # Errors
/// What went wrong, for the check's output.
pub async fn probe(listen: &str) -> Result<(), String> {
    let mut address: SocketAddr = listen
        .parse()
        .map_err(|_| format!("http.listen {listen:?} is not an address and port"))?;
    // Serving on every address: ask on loopback.
    if address.ip().is_unspecified() {
        address.set_ip(match address.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    // otpd echoes a request id it is given; a fresh one each time, so a
    // server that merely answers 200 `{"status":"ok"}` does not pass.
    let id = hex::encode(rand::random::<[u8; 12]>());
    let ask = async {
        let mut stream = TcpStream::connect(address).await?;
        let request = format!(
            "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: {id}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        // Connection: close, so the answer ends where the stream does; a
        // bound, as whatever listens there may not be otpd.
        let mut answer = Vec::new();
        (&mut stream).take(4096).read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    match tokio::time::timeout(TIMEOUT, ask).await {
        Err(_) => Err(format!("no answer from {address} within {TIMEOUT:?}")),
        Ok(Err(e)) => Err(format!("{address}: {e}")),
        Ok(Ok(answer)) if is_alive(&answer, &id) => Ok(()),
        Ok(Ok(answer)) => {
            let line = answer.split(|&b| b == b'\r').next().unwrap_or_default();
            Err(format!("{address} answered {:?}", String::from_utf8_lossy(line)))
        }
    }
}

/// otpd's own liveness answer: 200, its body and the request id echoed,
/// not any server's 200.
fn is_alive(answer: &[u8], id: &str) -> bool {
    let text = String::from_utf8_lossy(answer);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let echoed = head.lines().skip(1).any(|line| {
        line.split_once(':')
            .is_some_and(|(name, value)| name.eq_ignore_ascii_case("x-request-id") && value.trim() == id)
    });
    head.starts_with("HTTP/1.1 200 ") && echoed && body == r#"{"status":"ok"}"#
}

#[cfg(test)]
mod tests {
    use super::is_alive;

    #[test]
    fn only_otpds_liveness_answer_counts() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nX-Request-Id: 0a1b\r\ncontent-length: 15\r\n\r\n{\"status\":\"ok\"}";
        assert!(is_alive(ok, "0a1b"));
        // Another id, or none: some other server's 200.
        assert!(!is_alive(ok, "0a1c"));
        assert!(!is_alive(
            b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n{\"status\":\"ok\"}",
            "0a1b"
        ));
        assert!(!is_alive(
            b"HTTP/1.1 200 OK\r\nx-request-id: 0a1b\r\ncontent-length: 2\r\n\r\nhi",
            "0a1b"
        ));
        assert!(!is_alive(
            b"HTTP/1.1 503 Service Unavailable\r\nx-request-id: 0a1b\r\n\r\n{\"status\":\"ok\"}",
            "0a1b"
        ));
        assert!(!is_alive(b"", "0a1b"));
    }
}
