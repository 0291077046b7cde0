//! Checking that a status callback comes from the vendor: each signs it with
//! the account's auth token. Comparisons are in constant time.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// `base64(HMAC(key, message))` with the given hash.
fn sign<M: Mac + hmac::digest::KeyInit>(key: &str, message: &str) -> String {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(message.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// Whether `given` equals one of `expected`, timing aside.
fn matches_any(given: &str, expected: &[String]) -> bool {
    expected.iter().fold(false, |found, e| {
        bool::from(e.as_bytes().ct_eq(given.trim().as_bytes())) | found
    })
}

/// Parameters sorted by name, then value, as both vendors sign them.
fn sorted(params: &[(String, String)]) -> Vec<&(String, String)> {
    let mut sorted: Vec<_> = params.iter().collect();
    sorted.sort();
    sorted
}

/// Plivo's V3 signature of a POST: HMAC-SHA256 over the URL without its
/// query, `?`, the query's pairs sorted (`k=v&...`) and `.` if there is a
/// query, the body's parameters sorted as `kv...`, then `.` and the nonce.
pub fn plivo_v3(auth_token: &str, url: &str, nonce: &str, params: &[(String, String)]) -> String {
    let (base, query) = split_query(url);
    let body: String = sorted(params)
        .into_iter()
        .map(|(k, v)| format!("{k}{v}"))
        .collect();
    let mut signed = base.to_owned();
    if !params.is_empty() || !query.is_empty() {
        signed.push('?');
    }
    if query.is_empty() {
        signed.push_str(&body);
    } else {
        let mut pairs: Vec<(&str, &str)> = query.split('&').filter_map(|p| p.split_once('=')).collect();
        pairs.sort();
        pairs.dedup_by(|a, b| a.0 == b.0);
        let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        signed.push_str(&query.join("&"));
        signed.push('.');
        signed.push_str(&body);
        while signed.ends_with('.') {
            signed.pop();
        }
    }
    signed.push('.');
    signed.push_str(nonce);
    sign::<Hmac<Sha256>>(auth_token, &signed)
}

/// Checks `X-Plivo-Signature-V3`, which may list several signatures, any
/// one of which will do. Plivo's older V2 signs only the URL and a nonce,
/// not the body: one captured V2 pair would carry any report, so it is
/// never accepted.
pub fn plivo_verified(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    headers: PlivoHeaders<'_>,
) -> bool {
    let (Some(signatures), Some(nonce)) = (headers.v3, headers.v3_nonce) else {
        return false;
    };
    let expected = plivo_v3(auth_token, url, nonce, params);
    signatures
        .split(',')
        .any(|s| matches_any(s, std::slice::from_ref(&expected)))
}

/// The signature headers of a Plivo callback.
#[derive(Debug, Default, Clone, Copy)]
pub struct PlivoHeaders<'a> {
    pub v3: Option<&'a str>,
    pub v3_nonce: Option<&'a str>,
}

/// Twilio's signature: HMAC-SHA1 over the full URL, then each parameter's
/// name and value in name order.
pub fn twilio(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut signed = url.to_owned();
    for (k, v) in sorted(params) {
        signed.push_str(k);
        signed.push_str(v);
    }
    sign::<Hmac<Sha1>>(auth_token, &signed)
}

/// Checks `X-Twilio-Signature` against the URL as given and with its default
/// port added or removed, as Twilio's own validators do.
pub fn twilio_verified(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let expected: Vec<String> = [url.to_owned(), toggle_default_port(url)]
        .iter()
        .map(|u| twilio(auth_token, u, params))
        .collect();
    matches_any(signature, &expected)
}

fn split_query(url: &str) -> (&str, &str) {
    let url = url.split('#').next().unwrap_or(url);
    url.split_once('?').unwrap_or((url, ""))
}

/// `https://host/x` <-> `https://host:443/x` (and 80 for http).
fn toggle_default_port(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let default = match scheme {
        "https" => "443",
        "http" => "80",
        _ => return url.to_owned(),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once(':') {
        Some((host, port)) if port == default => format!("{scheme}://{host}{tail}"),
        Some(_) => url.to_owned(),
        None => format!("{scheme}://{authority}:{default}{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The parameters of plivo-go's `utils_test.go` V3 vectors.
    fn plivo_call() -> Vec<(String, String)> {
        params(&[
            ("Direction", "outbound"),
            ("From", "19792014278"),
            ("ALegUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
            ("CallStatus", "in-progress"),
            ("BillRate", "0.002"),
            ("ParentAuthID", "MANWVLYTK4ZWU1YTY4QA"),
            (
                "To",
                "sip:PlivoSignature382029104058171078704104@phone-qa.voice.plivodev.com",
            ),
            ("ALegRequestUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
            ("CallUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
            ("RequestUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
            (
                "SIP-H-To",
                "<sip:PlivoSignature382029104058171078704104@52.9.11.55;transport=udp>;tag=1",
            ),
            ("SessionStart", "2020-04-08 11:34:33.238707"),
            ("Event", "StartApp"),
        ])
    }

    const PLIVO_TOKEN: &str = "Y2Q2ZDgxZmY5YWRiOTI5YmQ1Njg0MTAxZWIyOTc4";
    const PLIVO_NONCE: &str = "31627761595286130198";

    #[test]
    fn plivo_v3_post_matches_the_published_vectors() {
        let url = "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml";
        assert_eq!(
            plivo_v3(PLIVO_TOKEN, url, PLIVO_NONCE, &plivo_call()),
            "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0="
        );
        assert_eq!(
            plivo_v3(
                PLIVO_TOKEN,
                &format!("{url}/?a=b&c=d"),
                PLIVO_NONCE,
                &plivo_call()
            ),
            "k7Pusd4OxCIjR5IfA9iedDNu/h/gbdYqdzG/MiYtd1c="
        );
    }

    #[test]
    fn plivo_accepts_any_of_several_v3_signatures() {
        let url = "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml";
        let good = "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0=";
        let several = format!("bm90IGl0=,{good}");
        let headers = |v3| PlivoHeaders {
            v3: Some(v3),
            v3_nonce: Some(PLIVO_NONCE),
        };
        assert!(plivo_verified(PLIVO_TOKEN, url, &plivo_call(), headers(&several)));
        assert!(!plivo_verified(
            PLIVO_TOKEN,
            url,
            &plivo_call(),
            headers("bm90IGl0=")
        ));
        let mut tampered = plivo_call();
        tampered[0].1 = "inbound".into();
        assert!(!plivo_verified(PLIVO_TOKEN, url, &tampered, headers(good)));
        assert!(!plivo_verified(
            PLIVO_TOKEN,
            url,
            &plivo_call(),
            PlivoHeaders::default()
        ));
    }

    fn twilio_call() -> Vec<(String, String)> {
        params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ])
    }

    #[test]
    fn twilio_matches_the_published_vector_with_and_without_the_port() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            twilio("12345", url, &twilio_call()),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert!(twilio_verified(
            "12345",
            url,
            &twilio_call(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        // Signed without the port, checked with it, and the other way round.
        assert!(twilio_verified(
            "12345",
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &twilio_call(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        let with_port = twilio(
            "12345",
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &twilio_call(),
        );
        assert!(twilio_verified("12345", url, &twilio_call(), &with_port));
        assert!(!twilio_verified(
            "12346",
            url,
            &twilio_call(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(!twilio_verified(
            "12345",
            "https://mycompany.com/other.php?foo=1&bar=2",
            &twilio_call(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn default_ports_toggle() {
        assert_eq!(
            toggle_default_port("https://a.example/x"),
            "https://a.example:443/x"
        );
        assert_eq!(
            toggle_default_port("https://a.example:443/x"),
            "https://a.example/x"
        );
        assert_eq!(toggle_default_port("http://a.example"), "http://a.example:80");
        assert_eq!(
            toggle_default_port("https://a.example:8443/x"),
            "https://a.example:8443/x"
        );
    }
}
