//! Counting what the API answered to sends and verifications, by the same
//! names clients see (the problem codes).

use crate::adapters::http::problem::Problem;
use crate::adapters::metrics::Metrics;
use crate::service::Sent;

impl Metrics {
    pub fn answered_send(&self, result: &Result<Sent, Problem>) {
        match result {
            Ok(sent) => self.send("sent", &sent.receipt.provider),
            Err(problem) => {
                self.send(&problem.code.name(), "none");
                self.refused(problem);
            }
        }
    }

    pub fn answered_verification(&self, result: &Result<(), Problem>) {
        match result {
            Ok(()) => self.verification("approved"),
            Err(problem) => {
                self.verification(&problem.code.name());
                self.refused(problem);
            }
        }
    }

    fn refused(&self, problem: &Problem) {
        if problem.code.is_limit() {
            self.rejection(&problem.code.name());
        }
    }
}
