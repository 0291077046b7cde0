//! An event as the app receives it: the Standard Webhooks shape, `type`,
//! `timestamp` and `data`, with the event's `id` beside them (the same as the
//! `webhook-id` header, which the app deduplicates on). Nothing here can hold
//! a code, a hash or a key: `Event` has none.

use serde::Serialize;

use crate::domain::{rfc3339 as timestamp, Event, EventKind};

/// The body's fields in alphabetical order, as they are written.
#[derive(Serialize)]
struct Body<'a> {
    data: Data<'a>,
    id: &'a str,
    timestamp: String,
    #[serde(rename = "type")]
    kind: &'a str,
}

/// What each kind carries: a field a kind doesn't have is left out;
/// `error_code` is `null` on a delivery update without one.
#[derive(Serialize, Default)]
struct Data<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    approved_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    block: Option<BlockData<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts_remaining: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'static str>,
    /// Why a workflow moved to this channel: `undelivered` or `no_report`.
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<String>,
    country: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spend: Option<SpendData<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verification_id: Option<&'a str>,
}

/// A pumping block's decision record: the group, the rule's window and
/// its figures, and when the block ends.
#[derive(Serialize)]
struct BlockData<'a> {
    approved: u32,
    enforced: bool,
    group: &'a str,
    level: &'a str,
    sent: u32,
    strikes: u32,
    threshold: u32,
    until: String,
    window: &'a str,
}

/// A money cap's figures: which tally (the day's or the month's,
/// service-wide or one country's), the limit passed, what the tally holds
/// with the send that passed it, and when its window ends.
#[derive(Serialize)]
struct SpendData<'a> {
    country: Option<&'a str>,
    currency: &'a str,
    level: &'a str,
    limit: String,
    spent: String,
    until: String,
    window: &'a str,
}

