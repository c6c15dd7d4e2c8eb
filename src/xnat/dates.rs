//! XNAT's dates and times, as listings give them: a session's `date` (`2024-01-15`, or
//! `01/15/2024` on some sites) and `insert_date` (`2024-01-15 10:23:45.0`). XNAT writes them in
//! the server's local time without a zone; they are read as UTC, which places a file within a
//! day of the truth, and the same for every client.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The time a listing's date or timestamp names, if it is one.
pub fn parse(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let (date, time) = match text.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let (y, m, d) = if let Some((m, rest)) = date.split_once('/') {
        let (d, y) = rest.split_once('/')?;
        (number(y)?, number(m)?, number(d)?)
    } else {
        let mut parts = date.splitn(3, '-');
        let y = number(parts.next()?)?;
        (y, number(parts.next()?)?, number(parts.next()?)?)
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1900..=9999).contains(&y) {
        return None;
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    if let Some(time) = time {
        let time = time.split(['.', '+', 'Z']).next()?;
        let mut hms = time.splitn(3, ':');
        let h = number(hms.next()?)?;
        let min = number(hms.next().unwrap_or("0"))?;
        let s = number(hms.next().unwrap_or("0"))?;
        if h > 23 || min > 59 || s > 60 {
            return None;
        }
        secs += h * 3600 + min * 60 + s;
    }
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

fn number(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn dates_and_timestamps_as_xnat_writes_them() {
        assert_eq!(secs(parse("1970-01-01").unwrap()), 0);
        assert_eq!(secs(parse("2024-01-15").unwrap()), 1_705_276_800);
        assert_eq!(secs(parse("01/15/2024").unwrap()), 1_705_276_800);
        assert_eq!(
            secs(parse("2024-01-15 10:23:45.0").unwrap()),
            1_705_276_800 + 10 * 3600 + 23 * 60 + 45
        );
        assert_eq!(secs(parse("2000-02-29 00:00:01.123").unwrap()), 951_782_401);
        assert_eq!(secs(parse("2024-03-01T12:00:00Z").unwrap()), 1_709_294_400);
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "2024-01-32",
            "2024-01",
            "2024-01-15 25:00",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
