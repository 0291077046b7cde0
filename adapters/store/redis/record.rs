//! A phone's state as Redis holds it, read back: the Rust side of
//! `scripts/record.lua`, which names the layout's places and is the only
//! writer. A phone's key holds its whole `domain::PhoneState` as MessagePack
//! arrays (Lua's built-in `cmsgpack`); the scripts answer with a
//! verification packed the same way, which this file reads into a
//! `domain::Record`, so the caller's view of it is the domain's own
//! (`Record::view`). A layout change touches the two files.
//!
//! ```text
//! state         [tally | false, wrong | false, [verification, ...]]
//! tally         [sends, last_ms, window_end_ms, until_ms]
//! wrong         [count, window_end_ms]
//! verification  [id, scope, [[hash, expires_ms], ...], attempts,
//!                phone_attempts, created_at, sends, [unix s, ...],
//!                delivery | false, channels, next]  (the last three may
//!                be absent)
//! delivery      [provider, message_id, state, updated_at, error_code?]
//! ```
//!
//! Hashes are 64 raw bytes in a MessagePack string, which carries any bytes
//! (not only UTF-8). An empty Lua table packs as an empty array.

use rmpv::Value;

use crate::domain::{Channel, CodeHash, Delivery, DeliveryState, Record, Scope, VerificationId};

/// A verification a script returned packed; `None` for bytes that are no
/// verification of this layout.
pub fn record(packed: &[u8]) -> Option<Record> {
    record_of(&rmpv::decode::read_value(&mut &packed[..]).ok()?)
}

/// The letter `scripts/record.lua` keeps a send's channel as.
pub fn channel_letter(channel: Channel) -> &'static str {
    match channel {
        Channel::Sms => "s",
        Channel::Whatsapp => "w",
        Channel::Voice => "v",
    }
}

/// The letters of `channels`, in order.
pub fn channel_letters(channels: &[Channel]) -> String {
    channels.iter().map(|c| channel_letter(*c)).collect()
}

/// The channels `letters` name; `None` for a letter that names none.
fn channels_of(letters: &str) -> Option<Vec<Channel>> {
    letters
        .chars()
        .map(|c| {
            Channel::ALL
                .into_iter()
                .find(|ch| channel_letter(*ch).starts_with(c))
        })
        .collect()
}

fn record_of(value: &Value) -> Option<Record> {
    let (fields, delivery, channels, next) = match value.as_array()?.as_slice() {
        [fields @ .., delivery, channels, next] if fields.len() == 8 => {
            (fields, Some(delivery), channels.as_str()?, next.as_str()?)
        }
        [fields @ .., delivery, channels] if fields.len() == 8 => {
            (fields, Some(delivery), channels.as_str()?, "")
        }
        [fields @ .., delivery] if fields.len() == 8 => (fields, Some(delivery), "", ""),
        fields => (fields, None, "", ""),
    };
    let [id, scope, codes, attempts, phone_attempts, created_at, sends, send_times] = fields else {
        return None;
    };
    let send_times: Vec<u64> = list(send_times)?.iter().map(int).collect::<Option<_>>()?;
    // An older otpd kept no channels: its first sends were SMS.
    let letters = channels_of(channels)?;
    let mut channels = vec![Channel::Sms; send_times.len().checked_sub(letters.len())?];
    channels.extend(letters);
    Some(Record {
        id: VerificationId::parse(id.as_str()?).ok()?,
        scope: Scope::stored(scope.as_str()?)?,
        codes: list(codes)?.iter().map(code).collect::<Option<_>>()?,
        attempts: int(attempts)?,
        phone_attempts: int(phone_attempts)?,
        created_at: int(created_at)?,
        sends: int(sends)?,
        send_times,
        channels,
        next: channels_of(next)?,
        delivery: match delivery {
            Some(d) if !matches!(d, Value::Boolean(false)) => Some(self::delivery(d)?),
            _ => None,
        },
    })
}

/// `[hash, expires_ms]`.
fn code(value: &Value) -> Option<(CodeHash, u64)> {
    match value.as_array()?.as_slice() {
        [hash, expires_ms] => Some((
            CodeHash::from_bytes(hash.as_slice()?.try_into().ok()?),
            int(expires_ms)?,
        )),
        _ => None,
    }
}

fn delivery(value: &Value) -> Option<Delivery> {
    let (provider, message_id, state, updated_at, error_code) = match value.as_array()?.as_slice() {
        [p, m, s, u] => (p, m, s, u, None),
        [p, m, s, u, e] => (p, m, s, u, Some(e)),
        _ => return None,
    };
    Some(Delivery {
        provider: provider.as_str()?.to_owned(),
        message_id: message_id.as_str()?.to_owned(),
        state: DeliveryState::from_name(state.as_str()?)?,
        error_code: match error_code {
            None => None,
            Some(code) => Some(code.as_str()?.to_owned()),
        },
        updated_at: int(updated_at)?,
    })
}

/// A whole number, as `cmsgpack` packs every integral Lua number.
fn int<T: TryFrom<u64>>(value: &Value) -> Option<T> {
    value.as_u64()?.try_into().ok()
}

