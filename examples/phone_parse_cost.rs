//! What `src/numbering.rs` buys: the time to parse and validate phone numbers
//! with otpd's `Phone::parse` against the `phonenumber` crate's own `parse`
//! and `is_valid_with`, on the same numbers, in one process.
//!
//! ```text
//! cargo run --release --example phone_parse_cost
//! ```
//!
//! Prints nanoseconds per number for each path, the best of five rounds
//! (the least disturbed by whatever else runs), and their ratio.

use std::hint::black_box;
use std::time::Instant;

use otpd::domain::Phone;
use phonenumber::metadata::DATABASE;

/// Numbers of the kinds the benchmark and real traffic send: North American,
/// European, Asian; mobile and fixed line.
const SHAPES: &[&str] = &[
    "+1415555", "+1613555", "+4474001", "+4930123", "+3361234", "+8190123", "+9198765", "+5511987",
];

fn numbers() -> Vec<String> {
    (0..20_000)
        .map(|i| {
            let shape = SHAPES[i % SHAPES.len()];
            let digits = if shape.starts_with("+1") { 4 } else { 5 };
            format!("{shape}{:0digits$}", i % 10usize.pow(digits as u32))
        })
        .collect()
}

fn best_of_five(numbers: &[String], parse: impl Fn(&str) -> bool) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut valid = 0;
    for _ in 0..5 {
        let started = Instant::now();
        valid = numbers.iter().filter(|n| black_box(parse(n))).count();
        best = best.min(started.elapsed().as_nanos() as f64 / numbers.len() as f64);
    }
    (best, valid)
}

fn main() {
    let numbers = numbers();
    Phone::prepare();
    let crate_path = |n: &str| {
        phonenumber::parse(None, n).is_ok_and(|number| phonenumber::is_valid_with(&DATABASE, &number))
    };
    // Warm both: metadata loaded, regexes compiled.
    for n in &numbers {
        black_box(Phone::parse(n).is_ok());
        black_box(crate_path(n));
    }
    let (ours, ours_valid) = best_of_five(&numbers, |n| Phone::parse(n).is_ok());
    let (theirs, theirs_valid) = best_of_five(&numbers, crate_path);
    println!(
        "numbers: {} ({ours_valid} valid by otpd, {theirs_valid} by the crate)",
        numbers.len()
    );
    println!("otpd Phone::parse:            {ours:8.0} ns per number");
    println!("phonenumber parse + is_valid: {theirs:8.0} ns per number");
    println!("ratio: {:.1}x", theirs / ours);
}
