//! Read a verification: by its id, or the newest of a phone's.

use std::net::IpAddr;

use super::{OtpService, StatusError};
use crate::domain::{Bucket, Named, Phone, Scope, Taken, Verification, VerificationId};

impl OtpService {
    /// The scope's pending verification with this id, with its phone.
    /// Reads by id are metered per client like reads by phone, so a
    /// leaked id can't be polled without limit.
    ///
    /// # Errors
    /// [`StatusError::NotFound`] for an unknown, ended, expired or locked
    /// verification, or another scope's; [`StatusError::Limited`] past the
    /// client's quota; or a store failure.
    pub async fn fetch(
        &self,
        scope: &Scope,
        id: &VerificationId,
        client: IpAddr,
    ) -> Result<(Phone, Verification), StatusError> {
        let phone = self.hasher.ids().open(id).ok_or(StatusError::NotFound)?;
        self.look(client).await?;
        match self.store.status(&phone, scope, Named::ById(id)).await? {
            Some(v) if v.attempts_remaining > 0 => Ok((phone, v)),
            _ => Err(StatusError::NotFound),
        }
    }

    /// The scope's newest verification of the phone: its remaining life and
    /// attempts by phone. Whether a phone has a code pending is worth
    /// knowing to an attacker, so `client` pays for each look from its own
    /// quota; the answer never carries the id, which is its starter's.
    ///
    /// # Errors
    /// [`StatusError::NotFound`] when none is pending,
    /// [`StatusError::Limited`] past the client's quota, or a store failure.
    #[tracing::instrument(level = "debug", skip_all, fields(phone = %phone.masked()))]
    pub async fn status(
        &self,
        phone: &Phone,
        scope: &Scope,
        client: IpAddr,
    ) -> Result<Verification, StatusError> {
        self.look(client).await?;
        self.store
            .status(phone, scope, Named::ByPhone)
            .await?
            .ok_or(StatusError::NotFound)
    }

    /// Takes one look from the client's quota.
    async fn look(&self, client: IpAddr) -> Result<(), StatusError> {
        let bucket = Bucket::LookupsFrom(self.client(client));
        match self.take(bucket, self.guards.lookups_per_ip).await? {
            Taken::Granted => Ok(()),
            Taken::Exhausted { retry_after } => Err(StatusError::Limited { retry_after }),
        }
    }
}