fn list(value: &Value) -> Option<&[Value]> {
    value.as_array().map(Vec::as_slice)
}

/// A part the state may not have: `false` for none.
#[cfg(test)]
fn optional(value: &Value) -> Option<Option<&[Value]>> {
    match value {
        Value::Boolean(false) => Some(None),
        other => list(other).map(Some),
    }
}

/// A whole state, as a phone's key holds it: for the tests, which hold the
/// key's expiry to `PhoneState::expires_at`.
#[cfg(test)]
pub fn state(packed: &[u8]) -> Option<crate::domain::PhoneState> {
    use crate::domain::{PhoneState, Tally, WrongCodes};
    let value = rmpv::decode::read_value(&mut &packed[..]).ok()?;
    let [tally, wrong, verifications] = value.as_array()?.as_slice() else {
        return None;
    };
    let tally = match optional(tally)? {
        None => None,
        Some([sends, last_ms, window_end_ms, until_ms]) => Some(Tally {
            sends: int(sends)?,
            last_ms: int(last_ms)?,
            window_end_ms: int(window_end_ms)?,
            until_ms: int(until_ms)?,
        }),
        Some(_) => return None,
    };
    let wrong = match optional(wrong)? {
        None => None,
        Some([count, window_end_ms]) => Some(WrongCodes {
            count: int(count)?,
            window_end_ms: int(window_end_ms)?,
        }),
        Some(_) => return None,
    };
    Some(PhoneState {
        tally,
        wrong,
        verifications: list(verifications)?
            .iter()
            .map(record_of)
            .collect::<Option<_>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(value: &Value) -> Vec<u8> {
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, value).unwrap();
        bytes
    }

    fn s(text: &str) -> Value {
        Value::from(text)
    }

    /// What `cmsgpack` makes of a verification: hashes as strings of any
    /// bytes, numbers as unsigned integers of any width.
    fn lua_record(delivery: Option<Value>) -> Value {
        let mut fields = vec![
            s(&format!("VE{}", "ab".repeat(16))),
            s("0123456789abcdef"),
            Value::Array(vec![Value::Array(vec![
                s(&"x".repeat(64)),
                Value::from(1_700_000_180_000u64),
            ])]),
            Value::from(5u8),
            Value::from(4u8),
            Value::from(1_700_000_000u32),
            Value::from(2u8),
            Value::Array(vec![Value::from(1_700_000_000u32)]),
        ];
        fields.extend(delivery);
        Value::Array(fields)
    }

    #[test]
    fn a_packed_verification_reads_as_the_domains_record() {
        let read = record(&packed(&lua_record(None))).unwrap();
        assert_eq!(read.id.as_str(), format!("VE{}", "ab".repeat(16)));
        assert_eq!(read.scope.as_str(), "0123456789abcdef");
        assert_eq!(
            read.codes,
            vec![(CodeHash::from_bytes([b'x'; 64]), 1_700_000_180_000)]
        );
        assert_eq!((read.attempts, read.phone_attempts, read.sends), (5, 4, 2));
        assert_eq!(
            (read.created_at, read.send_times),
            (1_700_000_000, vec![1_700_000_000])
        );
        assert_eq!(read.delivery, None);
    }

    #[test]
    fn binary_hashes_survive() {
        // Not UTF-8: the raw bytes of a MessagePack string, as cmsgpack
        // packs any Lua string.
        let hash: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) | 0x80).collect();
        let mut bytes = packed(&lua_record(None));
        let at = bytes.windows(64).position(|w| w == [b'x'; 64]).unwrap();
        bytes[at..at + 64].copy_from_slice(&hash);
        let read = record(&bytes).unwrap();
        assert_eq!(read.codes[0].0.as_bytes().as_slice(), hash.as_slice());
    }

    #[test]
    fn a_delivery_reads_with_or_without_its_error_code() {
        let delivery = Value::Array(vec![
            s("twilio"),
            s("SM1"),
            s("undelivered"),
            Value::from(9u8),
            s("30003"),
        ]);
        let read = record(&packed(&lua_record(Some(delivery)))).unwrap();
        let d = read.delivery.unwrap();
        assert_eq!((d.provider.as_str(), d.message_id.as_str()), ("twilio", "SM1"));
        assert_eq!(
            (d.state, d.error_code.as_deref(), d.updated_at),
            (DeliveryState::Undelivered, Some("30003"), 9)
        );
        let without = Value::Array(vec![s("twilio"), s("SM2"), s("sent"), Value::from(9u8)]);
        let d = record(&packed(&lua_record(Some(without))))
            .unwrap()
            .delivery
            .unwrap();
        assert_eq!((d.state, d.error_code), (DeliveryState::Sent, None));
    }

    #[test]
    fn what_is_no_verification_reads_as_none() {
        assert!(record(b"").is_none());
        assert!(record(b"VE0123").is_none());
        assert!(record(&packed(&Value::Array(vec![]))).is_none());
        let mut short_hash = lua_record(None);
        if let Value::Array(fields) = &mut short_hash {
            fields[2] = Value::Array(vec![Value::Array(vec![s("short"), Value::from(1u8)])]);
        }
        assert!(record(&packed(&short_hash)).is_none());
    }
}
