//! The way a code reaches the phone.

use std::fmt;

/// A code's channel: an SMS, a WhatsApp authentication message, or a
/// voice call that reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Channel {
    #[default]
    Sms,
    Whatsapp,
    Voice,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Sms, Channel::Whatsapp, Channel::Voice];

    /// As the APIs, events and metrics name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Whatsapp => "whatsapp",
            Self::Voice => "voice",
        }
    }

    /// The channel a name means (`sms`, `whatsapp`, `voice`, any case), if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_reads_back_by_its_name_in_any_case() {
        for channel in Channel::ALL {
            assert_eq!(Channel::parse(channel.as_str()), Some(channel));
            assert_eq!(Channel::parse(&channel.as_str().to_uppercase()), Some(channel));
        }
        assert_eq!(Channel::parse("call"), None);
        assert_eq!(Channel::parse(""), None);
    }
}
