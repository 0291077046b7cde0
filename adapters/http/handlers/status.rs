//! The domain's [`Status`] as `/v1`'s answers and spec tell it.

use poem_openapi::Enum;

use crate::domain::Status;

/// Where the verification stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum VerificationStatus {
    /// Waiting for a right code.
    Pending,
    /// The right code was given: the verification is over.
    Approved,
    /// Cancelled by this call: it answers 404 from now on.
    Canceled,
}

impl From<Status> for VerificationStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Pending => Self::Pending,
            Status::Approved => Self::Approved,
            Status::Canceled => Self::Canceled,
        }
    }
}
