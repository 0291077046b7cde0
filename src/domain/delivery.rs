//! What became of a message: the state the provider last reported. States
//! only move forward, so late or repeated reports can't undo news.

/// A message's fate, in the order it unfolds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// The provider accepted it.
    Queued,
    /// The provider handed it to the carrier.
    Sent,
    /// The phone got it.
    Delivered,
    /// The carrier could not deliver it.
    Undelivered,
    /// The provider could not send it.
    Failed,
}

impl DeliveryState {
    /// How far along the message is; a report may only raise it. The three
    /// final states share a rank, so the first final report stands.
    pub fn rank(self) -> u8 {
        match self {
            Self::Queued => 0,
            Self::Sent => 1,
            Self::Delivered | Self::Undelivered | Self::Failed => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
        }
    }

    /// The state named by [`DeliveryState::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Sent,
            Self::Delivered,
            Self::Undelivered,
            Self::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// Who took the SMS, under which id, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub provider: String,
    pub message_id: String,
    pub state: DeliveryState,
    /// The provider's error code, for a message that didn't arrive.
    pub error_code: Option<String>,
    /// Unix seconds of the last change.
    pub updated_at: u64,
}

impl Delivery {
    /// A message a provider has just taken.
    pub fn queued(receipt: &super::SmsReceipt, at: u64) -> Self {
        Self {
            provider: receipt.provider.clone(),
            message_id: receipt.message_id.clone(),
            state: DeliveryState::Queued,
            error_code: None,
            updated_at: at,
        }
    }
}

/// One report of a message's state, as a provider's callback gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub provider: String,
    pub message_id: String,
    pub state: DeliveryState,
    pub error_code: Option<String>,
    /// Unix seconds when it arrived.
    pub at: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_only_move_forward() {
        use DeliveryState::*;
        assert!(Queued.rank() < Sent.rank());
        assert!(Sent.rank() < Delivered.rank());
        assert_eq!(Delivered.rank(), Failed.rank());
        assert_eq!(Delivered.rank(), Undelivered.rank());
        for state in [Queued, Sent, Delivered, Undelivered, Failed] {
            assert_eq!(DeliveryState::from_name(state.as_str()), Some(state));
        }
        assert_eq!(DeliveryState::from_name("read"), None);
    }
}
