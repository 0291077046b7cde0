//! A phone's state as Redis holds it, read back: the Rust side of
//! `scripts/record.lua`, which says the layout and is the only writer. A
//! phone's key holds its whole `domain::PhoneState` as one MessagePack map
//! (Lua's built-in `cmsgpack`); the scripts answer with a verification
//! packed the same way, which this file reads into a `domain::Record`, so
//! the caller's view of it is the domain's own (`Record::view`). A layout
//! change touches the two files.
//!
//! ```text
//! {tally = {sends, last_ms, window_end_ms, until_ms},   -- absent: none
//!  wrong = {count, window_end_ms},                      -- absent: none
//!  v = {{id, scope, codes = {{hash, expires_ms}, ...}, attempts,
//!        phone_attempts, created_at, sends, send_times = {...},
//!        delivery = {provider, message_id, state, updated_at,
//!                    error_code}}, ...}}                -- oldest first
//! ```
//!
//! Maps are keyed by the Rust fields' names. Hashes are 64 raw bytes in a
//! MessagePack string, which carries any bytes (not only UTF-8). An empty
//! Lua table packs as an empty array, so an empty list is an array too.

use rmpv::Value;

use crate::domain::{CodeHash, Delivery, DeliveryState, Record, Scope, VerificationId};

/// A verification a script returned packed; `None` for bytes that are no
/// verification of this layout.
pub fn record(packed: &[u8]) -> Option<Record> {
    record_of(&rmpv::decode::read_value(&mut &packed[..]).ok()?)
}

fn record_of(value: &Value) -> Option<Record> {
    let f = Fields(value.as_map()?);
    Some(Record {
        id: VerificationId::parse(f.get("id")?.as_str()?).ok()?,
        scope: Scope::stored(f.get("scope")?.as_str()?)?,
        codes: f.list("codes")?.iter().map(code).collect::<Option<_>>()?,
        attempts: f.int("attempts")?,
        phone_attempts: f.int("phone_attempts")?,
        created_at: f.int("created_at")?,
        sends: f.int("sends")?,
        send_times: f.list("send_times")?.iter().map(int).collect::<Option<_>>()?,
        delivery: match f.get("delivery") {
            None => None,
            Some(d) => Some(delivery(d)?),
        },
    })
}

/// `{hash, expires_ms}`.
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
    let f = Fields(value.as_map()?);
    Some(Delivery {
        provider: f.get("provider")?.as_str()?.to_owned(),
        message_id: f.get("message_id")?.as_str()?.to_owned(),
        state: DeliveryState::from_name(f.get("state")?.as_str()?)?,
        error_code: match f.get("error_code") {
            None => None,
            Some(code) => Some(code.as_str()?.to_owned()),
        },
        updated_at: f.int("updated_at")?,
    })
}

/// A whole number, as `cmsgpack` packs every integral Lua number.
fn int<T: TryFrom<u64>>(value: &Value) -> Option<T> {
    value.as_u64()?.try_into().ok()
}

/// A map's fields by name.
struct Fields<'a>(&'a [(Value, Value)]);

impl Fields<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(key, _)| key.as_str() == Some(name))
            .map(|(_, value)| value)
    }

    fn int<T: TryFrom<u64>>(&self, name: &str) -> Option<T> {
        int(self.get(name)?)
    }

    fn list(&self, name: &str) -> Option<&[Value]> {
        self.get(name)?.as_array().map(Vec::as_slice)
    }
}

/// A whole state, as a phone's key holds it: for the tests, which hold the
/// key's expiry to `PhoneState::expires_at`.
#[cfg(test)]
pub fn state(packed: &[u8]) -> Option<crate::domain::PhoneState> {
    use crate::domain::{PhoneState, Tally, WrongCodes};
    let value = rmpv::decode::read_value(&mut &packed[..]).ok()?;
    let f = Fields(value.as_map()?);
    let tally = match f.get("tally") {
        None => None,
        Some(t) => {
            let t = Fields(t.as_map()?);
            Some(Tally {
                sends: t.int("sends")?,
                last_ms: t.int("last_ms")?,
                window_end_ms: t.int("window_end_ms")?,
                until_ms: t.int("until_ms")?,
            })
        }
    };
    let wrong = match f.get("wrong") {
        None => None,
        Some(w) => {
            let w = Fields(w.as_map()?);
            Some(WrongCodes {
                count: w.int("count")?,
                window_end_ms: w.int("window_end_ms")?,
            })
        }
    };
    let verifications = f.list("v")?.iter().map(record_of).collect::<Option<_>>()?;
    Some(PhoneState {
        tally,
        wrong,
        verifications,
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
    /// bytes, numbers as unsigned integers of any width, keys in any order.
    fn lua_record(delivery: Option<Value>) -> Value {
        let mut fields = vec![
            (s("sends"), Value::from(2u8)),
            (s("id"), s(&format!("VE{}", "ab".repeat(16)))),
            (s("scope"), s("0123456789abcdef")),
            (
                s("codes"),
                Value::Array(vec![Value::Array(vec![
                    s(&"x".repeat(64)),
                    Value::from(1_700_000_180_000u64),
                ])]),
            ),
            (s("attempts"), Value::from(5u8)),
            (s("phone_attempts"), Value::from(4u8)),
            (s("created_at"), Value::from(1_700_000_000u32)),
            (s("send_times"), Value::Array(vec![Value::from(1_700_000_000u32)])),
        ];
        fields.extend(delivery.map(|d| (s("delivery"), d)));
        Value::Map(fields)
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
        let delivery = Value::Map(vec![
            (s("provider"), s("twilio")),
            (s("message_id"), s("SM1")),
            (s("state"), s("undelivered")),
            (s("updated_at"), Value::from(9u8)),
            (s("error_code"), s("30003")),
        ]);
        let read = record(&packed(&lua_record(Some(delivery)))).unwrap();
        let d = read.delivery.unwrap();
        assert_eq!((d.provider.as_str(), d.message_id.as_str()), ("twilio", "SM1"));
        assert_eq!(
            (d.state, d.error_code.as_deref(), d.updated_at),
            (DeliveryState::Undelivered, Some("30003"), 9)
        );
    }

    #[test]
    fn what_is_no_verification_reads_as_none() {
        assert!(record(b"").is_none());
        assert!(record(b"VE0123").is_none());
        assert!(record(&packed(&Value::Array(vec![]))).is_none());
        let mut short_hash = lua_record(None);
        if let Value::Map(fields) = &mut short_hash {
            fields.retain(|(k, _)| k.as_str() != Some("codes"));
            fields.push((
                s("codes"),
                Value::Array(vec![Value::Array(vec![s("short"), Value::from(1u8)])]),
            ));
        }
        assert!(record(&packed(&short_hash)).is_none());
    }
}
