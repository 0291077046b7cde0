//! Twilio's signature of a status callback, made with the account's auth
//! token over the URL and the parameters.

use hmac::Hmac;
use sha1::Sha1;

use crate::adapters::sms::signing::{matches_any, sign, sorted};

/// Twilio's signature: HMAC-SHA1 over the full URL, then each parameter's
/// name and value in name order.
pub fn of(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut signed = url.to_owned();
    for (k, v) in sorted(params) {
        signed.push_str(k);
        signed.push_str(v);
    }
    sign::<Hmac<Sha1>>(auth_token, &signed)
}

/// Checks `X-Twilio-Signature` against the URL as given and with its default
/// port added or removed, as Twilio's own validators do.
pub fn verified(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let expected: Vec<String> = [url.to_owned(), toggle_default_port(url)]
        .iter()
        .map(|u| of(auth_token, u, params))
        .collect();
    matches_any(signature, &expected)
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
    use crate::adapters::sms::signing::params;

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
        assert_eq!(of("12345", url, &twilio_call()), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert!(verified(
            "12345",
            url,
            &twilio_call(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        // Signed without the port, checked with it, and the other way round.
        assert!(verified(
            "12345",
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &twilio_call(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        let with_port = of(
            "12345",
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &twilio_call(),
        );
        assert!(verified("12345", url, &twilio_call(), &with_port));
        assert!(!verified(
            "12346",
            url,
            &twilio_call(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(!verified(
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
