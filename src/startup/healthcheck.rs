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
    let ask = async {
        let mut stream = TcpStream::connect(address).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await?;
        Ok::<_, std::io::Error>(head)
    };
    match tokio::time::timeout(TIMEOUT, ask).await {
        Err(_) => Err(format!("no answer from {address} within {TIMEOUT:?}")),
        Ok(Err(e)) => Err(format!("{address}: {e}")),
        Ok(Ok(head)) if &head[9..12] == b"200" && head.starts_with(b"HTTP/1.1 ") => Ok(()),
        Ok(Ok(head)) => Err(format!("{address} answered {:?}", String::from_utf8_lossy(&head))),
    }
}
