//! Settings that must never be printed whole.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// A secret setting: `Debug` and serialization never show it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"<redacted>\""
        })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Defaults hold no secrets, so serializing only ever shows settings.
        s.serialize_str(if self.0.is_empty() { "" } else { "<redacted>" })
    }
}

/// The store's URL, which may carry a password: `Debug` and [`StoreUrl::redacted`]
/// hide it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StoreUrl(pub String);

impl StoreUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any user info replaced: `redis://<redacted>@host:6379`.
    pub fn redacted(&self) -> String {
        without_userinfo(&self.0)
    }
}

/// `url` with any user info (a name, a password) replaced by `<redacted>`:
/// everything between the scheme and the last `@`, so a password holding
/// `@` or `/` is hidden whole.
pub fn without_userinfo(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}<redacted>{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// `url` with its query, which may carry a token, replaced by `<redacted>`.
pub fn without_query(url: &str) -> String {
    match url.split_once('?') {
        Some((before, _)) => format!("{before}?<redacted>"),
        None => url.to_owned(),
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}
