//! A verification as Redis holds it: one string, so that storing one is one
//! `SET … PX` and a script reads it with one `GET`.
//!
//! ```text
//! <id: VE + 32 hex><n: one digit, the live codes>
//! n × <HMAC, 64 bytes><unix ms it expires, 13 digits; 0: with the key>
//! <attempts left>\n<unix s created>\n<sends>\n<unix s of the last sends, space-separated>
//! then, once the newest SMS has a receipt:
//! \n<provider>\n<message id>\n<state>\n<rank>\n<unix seconds>\n<error code>
//! ```
//!
//! The hashes are binary, so they sit at fixed widths before the first line
//! break. A code written with the key (expiry 0) lives as long as it; a
//! script that adds a code beside it first gives it its real expiry.
//!
//! This file and `scripts/record.lua` are the layout's two sides: that
//! prelude, joined onto every script that reads a record, splits it and
//! writes it back; this side writes a new verification and reads what the
//! scripts return. A layout change touches the two. When a limit counts the
//! phone's sends, the scripts keep its tally in front of the record in the
//! same key; they return the record alone, so this side never sees it.

use std::time::Duration;

use crate::domain::{Delivery, DeliveryState, PendingOtp, Verification, VerificationId, VERIFICATION_ID_LEN};

const HASH_LEN: usize = 64;
const EXPIRY_DIGITS: usize = 13;

/// The record of a new verification with its first code.
pub fn encode(otp: &PendingOtp) -> Vec<u8> {
    let mut record = Vec::with_capacity(192);
    record.extend_from_slice(otp.id.as_str().as_bytes());
    record.push(b'1');
    record.extend_from_slice(otp.hash.as_bytes());
    record.extend_from_slice(&[b'0'; EXPIRY_DIGITS]);
    let at = otp.sent_at;
    record.extend_from_slice(format!("{}\n{at}\n1\n{at}", otp.attempts).as_bytes());
    if let Some(delivery) = &otp.delivery {
        record.extend_from_slice(delivery_fields(delivery).as_bytes());
    }
    record
}

/// A record a script returned, with its key's remaining life; `None` for
/// bytes that are no verification (a code stored by an older otpd).
pub fn decode(record: &[u8], expires_in: Duration) -> Option<Verification> {
    let id = VerificationId::parse(std::str::from_utf8(record.get(..VERIFICATION_ID_LEN)?).ok()?).ok()?;
    let codes = usize::from(record.get(VERIFICATION_ID_LEN)?.checked_sub(b'0')?);
    let text_at = VERIFICATION_ID_LEN + 1 + codes * (HASH_LEN + EXPIRY_DIGITS);
    let text = std::str::from_utf8(record.get(text_at..)?).ok()?;
    let mut lines = text.split('\n');
    let attempts_remaining = lines.next()?.parse().ok()?;
    let created_at = lines.next()?.parse().ok()?;
    let sends = lines.next()?.parse().ok()?;
    let send_times = lines.next()?.split(' ').filter_map(|t| t.parse().ok()).collect();
    let f: Vec<&str> = lines.collect();
    let delivery = match f.as_slice() {
        [provider, message_id, state, _rank, at, error_code] => Some(Delivery {
            provider: (*provider).to_owned(),
            message_id: (*message_id).to_owned(),
            state: DeliveryState::from_name(state)?,
            error_code: (!error_code.is_empty()).then(|| (*error_code).to_owned()),
            updated_at: at.parse().unwrap_or(0),
        }),
        _ => None,
    };
    Some(Verification {
        id,
        created_at,
        expires_in,
        attempts_remaining,
        sends,
        send_times,
        delivery,
    })
}

/// The delivery part of a record, from its first `\n`.
pub fn delivery_fields(delivery: &Delivery) -> String {
    format!(
        "\n{}\n{}\n{}\n{}\n{}\n{}",
        field(&delivery.provider),
        field(&delivery.message_id),
        delivery.state.as_str(),
        delivery.state.rank(),
        delivery.updated_at,
        field(delivery.error_code.as_deref().unwrap_or("")),
    )
}

/// A text as a record field: a line break, which would split it, becomes a
/// space. Provider names, message ids and error codes never hold one, but a
/// vendor's report is outside our hands; compared values go through here too.
pub fn field(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\n') {
        text.replace('\n', " ").into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CodeHash, OtpPolicy, SmsReceipt, VerificationId};

    fn pending() -> PendingOtp {
        OtpPolicy::new(Duration::from_secs(180), 5)
            .unwrap()
            .pending(VerificationId::generate(), CodeHash::from_bytes([b'\n'; 64]))
            .sent(1_700_000_000)
    }

    #[test]
    fn a_record_is_the_id_then_its_code_then_its_counts() {
        let otp = pending();
        let record = encode(&otp);
        assert_eq!(&record[..34], otp.id.as_str().as_bytes());
        assert_eq!(record[34], b'1');
        assert_eq!(&record[35..99], &[b'\n'; 64]);
        assert_eq!(&record[99..], b"00000000000005\n1700000000\n1\n1700000000");
        let read = decode(&record, Duration::from_secs(180)).unwrap();
        assert_eq!((read.id, read.attempts_remaining, read.sends), (otp.id, 5, 1));
        assert_eq!(
            (read.created_at, read.send_times),
            (1_700_000_000, vec![1_700_000_000])
        );
        assert_eq!(read.delivery, None);
    }

    #[test]
    fn a_receipt_known_ahead_follows_as_queued() {
        let receipt = SmsReceipt {
            provider: "console".into(),
            message_id: "m-1".into(),
            tracked: false,
        };
        let record = encode(&pending().with_receipt(&receipt, 1_700_000_000));
        assert!(record.ends_with(b"1700000000\nconsole\nm-1\nqueued\n0\n1700000000\n"));
        let delivery = decode(&record, Duration::ZERO).unwrap().delivery.unwrap();
        assert_eq!(delivery, Delivery::queued(&receipt, 1_700_000_000));
    }

    #[test]
    fn what_is_no_verification_reads_as_none() {
        assert_eq!(decode(b"", Duration::ZERO), None);
        assert_eq!(decode(&[7; 70], Duration::ZERO), None);
    }

    #[test]
    fn line_breaks_cannot_split_a_field() {
        let delivery = Delivery {
            provider: "twilio".into(),
            message_id: "SM\n1".into(),
            state: DeliveryState::Undelivered,
            error_code: Some("30\n003".into()),
            updated_at: 9,
        };
        assert_eq!(
            delivery_fields(&delivery),
            "\ntwilio\nSM 1\nundelivered\n2\n9\n30 003"
        );
    }
}
