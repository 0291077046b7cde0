//! The way a code reaches the phone.

use std::fmt;

/// A code's channel: an SMS, or a WhatsApp authentication message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Channel {
    #[default]
    Sms,
    Whatsapp,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Channel::Sms, Channel::Whatsapp];

    /// As the APIs, events and metrics name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Whatsapp => "whatsapp",
        }
    }

    /// The channel a name means (`sms`, `whatsapp`, any case), if any.
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
