//! The local inbox: what the console sender sent, kept in memory for the
//! development pages (adapters/http/dev). It is only built when the console
//! is the sole sender and the service listens on loopback (src/startup), so
//! it never holds a code that a real phone was sent.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{broadcast, watch};

use crate::domain::{Channel, DeliveryState, Phone, SmsReceipt, SmsText};

/// One message as the inbox shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InboxMessage {
    /// Counts up from 1 in each process, so newer messages have larger ids.
    pub id: u64,
    /// E.164.
    pub phone: String,
    pub text: String,
    /// Unix seconds.
    pub sent_at: u64,
    pub provider: String,
    /// `sms` or `whatsapp`.
    pub channel: &'static str,
    /// As the API reports it: a console message stays `queued`, since no
    /// provider ever reports on it.
    pub state: &'static str,
}

/// The last `capacity` messages, and news of each new one for open pages.
pub struct Inbox {
    capacity: usize,
    messages: Mutex<VecDeque<Arc<InboxMessage>>>,
    next_id: AtomicU64,
    news: broadcast::Sender<Arc<InboxMessage>>,
    /// Set at shutdown, so open event streams end instead of holding the
    /// server for its whole grace period.
    closed: watch::Sender<bool>,
}

impl Inbox {
    /// How many messages the service keeps by default.
    pub const CAPACITY: usize = 100;

    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            messages: Mutex::new(VecDeque::with_capacity(capacity)),
            next_id: AtomicU64::new(1),
            news: broadcast::channel(capacity).0,
            closed: watch::channel(false).0,
        }
    }

    /// Keeps a message the console sent, dropping the oldest past capacity.
    pub fn record(&self, to: &Phone, text: &SmsText, receipt: &SmsReceipt) {
        self.record_on(Channel::Sms, to, text.as_str(), receipt);
    }

    /// Keeps a message the console sent on `channel`.
    pub fn record_on(&self, channel: Channel, to: &Phone, text: &str, receipt: &SmsReceipt) {
        let message = Arc::new(InboxMessage {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            phone: to.as_str().to_owned(),
            text: text.to_owned(),
            channel: channel.as_str(),
            sent_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            provider: receipt.provider.clone(),
            state: DeliveryState::Queued.as_str(),
        });
        {
            let mut messages = self.messages.lock().unwrap_or_else(PoisonError::into_inner);
            if messages.len() == self.capacity {
                messages.pop_front();
            }
            messages.push_back(Arc::clone(&message));
        }
        // No page open is no error.
        let _ = self.news.send(message);
    }

    /// Every message kept, newest first.
    pub fn newest_first(&self) -> Vec<InboxMessage> {
        let messages = self.messages.lock().unwrap_or_else(PoisonError::into_inner);
        messages.iter().rev().map(|m| InboxMessage::clone(m)).collect()
    }

    /// Each message recorded from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<InboxMessage>> {
        self.news.subscribe()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Ends every event stream, now and later.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Turns `true` once the inbox is closed.
    pub fn closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::{Autofill, Code, MessageTemplate};

    fn text(code: &str) -> SmsText {
        let template = MessageTemplate::parse("{code}", "otpd", Autofill::default()).unwrap();
        template.render(&Code::parse(code).unwrap(), Duration::from_secs(60))
    }

    fn receipt() -> SmsReceipt {
        SmsReceipt {
            provider: "console".into(),
            message_id: "m".into(),
            tracked: false,
        }
    }

    #[test]
    fn keeps_the_newest_messages_first_up_to_capacity() {
        Phone::prepare();
        let inbox = Inbox::new(2);
        let phone = Phone::parse("+14155552671").unwrap();
        for code in ["111111", "222222", "333333"] {
            inbox.record(&phone, &text(code), &receipt());
        }
        let texts: Vec<String> = inbox.newest_first().iter().map(|m| m.text.clone()).collect();
        assert_eq!(texts, ["333333", "222222"]);
        assert_eq!(inbox.newest_first()[0].id, 3);
    }

    #[tokio::test]
    async fn subscribers_hear_of_each_new_message() {
        let inbox = Inbox::new(5);
        let mut news = inbox.subscribe();
        let phone = Phone::parse("+14155552671").unwrap();
        inbox.record(&phone, &text("123456"), &receipt());
        let message = news.recv().await.unwrap();
        assert_eq!(message.text, "123456");
        assert_eq!(message.phone, "+14155552671");
        assert_eq!(message.state, "queued");
        assert_eq!(message.provider, "console");
    }
}
