//! The way a code reaches the phone.

use std::collections::HashMap;
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

/// Most channels a workflow tries: one of each.
pub const MAX_WORKFLOW: usize = Channel::ALL.len();

/// The channels a send tries in order when it names none: by destination
/// country, else the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflows {
    default: Vec<Channel>,
    by_country: HashMap<String, Vec<Channel>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    #[error("a workflow names 1 to {MAX_WORKFLOW} channels")]
    Length,
    #[error("a workflow names each channel once")]
    Repeated,
}

impl Default for Workflows {
    fn default() -> Self {
        Self {
            default: vec![Channel::Sms],
            by_country: HashMap::new(),
        }
    }
}

impl Workflows {
    /// # Errors
    /// [`WorkflowError`] for a workflow that is empty, too long or names a
    /// channel twice, with the country it is for (`None`: the default).
    pub fn new(
        default: Vec<Channel>,
        by_country: HashMap<String, Vec<Channel>>,
    ) -> Result<Self, (Option<String>, WorkflowError)> {
        check(&default).map_err(|e| (None, e))?;
        for (country, channels) in &by_country {
            check(channels).map_err(|e| (Some(country.clone()), e))?;
        }
        Ok(Self { default, by_country })
    }

    /// The workflow for a phone of `country`.
    pub fn for_country(&self, country: Option<&str>) -> &[Channel] {
        country
            .and_then(|c| self.by_country.get(c))
            .unwrap_or(&self.default)
    }

    /// Every channel any workflow names.
    pub fn channels(&self) -> impl Iterator<Item = Channel> + '_ {
        self.by_country.values().chain([&self.default]).flatten().copied()
    }
}

/// Checks a workflow: 1 to [`MAX_WORKFLOW`] channels, each once.
///
/// # Errors
/// [`WorkflowError`] for one that is not.
pub fn check(channels: &[Channel]) -> Result<(), WorkflowError> {
    if channels.is_empty() || channels.len() > MAX_WORKFLOW {
        return Err(WorkflowError::Length);
    }
    if channels
        .iter()
        .enumerate()
        .any(|(i, c)| channels[..i].contains(c))
    {
        return Err(WorkflowError::Repeated);
    }
    Ok(())
}

/// A fallback a verification is owed: after message `after` (the vendor's
/// id) of verification `id`, a new code on `channel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueFallback {
    pub phone: super::Phone,
    pub id: super::VerificationId,
    pub after: String,
    /// The workflow's next channel, as the verification named it.
    pub channel: Channel,
    pub why: Fallback,
}

/// Why the service sent a code on a workflow's next channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The vendor reported the last message failed or undelivered.
    Undelivered,
    /// No delivered report came in time.
    NoReport,
}

impl Fallback {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Undelivered => "undelivered",
            Self::NoReport => "no_report",
        }
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

    #[test]
    fn a_workflow_names_one_to_three_channels_each_once() {
        use Channel::*;
        assert_eq!(check(&[Whatsapp, Sms, Voice]), Ok(()));
        assert_eq!(check(&[]), Err(WorkflowError::Length));
        assert_eq!(check(&[Sms, Voice, Sms]), Err(WorkflowError::Repeated));
        let by_country = HashMap::from([("IN".to_owned(), vec![Whatsapp, Sms])]);
        let flows = Workflows::new(vec![Sms], by_country).unwrap();
        assert_eq!(flows.for_country(Some("IN")), &[Whatsapp, Sms]);
        assert_eq!(flows.for_country(Some("US")), &[Sms]);
        assert_eq!(flows.for_country(None), &[Sms]);
        let bad = HashMap::from([("BR".to_owned(), vec![])]);
        assert_eq!(
            Workflows::new(vec![Sms], bad),
            Err((Some("BR".to_owned()), WorkflowError::Length))
        );
    }
}
