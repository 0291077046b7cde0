//! The documents served beside the API: Swagger UI and the OpenAPI
//! description. They never change while the process runs, so each is made
//! once, and gzipped once, on its first request by a client that takes gzip
//! (Swagger UI is 1.6 MB as text, about a quarter of that gzipped).
//!
//! Swagger UI runs as inline scripts; its page allows exactly those scripts
//! by their SHA-256 (CSP level 2), connects only to this origin and can't be
//! framed, so an injected script or a clickjacking frame gets nowhere.

use std::io::Write;
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use poem::http::header;
use poem::{Endpoint, Request, Response, Result};
use sha2::{Digest, Sha256};

pub struct Document {
    content_type: &'static str,
    /// Shared, not copied, by every answer (Swagger UI is 1.6 MB).
    body: Bytes,
    csp: Option<String>,
    gzipped: OnceLock<Bytes>,
}

impl Document {
    pub fn new(content_type: &'static str, body: String) -> Self {
        Self {
            content_type,
            body: Bytes::from(body),
            csp: None,
            gzipped: OnceLock::new(),
        }
    }

    /// An HTML page whose inline scripts alone may run.
    pub fn page(html: String) -> Self {
        let scripts: Vec<String> = inline_blocks(&html, "script")
            .map(|script| format!("'sha256-{}'", BASE64.encode(Sha256::digest(script.as_bytes()))))
            .collect();
        let csp = format!(
            "default-src 'none'; script-src {}; style-src 'unsafe-inline'; img-src 'self' data:; \
             connect-src 'self'; font-src 'self' data:; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'",
            scripts.join(" ")
        );
        Self {
            csp: Some(csp),
            ..Self::new("text/html; charset=utf-8", html)
        }
    }

    fn gzipped(&self) -> Bytes {
        let gzipped = self.gzipped.get_or_init(|| {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
            // Writing into a Vec can't fail.
            let _ = encoder.write_all(&self.body);
            Bytes::from(encoder.finish().unwrap_or_default())
        });
        gzipped.clone()
    }
}

/// The text of each `<tag ...>...</tag>` block in `html`.
fn inline_blocks<'a>(html: &'a str, tag: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut rest = html;
    std::iter::from_fn(move || {
        let start = rest.find(&open)?;
        let body_start = start + rest[start..].find('>')? + 1;
        let body_len = rest[body_start..].find(&close)?;
        let block = &rest[body_start..body_start + body_len];
        rest = &rest[body_start + body_len + close.len()..];
        Some(block)
    })
}

/// Whether `Accept-Encoding` names gzip with a weight above 0.
fn takes_gzip(req: &Request) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let named = parts.next().is_some_and(|name| name.eq_ignore_ascii_case("gzip"));
            let weight = parts
                .find_map(|p| p.strip_prefix("q="))
                .map_or(1.0, |q| q.parse::<f32>().unwrap_or(0.0));
            named && weight > 0.0
        })
}

impl Endpoint for Document {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        let mut response = Response::builder()
            .content_type(self.content_type)
            .header(header::VARY, "accept-encoding")
            .header(header::X_FRAME_OPTIONS, "DENY");
        if let Some(csp) = &self.csp {
            response = response.header(header::CONTENT_SECURITY_POLICY, csp.as_str());
        }
        Ok(if takes_gzip(&req) {
            response
                .header(header::CONTENT_ENCODING, "gzip")
                .body(self.gzipped())
        } else {
            response.body(self.body.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_inline_block() {
        let html = "<head><script charset=\"UTF-8\">a()</script></head><script>\nb()</script>";
        let blocks: Vec<&str> = inline_blocks(html, "script").collect();
        assert_eq!(blocks, ["a()", "\nb()"]);
    }

    #[test]
    fn the_page_allows_its_own_scripts_only() {
        let page = Document::page("<script>a()</script>".into());
        let csp = page.csp.unwrap();
        let digest = BASE64.encode(Sha256::digest(b"a()"));
        assert!(csp.contains(&format!("script-src 'sha256-{digest}';")), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"));
    }

    #[test]
    fn gzip_unless_refused() {
        let with = |value: &str| {
            let req = Request::builder().header("accept-encoding", value).finish();
            takes_gzip(&req)
        };
        assert!(with("gzip"));
        assert!(with("br, gzip;q=0.8"));
        assert!(!with("gzip;q=0"));
        assert!(!with("br"));
        assert!(!with("identity"));
    }
}
