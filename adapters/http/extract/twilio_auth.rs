//! The Twilio Verify API's sign-in: HTTP Basic with the configured account
//! SID and one of its auth tokens, or with an API key's SID (`SK…`) and its
//! secret, as every Twilio SDK sends it on every request. Tokens and
//! secrets are held as SHA-256 digests and compared in constant time, every
//! one, whichever matches.

use poem_openapi::auth::Basic;
use poem_openapi::SecurityScheme;
use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::config::Secret;

#[derive(Clone)]
pub struct TwilioCredentials {
    account_sid: String,
    tokens: Vec<[u8; 32]>,
    /// Each API key's SID and its secret's digest.
    api_keys: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for TwilioCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioCredentials")
            .field("account_sid", &self.account_sid)
            .field("tokens", &self.tokens.len())
            .field("api_keys", &self.api_keys.len())
            .finish()
    }
}

/// `prefix` and 32 hex digits: the shape of a Twilio SID.
pub fn is_sid(prefix: &str, text: &str) -> bool {
    text.strip_prefix(prefix)
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl TwilioCredentials {
    /// # Errors
    /// Which setting is unusable (`account_sid`, `auth_tokens` or
    /// `api_keys`) and why.
    pub fn new(
        account_sid: &str,
        tokens: &[Secret],
        api_keys: &BTreeMap<String, Secret>,
    ) -> Result<Self, (&'static str, String)> {
        if !is_sid("AC", account_sid) {
            return Err((
                "account_sid",
                "must be AC and 32 hex digits, as the Twilio SDKs insist".into(),
            ));
        }
        if tokens.is_empty() && api_keys.is_empty() {
            return Err(("auth_tokens", "at least one token (or API key) is needed".into()));
        }
        let api_keys = api_keys
            .iter()
            .map(|(sid, secret)| match (is_sid("SK", sid), secret.expose().len()) {
                (false, _) => Err(("api_keys", format!("`{sid}` is not SK and 32 hex digits"))),
                (true, ..16) => Err((
                    "api_keys",
                    format!("{sid}: a secret must be at least 16 characters"),
                )),
                (true, _) => Ok((sid.clone(), Sha256::digest(secret.expose().as_bytes()).into())),
            })
            .collect::<Result<_, _>>()?;
        let tokens = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| match t.expose().len() {
                16.. => Ok(Sha256::digest(t.expose().as_bytes()).into()),
                _ => Err((
                    "auth_tokens",
                    format!("entry {i}: a token must be at least 16 characters"),
                )),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            account_sid: account_sid.to_owned(),
            tokens,
            api_keys,
        })
    }

    pub fn account_sid(&self) -> &str {
        &self.account_sid
    }

    /// Whether `basic` signs in: the account SID and any token, or an API
    /// key's SID and its secret.
    pub fn admits(&self, basic: &Basic) -> bool {
        let digest: [u8; 32] = Sha256::digest(basic.password.as_bytes()).into();
        let user = basic.username.as_bytes();
        let token = self
            .tokens
            .iter()
            .fold(Choice::from(0), |found, t| found | t.ct_eq(&digest));
        let account = user.ct_eq(self.account_sid.as_bytes());
        let api_key = self
            .api_keys
            .iter()
            .fold(Choice::from(0), |found, (sid, secret)| {
                found | (user.ct_eq(sid.as_bytes()) & secret.ct_eq(&digest))
            });
        ((token & account) | api_key).into()
    }
}

/// Declares, for the spec, that the Twilio operations take HTTP Basic with
/// the account SID and an auth token; the handlers check it.
#[derive(SecurityScheme)]
#[oai(ty = "basic")]
pub struct TwilioBasic(pub Basic);

#[cfg(test)]
mod tests {
    use super::*;

    const AC: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn basic(username: &str, password: &str) -> Basic {
        Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    #[test]
    fn the_account_and_any_token_sign_in() {
        let tokens = [
            Secret::new("old-token-0123456789"),
            Secret::new("new-token-0123456789"),
        ];
        let credentials = TwilioCredentials::new(AC, &tokens, &BTreeMap::new()).unwrap();
        assert!(credentials.admits(&basic(AC, "old-token-0123456789")));
        assert!(credentials.admits(&basic(AC, "new-token-0123456789")));
        assert!(!credentials.admits(&basic(AC, "new-token-012345678")));
        assert!(!credentials.admits(&basic(
            "ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
            "new-token-0123456789"
        )));
        assert!(!format!("{credentials:?}").contains("token-0123"));
        assert!(TwilioCredentials::new("AC123", &tokens, &BTreeMap::new()).is_err());
        assert!(TwilioCredentials::new(AC, &[], &BTreeMap::new()).is_err());
        assert!(TwilioCredentials::new(AC, &[Secret::new("short")], &BTreeMap::new()).is_err());
    }

    #[test]
    fn an_api_key_and_its_secret_sign_in() {
        let sk = format!("SK{}", "c".repeat(32));
        let other = format!("SK{}", "d".repeat(32));
        let keys: BTreeMap<String, Secret> = [
            (sk.clone(), Secret::new("api-key-secret-0123456789")),
            (other.clone(), Secret::new("other-key-secret-0123456789")),
        ]
        .into();
        let credentials = TwilioCredentials::new(AC, &[], &keys).unwrap();
        assert!(credentials.admits(&basic(&sk, "api-key-secret-0123456789")));
        assert!(credentials.admits(&basic(&other, "other-key-secret-0123456789")));
        // Each secret is its own key's only, and never the account's.
        assert!(!credentials.admits(&basic(&sk, "other-key-secret-0123456789")));
        assert!(!credentials.admits(&basic(AC, "api-key-secret-0123456789")));
        assert!(!credentials.admits(&basic(&sk, "api-key-secret-012345678")));
        let bad: BTreeMap<String, Secret> =
            [("SK123".to_owned(), Secret::new("api-key-secret-0123456789"))].into();
        assert!(TwilioCredentials::new(AC, &[], &bad).is_err());
        let short: BTreeMap<String, Secret> = [(sk, Secret::new("short"))].into();
        assert!(TwilioCredentials::new(AC, &[], &short).is_err());
    }
}
