//! A pending code as Redis holds it: one string, so that storing a code is one
//! `SET … PX` and a script reads it with one `GET`.
//!
//! ```text
//! <HMAC, 64 bytes><attempts left, decimal>
//! then, once the SMS has a receipt:
//! \n<provider>\n<message id>\n<state>\n<rank>\n<unix seconds>\n<error code>
//! ```
//!
//! This file and `scripts/record.lua` are the layout's two sides: that
//! prelude, joined onto every script that reads a record, splits it into the
//! first 64 bytes, the digits up to the first `\n`, then the delivery's
//! fields, and writes it back from them. A layout change touches the two.

use crate::domain::{Delivery, PendingOtp};

/// The record of a newly sent code.
pub fn encode(otp: &PendingOtp) -> Vec<u8> {
    let mut record = Vec::with_capacity(128);
    record.extend_from_slice(otp.hash.as_bytes());
    record.extend_from_slice(otp.attempts.to_string().as_bytes());
    if let Some(delivery) = &otp.delivery {
        record.extend_from_slice(delivery_fields(delivery).as_bytes());
    }
    record
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
    use crate::domain::{CodeHash, DeliveryState, OtpPolicy, SmsReceipt};
    use std::time::Duration;

    fn pending() -> PendingOtp {
        OtpPolicy::new(Duration::from_secs(180), 5)
            .unwrap()
            .pending(CodeHash::from_bytes([7; 64]))
    }

    #[test]
    fn a_record_is_the_hash_then_the_attempts() {
        let record = encode(&pending());
        assert_eq!(&record[..64], &[7; 64]);
        assert_eq!(&record[64..], b"5");
    }

    #[test]
    fn a_receipt_known_ahead_follows_as_queued() {
        let receipt = SmsReceipt {
            provider: "console".into(),
            message_id: "m-1".into(),
            tracked: false,
        };
        let record = encode(&pending().with_receipt(&receipt, 1_700_000_000));
        assert_eq!(&record[64..], b"5\nconsole\nm-1\nqueued\n0\n1700000000\n");
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
