//! Instants as people and other programs read them.

/// RFC 3339 in UTC with milliseconds: `2026-12-01T10:00:00.123Z`.
pub fn rfc3339(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        unix_ms % 1000
    )
}

/// Days since 1970-01-01 as a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// A proleptic Gregorian date as days since 1970-01-01 (Howard Hinnant's
/// `days_from_civil`); `month` 13 is January of the next year.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let (year, month) = if month > 12 {
        (year + 1, month - 12)
    } else {
        (year, month)
    };
    let year = year - u64::from(month <= 2);
    let era = year / 400;
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The UTC day of `unix_ms` as `YYYYMMDD`, and when it ends (unix ms).
pub fn utc_day(unix_ms: u64) -> (String, u64) {
    let days = unix_ms / 86_400_000;
    let (year, month, day) = civil_from_days(days);
    (format!("{year:04}{month:02}{day:02}"), (days + 1) * 86_400_000)
}

/// The UTC month of `unix_ms` as `YYYYMM`, and when it ends (unix ms).
pub fn utc_month(unix_ms: u64) -> (String, u64) {
    let (year, month, _) = civil_from_days(unix_ms / 86_400_000);
    (
        format!("{year:04}{month:02}"),
        days_from_civil(year, month + 1, 1) * 86_400_000,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_months_end_at_utc_midnight() {
        // 2026-12-05T11:58:33Z
        let now = 1_796_471_913_000;
        assert_eq!(rfc3339(now), "2026-12-05T11:58:33.000Z");
        let (day, day_ends) = utc_day(now);
        assert_eq!(
            (day.as_str(), rfc3339(day_ends).as_str()),
            ("20261205", "2026-12-06T00:00:00.000Z")
        );
        let (month, month_ends) = utc_month(now);
        assert_eq!(
            (month.as_str(), rfc3339(month_ends).as_str()),
            ("202612", "2027-01-01T00:00:00.000Z")
        );
        // A leap February.
        let feb = days_from_civil(2028, 2, 10) * 86_400_000;
        assert_eq!(rfc3339(utc_month(feb).1), "2028-03-01T00:00:00.000Z");
        for days in [0, 59, 60, 365, 10_957, 20_000, 20_792] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