/// The JSON body, made once when the event is kept and sent as it is on
/// every attempt (the signature covers these exact bytes).
pub fn body(event: &Event) -> String {
    let mut data = Data {
        country: event.phone.as_ref().and_then(|p| p.region()),
        phone: event.phone.as_ref().map(|p| p.as_str()),
        verification_id: event.verification_id.as_deref(),
        ..Data::default()
    };
    match &event.kind {
        EventKind::Created | EventKind::SendFailed | EventKind::Canceled => {}
        // A code, or the app's own word (Twilio's `Status=approved`).
        EventKind::Approved { by_code } => data.approved_by = Some(if *by_code { "code" } else { "app" }),
        EventKind::CodeSent {
            channel,
            fallback,
            provider,
            message_id,
            cost,
            currency,
        } => {
            data.channel = Some(channel.as_str());
            data.fallback = fallback.map(crate::domain::Fallback::as_str);
            data.provider = Some(provider);
            data.message_id = Some(message_id);
            data.cost = Some(cost.to_string());
            data.currency = Some(currency);
        }
        EventKind::Unblocked { group } => {
            data.country = Some(&group.country);
            data.group = Some(&group.name);
            data.level = Some(group.level.as_str());
        }
        EventKind::SpendCapReached { reached, currency } => {
            data.spend = Some(SpendData {
                country: reached.country.as_deref(),
                currency,
                level: reached.level.as_str(),
                limit: reached.limit.to_string(),
                spent: reached.spent.to_string(),
                until: timestamp(reached.ends_ms),
                window: reached.span.as_str(),
            });
        }
        EventKind::GuessFailed { attempts_remaining } => {
            data.attempts_remaining = Some(*attempts_remaining);
        }
        EventKind::Locked { reason } => data.reason = Some(reason.as_str()),
        EventKind::Blocked { group, block } => {
            data.block = Some(BlockData {
                approved: block.figures.approved,
                enforced: block.enforced,
                group: &group.name,
                level: group.level.as_str(),
                sent: block.figures.sent,
                strikes: block.strikes,
                threshold: block.figures.threshold,
                until: timestamp(block.until_ms),
                window: block.figures.window.as_str(),
            });
        }
        EventKind::DeliveryUpdated {
            provider,
            message_id,
            state,
            error_code,
        } => {
            data.provider = Some(provider);
            data.message_id = Some(message_id);
            data.state = Some(state.as_str());
            data.error_code = Some(error_code.as_deref());
        }
    }
    let body = Body {
        data,
        id: &event.id,
        timestamp: timestamp(event.at_ms),
        kind: event.kind.name(),
    };
    serde_json::to_string(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::domain::{CapLevel, CapReached, DeliveryState, Group, Level, LockReason, Money, Phone, Span};

    fn event(kind: EventKind) -> Event {
        let phone = Phone::parse("+14155552671").unwrap();
        Event::new(Some(phone), None, kind, 1_795_601_234_567)
    }

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(timestamp(1_795_601_234_567), "2026-11-25T10:07:14.567Z");
    }

    #[test]
    fn each_kind_carries_what_it_needs() {
        let sent: Value = serde_json::from_str(&body(&event(EventKind::CodeSent {
            channel: crate::domain::Channel::Sms,
            fallback: None,
            provider: "twilio".into(),
            message_id: "SM1".into(),
            cost: Money::from_micros(7_900),
            currency: "USD".into(),
        })))
        .unwrap();
        assert_eq!(sent["type"], "verification.code_sent");
        assert!(sent["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(sent["timestamp"], "2026-11-25T10:07:14.567Z");
        assert_eq!(
            sent["data"],
            json!({"phone": "+14155552671", "country": "US", "channel": "sms", "provider": "twilio", "message_id": "SM1",
                   "cost": "0.0079", "currency": "USD"})
        );
        // An operator's unblock names no phone.
        let group = Group {
            level: Level::Prefix,
            country: "NG".into(),
            name: "+2348031234".into(),
        };
        let unblocked = Event::new(None, None, EventKind::Unblocked { group }, 1_795_601_234_567);
        let unblocked: Value = serde_json::from_str(&body(&unblocked)).unwrap();
        assert_eq!(unblocked["type"], "fraud.unblocked");
        assert_eq!(
            unblocked["data"],
            json!({"country": "NG", "group": "+2348031234", "level": "prefix"})
        );
        let reached: Value = serde_json::from_str(&body(&event(EventKind::SpendCapReached {
            reached: CapReached {
                span: Span::Day,
                country: None,
                level: CapLevel::Soft,
                limit: Money::from_micros(250_000_000),
                spent: Money::from_micros(250_007_900),
                ends_ms: 1_795_651_200_000,
            },
            currency: "USD".into(),
        })))
        .unwrap();
        assert_eq!(reached["type"], "spend.cap_reached");
        assert_eq!(
            reached["data"]["spend"],
            json!({"country": null, "currency": "USD", "level": "soft", "limit": "250.00",
                   "spent": "250.0079", "until": "2026-11-26T00:00:00.000Z", "window": "day"})
        );
        let locked: Value = serde_json::from_str(&body(&event(EventKind::Locked {
            reason: LockReason::GuessBudget,
        })))
        .unwrap();
        assert_eq!(locked["data"]["reason"], "guess_budget");
        // An approval by the app itself (Twilio's `Status=approved`) is told
        // apart from one by a code.
        let approved = |by_code| -> Value {
            serde_json::from_str(&body(&event(EventKind::Approved { by_code }))).unwrap()
        };
        assert_eq!(approved(true)["data"]["approved_by"], "code");
        assert_eq!(approved(false)["data"]["approved_by"], "app");
        let delivered: Value = serde_json::from_str(&body(&event(EventKind::DeliveryUpdated {
            provider: "plivo".into(),
            message_id: "u-1".into(),
            state: DeliveryState::Undelivered,
            error_code: Some("30003".into()),
        })))
        .unwrap();
        assert_eq!(delivered["data"]["state"], "undelivered");
        assert_eq!(delivered["data"]["error_code"], "30003");
        let without_code: Value = serde_json::from_str(&body(&event(EventKind::DeliveryUpdated {
            provider: "plivo".into(),
            message_id: "u-1".into(),
            state: DeliveryState::Delivered,
            error_code: None,
        })))
        .unwrap();
        assert_eq!(without_code["data"]["error_code"], Value::Null);
        assert!(without_code["data"]
            .as_object()
            .unwrap()
            .contains_key("error_code"));
    }

    #[test]
    fn the_bytes_are_compact_with_keys_in_order() {
        let created = body(&event(EventKind::Created));
        assert!(
            created.starts_with(r#"{"data":{"country":"US","phone":"+14155552671"},"id":"evt_"#),
            "{created}"
        );
        assert!(
            created.ends_with(r#"","timestamp":"2026-11-25T10:07:14.567Z","type":"verification.created"}"#),
            "{created}"
        );
    }
}
