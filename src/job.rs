//! Render job ids: `YYYYMMDD-HHMMSS-xxxxxx`, the UTC time of the submission and a random part,
//! so ids sort by time (S3 lists them in order) and never collide. `status` uses the date
//! prefix to list only recent jobs.

use jiff::{SignedDuration, Timestamp};

/// A new job id for a submission made now.
pub fn new_id() -> String {
    id_at(Timestamp::now(), &random_hex())
}

/// The job id of a submission made at `at`, with `random` as its unique part.
fn id_at(at: Timestamp, random: &str) -> String {
    format!("{}-{random}", at.strftime("%Y%m%d-%H%M%S"))
}

/// The smallest job id of the UTC day `days_ago` days before today: job ids start with their
/// date, so listing from here skips older jobs.
pub fn floor(days_ago: u64) -> String {
    floor_at(Timestamp::now(), days_ago)
}

fn floor_at(now: Timestamp, days_ago: u64) -> String {
    // Further back than any job can be (and than jiff's range) is the same as "all".
    let days = days_ago.min(100 * 366) as i64;
    now.checked_sub(SignedDuration::from_hours(days * 24))
        .unwrap_or(Timestamp::MIN)
        .strftime("%Y%m%d")
        .to_string()
}

/// Six hex digits that differ between two ids made in the same second, also by two processes.
fn random_hex() -> String {
    use sha2::{Digest as _, Sha256};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut hash = Sha256::new();
    hash.update(now.as_nanos().to_le_bytes());
    hash.update(std::process::id().to_le_bytes());
    hash.update(format!("{:p}", &now).as_bytes());
    hash.finalize()
        .iter()
        .take(3)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `text` has the shape of a job id lew made (for `--job`): letters, digits, `-`, `_`.
pub fn looks_like_id(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_the_utc_time() {
        let at: Timestamp = "2026-11-28T20:30:15Z".parse().unwrap();
        assert_eq!(id_at(at, "3fa2c1"), "20261128-203015-3fa2c1");
        let leap: Timestamp = "2000-02-29T23:59:59Z".parse().unwrap();
        assert_eq!(id_at(leap, "000000"), "20000229-235959-000000");
    }

    #[test]
    fn ids_sort_by_time_and_differ() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.len(), "20261127-203015-3fa2c1".len(), "{a}");
        assert_ne!(a, b);
        assert!(looks_like_id(&a));
    }

    #[test]
    fn floors_are_whole_utc_days_back() {
        let now: Timestamp = "2026-03-01T00:30:00Z".parse().unwrap();
        assert_eq!(floor_at(now, 0), "20260301");
        assert_eq!(floor_at(now, 1), "20260228");
        assert_eq!(floor_at(now, 7), "20260222");
        assert!(floor_at(now, u64::MAX) < floor_at(now, 1));
    }
}
