//! Backup set ids: a sortable UTC time plus a short suffix (`20261126T020000Z-4273f9a`): the
//! milliseconds, then four random hex digits.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};

/// The id of one backup set, also its folder name.
///
/// Ids sort by time as plain strings, also within one second: the suffix starts with the
/// milliseconds, so the newest set of a second is the greatest id and retention's "newest",
/// `latest` and `snapshots` agree with the clock. Its random part keeps two runs that start in
/// the same millisecond apart; the store still creates the folder exclusively and draws a new
/// suffix on a collision, so uniqueness never rests on luck alone.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SetId(String);

const TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";

impl SetId {
    /// A fresh id for a set started at `now`.
    pub fn new(now: DateTime<Utc>) -> SetId {
        let mut random = [0u8; 2];
        // The random part only separates runs within one millisecond; if the OS cannot give
        // randomness, the nanos still differ between runs and the exclusive mkdir catches the rest.
        if getrandom::fill(&mut random).is_err() {
            random = (now.timestamp_subsec_nanos() as u16).to_be_bytes();
        }
        // A leap second reports up to 1999 ms; three digits keep the string order.
        let millis = now.timestamp_subsec_millis().min(999);
        SetId(format!(
            "{}-{millis:03}{:04x}",
            now.format(TIME_FORMAT),
            u16::from_be_bytes(random)
        ))
    }

    /// Parses an id as written by [`SetId::new`]; anything else (a stray folder) is `None`.
    pub fn parse(text: &str) -> Option<SetId> {
        let (time, suffix) = text.split_once('-')?;
        let suffix_ok = !suffix.is_empty()
            && suffix.len() <= 16
            && suffix
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if !suffix_ok || NaiveDateTime::parse_from_str(time, TIME_FORMAT).is_err() {
            return None;
        }
        Some(SetId(text.to_owned()))
    }

    /// When the set was started, from the id itself.
    pub fn started_at(&self) -> DateTime<Utc> {
        let time = self
            .0
            .split_once('-')
            .map_or(self.0.as_str(), |(time, _)| time);
        NaiveDateTime::parse_from_str(time, TIME_FORMAT)
            .map(|naive| naive.and_utc())
            .unwrap_or_default()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ids_sort_by_time_and_differ_within_a_second() {
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 2, 0, 0).unwrap();
        let a = SetId::new(now);
        assert!(a.as_str().starts_with("20261126T020000Z-"), "{a}");
        assert_eq!(a.started_at(), now);
        let later = SetId::new(now + chrono::Duration::seconds(1));
        assert!(later > a);
        let many: std::collections::HashSet<_> = (0..64).map(|_| SetId::new(now)).collect();
        assert!(many.len() > 1, "the suffix must vary");
        // Within one second the order is the clock's, whatever the random part drew.
        for _ in 0..64 {
            let early = SetId::new(now + chrono::Duration::milliseconds(9));
            let late = SetId::new(now + chrono::Duration::milliseconds(10));
            assert!(early < late, "{early} {late}");
            assert!(
                early.as_str().starts_with("20261126T020000Z-009"),
                "{early}"
            );
            assert_eq!(SetId::parse(early.as_str()), Some(early.clone()));
        }
    }

    #[test]
    fn parse_accepts_only_set_ids() {
        assert!(SetId::parse("20261126T020000Z-3f9a").is_some());
        assert!(SetId::parse("20261126T020000Z").is_none());
        assert!(SetId::parse("notes-3f9a").is_none());
        assert!(SetId::parse("20261126T020000Z-../x").is_none());
    }
}
