//! What the Twilio operations answer, as Twilio describes it: the
//! verification and check objects, their SIDs and timestamps.

use poem_openapi::Object;
use sha2::{Digest, Sha256};

use super::TwilioSurface;
use crate::domain::{Channel, Phone, Status, Verification, VerificationId};

#[derive(Object, Debug)]
pub struct SendCodeAttempt {
    time: String,
    channel: String,
    /// `VL` and 32 hex digits.
    attempt_sid: String,
}

/// A verification, as Twilio describes one.
#[derive(Object, Debug)]
pub struct VerificationObject {
    sid: String,
    service_sid: String,
    account_sid: String,
    to: String,
    channel: String,
    /// `pending`, `approved` or `canceled`.
    status: String,
    valid: bool,
    lookup: serde_json::Value,
    amount: Option<String>,
    payee: Option<String>,
    send_code_attempts: Vec<SendCodeAttempt>,
    date_created: String,
    date_updated: String,
    sna: Option<serde_json::Value>,
    url: Option<String>,
}

/// A check's answer; a wrong code is `pending` and not valid, not an error.
#[derive(Object, Debug)]
pub struct VerificationCheckObject {
    pub sid: String,
    pub service_sid: String,
    pub account_sid: String,
    pub to: String,
    pub channel: String,
    pub status: String,
    pub valid: bool,
    pub amount: Option<String>,
    pub payee: Option<String>,
    pub date_created: String,
    pub date_updated: String,
    pub sna_attempts_error_codes: Option<Vec<serde_json::Value>>,
}

/// Unix seconds as Twilio writes them: `2026-12-01T10:00:00Z`.
pub fn iso8601(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A channel as Twilio names it: a voice call is `call`.
pub fn twilio_channel(channel: Channel) -> &'static str {
    match channel {
        Channel::Voice => "call",
        other => other.as_str(),
    }
}

/// A send's SID, the same each time it is shown: `VL` and 32 hex digits
/// of a digest of the verification's id and the send's place.
pub fn attempt_sid(id: &VerificationId, n: usize) -> String {
    let digest = Sha256::digest(format!("{id}:{n}").as_bytes());
    format!("VL{}", hex::encode(&digest[..16]))
}

impl VerificationObject {
    pub fn new(
        surface: &TwilioSurface,
        service: &str,
        phone: &Phone,
        v: &Verification,
        status: Status,
    ) -> Self {
        let first = v.sends as usize - v.send_times.len().min(v.sends as usize);
        let newest = v.channels.last().copied().unwrap_or_default();
        Self {
            sid: v.id.to_string(),
            service_sid: service.to_owned(),
            account_sid: surface.credentials.account_sid().to_owned(),
            to: phone.as_str().to_owned(),
            channel: twilio_channel(newest).into(),
            status: status.name().into(),
            valid: status == Status::Approved,
            lookup: serde_json::json!({}),
            amount: None,
            payee: None,
            send_code_attempts: v
                .send_times
                .iter()
                .zip(&v.channels)
                .enumerate()
                .map(|(i, (at, channel))| SendCodeAttempt {
                    time: iso8601(*at),
                    channel: twilio_channel(*channel).into(),
                    attempt_sid: attempt_sid(&v.id, first + i),
                })
                .collect(),
            date_created: iso8601(v.created_at),
            date_updated: iso8601(v.updated_at()),
            sna: None,
            url: surface.public_url.as_deref().map(|base| {
                format!(
                    "{}/v2/Services/{service}/Verifications/{}",
                    base.trim_end_matches('/'),
                    v.id
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso_8601_utc_to_the_second() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_796_119_200), "2026-12-01T10:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn attempt_sids_are_stable_and_twilio_shaped() {
        let id = VerificationId::generate();
        assert_eq!(attempt_sid(&id, 0), attempt_sid(&id, 0));
        assert_ne!(attempt_sid(&id, 0), attempt_sid(&id, 1));
        assert!(crate::adapters::http::extract::twilio_auth::is_sid(
            "VL",
            &attempt_sid(&id, 3)
        ));
    }
}
