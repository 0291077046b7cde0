//! Check a code: by the verification's id, or by phone.

use std::net::IpAddr;

use super::{OtpService, VerifyError};
use crate::domain::{
    Admitted, Code, EventKind, LockReason, Named, Phone, Quota, Scope, Status, Verification, VerificationId,
    VerifyOutcome,
};
use crate::ports::{Guess, Guesser};

/// Which verification a guess is for.
#[derive(Debug, Clone)]
pub enum Target {
    /// Whichever pending verifications of the caller's the phone has: a
    /// stranger can guess by phone too, so the owner's app should check by id.
    Phone(Phone),
    Id(VerificationId),
}

/// A guess that was heard: right (the verification is over) or wrong (one
/// attempt used).
#[derive(Debug, Clone)]
pub struct Guessed {
    pub phone: Phone,
    pub approved: bool,
    /// Before a right guess ended it, or after a wrong one.
    pub verification: Verification,
}

impl Guessed {
    /// Where the guess left the verification.
    pub fn status(&self) -> Status {
        if self.approved {
            Status::Approved
        } else {
            Status::Pending
        }
    }
}

impl OtpService {
    /// Checks `code` from `scope` against a verification, by phone or by id
    /// (which carries its phone). A wrong code is an answer, not an error:
    /// it says how many attempts are left.
    ///
    /// # Errors
    /// [`VerifyError`] for a locked or missing verification, a limit, or a
    /// store failure; never [`VerifyError::Mismatch`].
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn check(
        &self,
        scope: &Scope,
        target: &Target,
        code: &Code,
        client: IpAddr,
    ) -> Result<Guessed, VerifyError> {
        // An id that opens to no phone was never made here: no store call.
        let (phone, named) = match target {
            Target::Phone(phone) => (phone.clone(), Named::ByPhone),
            Target::Id(id) => (
                self.hasher.ids().open(id).ok_or(VerifyError::NotFound)?,
                Named::ById(id),
            ),
        };
        // Guesses by id are bounded by the verification's own attempts, and
        // its id is its starter's: a client's quota would only let a
        // stranger who shares the client's address (the app's server) use
        // up the owner's guesses. So only guesses by phone take from it.
        let quota = match named {
            Named::ByPhone => self.guards.verifies_per_ip,
            Named::ById(_) => Quota::OFF,
        };
        let guesser = Guesser {
            client: self.client(client),
            quota,
            waits: self.guards.guesses,
        };
        let candidates = self.hasher.candidates(&phone, code);
        let guess = Guess {
            scope,
            named,
            candidates: &candidates,
            ceiling: self.guards.ceiling,
        };
        let checked = match self.store.guess(&guesser, &phone, &guess).await? {
            Admitted::Done(checked) => checked,
            Admitted::Refused { retry_after, .. } => return Err(VerifyError::Limited { retry_after }),
        };
        let (approved, events) = match checked.outcome {
            VerifyOutcome::Approved => (true, vec![EventKind::Approved { by_code: true }]),
            VerifyOutcome::Mismatch {
                attempts_remaining,
                phone_blocked,
            } => {
                let locked = match (attempts_remaining, phone_blocked) {
                    (_, true) => Some(LockReason::GuessBudget),
                    (0, false) => Some(LockReason::Attempts),
                    _ => None,
                };
                let failed = EventKind::GuessFailed { attempts_remaining };
                let locked = locked.map(|reason| EventKind::Locked { reason });
                (false, std::iter::once(failed).chain(locked).collect())
            }
            VerifyOutcome::Locked { expires_in } => return Err(VerifyError::Locked { expires_in }),
            VerifyOutcome::NotFound => return Err(VerifyError::NotFound),
            VerifyOutcome::Throttled { retry_after } => return Err(VerifyError::GuessBudget { retry_after }),
        };
        let verification = checked.verification.ok_or(VerifyError::NotFound)?;
        let emitted = self.emit(&phone, Some(&verification.id), events);
        if approved {
            if !self.test_numbers.contains_key(&phone) {
                self.meter(|m| m.code_approved(phone.region().unwrap_or("none")));
            }
            futures_util::future::join(emitted, self.count_approval(&phone)).await;
        } else {
            emitted.await;
        }
        Ok(Guessed {
            phone,
            approved,
            verification,
        })
    }
}
