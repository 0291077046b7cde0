//! Plivo's V3 signature of a status callback, made with the account's auth
//! token over the URL, the body and a nonce.

use hmac::Hmac;
use sha2::Sha256;

use crate::adapters::sms::signing::{matches_any, sign, sorted};

/// Plivo's V3 signature of a POST: HMAC-SHA256 over the URL without its
/// query, `?`, the query's pairs sorted (`k=v&...`) and `.` if there is a
/// query, the body's parameters sorted as `kv...`, then `.` and the nonce.
pub fn v3(auth_token: &str, url: &str, nonce: &str, params: &[(String, String)]) -> String {
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
pub fn verified(auth_token: &str, url: &str, params: &[(String, String)], headers: Headers<'_>) -> bool {
    let (Some(signatures), Some(nonce)) = (headers.v3, headers.v3_nonce) else {
        return false;
    };
    let expected = v3(auth_token, url, nonce, params);
    signatures
        .split(',')
        .any(|s| matches_any(s, std::slice::from_ref(&expected)))
}

/// The signature headers of a Plivo callback.
#[derive(Debug, Default, Clone, Copy)]
pub struct Headers<'a> {
    pub v3: Option<&'a str>,
    pub v3_nonce: Option<&'a str>,
}

fn split_query(url: &str) -> (&str, &str) {
    let url = url.split('#').next().unwrap_or(url);
    url.split_once('?').unwrap_or((url, ""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::sms::signing::params;

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
            v3(PLIVO_TOKEN, url, PLIVO_NONCE, &plivo_call()),
            "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0="
        );
        assert_eq!(
            v3(
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
        let headers = |v3| Headers {
            v3: Some(v3),
            v3_nonce: Some(PLIVO_NONCE),
        };
        assert!(verified(PLIVO_TOKEN, url, &plivo_call(), headers(&several)));
        assert!(!verified(PLIVO_TOKEN, url, &plivo_call(), headers("bm90IGl0=")));
        let mut tampered = plivo_call();
        tampered[0].1 = "inbound".into();
        assert!(!verified(PLIVO_TOKEN, url, &tampered, headers(good)));
        assert!(!verified(PLIVO_TOKEN, url, &plivo_call(), Headers::default()));
    }
}
