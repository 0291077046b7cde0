//! Cancel or approve a verification, as the app that started it says.

use super::{OtpService, StatusError};
use crate::domain::{EventKind, Phone, Scope, Status, Verification, VerificationId};

/// How an app ends a verification itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Cancel,
    /// It verified the user another way.
    Approve,
}

impl Ending {
    /// Where it leaves the verification.
    pub fn status(self) -> Status {
        match self {
            Self::Cancel => Status::Canceled,
            Self::Approve => Status::Approved,
        }
    }
}

impl OtpService {
    /// Ends a pending verification of `scope`'s; returns it as it was.
    ///
    /// # Errors
    /// [`StatusError::NotFound`] for an unknown, ended, expired or locked
    /// verification, or another scope's, or a store failure.
    pub async fn end(
        &self,
        scope: &Scope,
        id: &VerificationId,
        ending: Ending,
    ) -> Result<(Phone, Verification), StatusError> {
        let phone = self.hasher.ids().open(id).ok_or(StatusError::NotFound)?;
        let ended = self
            .store
            .end(&phone, scope, id)
            .await?
            .ok_or(StatusError::NotFound)?;
        tracing::debug!(phone = %phone.masked(), ?ending, "verification ended");
        let event = match ending {
            Ending::Cancel => EventKind::Canceled,
            Ending::Approve => EventKind::Approved { by_code: false },
        };
        self.emit(&phone, Some(id), [event]).await;
        Ok((phone, ended))
    }

    /// Forgets the wrong codes the phone's ceiling counts, so its owner
    /// may start a verification and guess by phone again.
    ///
    /// # Errors
    /// [`crate::ports::StoreError`] when the store can't be reached in time.
    pub async fn clear_guesses(&self, phone: &Phone) -> Result<bool, crate::ports::StoreError> {
        self.store.clear_guesses(phone).await
    }
}
