//! Counting what the API answered, by the same names clients see.

use super::problem::Problem;
use crate::adapters::metrics::Metrics;
use crate::service::Sent;

pub fn send(metrics: &Metrics, result: &Result<Sent, Problem>) {
    match result {
        Ok(sent) => metrics.send("sent", &sent.receipt.provider),
        Err(problem) => {
            metrics.send(&problem.code.name(), "none");
            rejection(metrics, problem);
        }
    }
}

pub fn verification(metrics: &Metrics, result: &Result<(), Problem>) {
    match result {
        Ok(()) => metrics.verification("approved"),
        Err(problem) => {
            metrics.verification(&problem.code.name());
            rejection(metrics, problem);
        }
    }
}

fn rejection(metrics: &Metrics, problem: &Problem) {
    if problem.code.is_limit() {
        metrics.rejection(&problem.code.name());
    }
}
