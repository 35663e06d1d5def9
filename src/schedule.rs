//! Schedules as data: a plan's 5-field cron expression read in its time zone, the next run
//! times after a given `now`, and the same schedule spelled as systemd `OnCalendar=` lines.
//! Pure functions: callers pass `now`, tests feed dates.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use crate::plan::Schedule;

/// A parsed schedule: its expression, and the zone it is read in.
#[derive(Clone, Debug)]
pub struct CronSchedule {
    pub expression: String,
    pub zone: Tz,
    cron: Cron,
}

impl CronSchedule {
    /// Reads `schedule` in its own zone, else `plan_zone`, else UTC. Validated plans always
    /// parse; the error is for callers that read unvalidated text.
    pub fn new(schedule: &Schedule, plan_zone: Option<&str>) -> Result<CronSchedule, String> {
        let zone_name = schedule.timezone.as_deref().or(plan_zone).unwrap_or("UTC");
        let zone: Tz = zone_name
            .parse()
            .map_err(|_| format!("unknown time zone `{zone_name}`"))?;
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .build()
            .parse(&schedule.cron)
            .map_err(|e| {
                format!(
                    "`{}` is not a cron expression: {}",
                    schedule.cron,
                    e.to_string().to_lowercase()
                )
            })?;
        Ok(CronSchedule {
            expression: schedule.cron.trim().to_owned(),
            zone,
            cron,
        })
    }

    /// The next `count` run times strictly after `now`, in the schedule's zone. A time that
    /// a DST change skips is not a run time; croner decides, as cron does.
    pub fn next(&self, now: DateTime<Utc>, count: usize) -> Vec<DateTime<Tz>> {
        self.cron
            .iter_after(now.with_timezone(&self.zone))
            .take(count)
            .collect()
    }

    /// The schedule as systemd `OnCalendar=` values, with the zone appended. Cron runs a job
    /// when day-of-month OR day-of-week matches (if both are restricted); systemd requires
    /// both, so that case becomes two lines.
    pub fn on_calendar(&self) -> Result<Vec<String>, String> {
        let fields = expand(&self.expression)?;
        let [minute, hour, dom, month, dow] = &fields;
        let time = format!(
            "{}:{}:00",
            compress(hour, 0, 23, 2),
            compress(minute, 0, 59, 2)
        );
        let zone = self.zone.name();
        let date = |dom: &str| format!("*-{}-{dom}", compress(month, 1, 12, 2));
        let dom_all = dom.len() == 31;
        let dow_all = dow.len() == 7;
        let weekdays = |days: &[u32]| {
            days.iter()
                .map(|d| WEEKDAYS[*d as usize])
                .collect::<Vec<_>>()
                .join(",")
        };
        let lines = match (dom_all, dow_all) {
            (_, true) => vec![format!("{} {time} {zone}", date(&compress(dom, 1, 31, 2)))],
            (true, false) => vec![format!("{} {} {time} {zone}", weekdays(dow), date("*"))],
            (false, false) => vec![
                format!("{} {time} {zone}", date(&compress(dom, 1, 31, 2))),
                format!("{} {} {time} {zone}", weekdays(dow), date("*")),
            ],
        };
        Ok(lines)
    }
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// The five fields of `expression` as sorted lists of values (weekdays 0–6, Sunday 0).
fn expand(expression: &str) -> Result<[Vec<u32>; 5], String> {
    let expression = match expression.trim() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        other => other,
    };
    let parts: Vec<&str> = expression.split_whitespace().collect();
    let [minute, hour, dom, month, dow] = parts.as_slice() else {
        return Err(format!("`{expression}` does not have five fields"));
    };
    let mut dow = field(dow, 0, 7, &WEEKDAYS)?;
    // Cron allows 7 for Sunday as well as 0.
    if dow.contains(&7) {
        dow.retain(|d| *d != 7);
        if !dow.contains(&0) {
            dow.insert(0, 0);
        }
    }
    Ok([
        field(minute, 0, 59, &[])?,
        field(hour, 0, 23, &[])?,
        field(dom, 1, 31, &[])?,
        field(month, 1, 12, &MONTHS)?,
        dow,
    ])
}

fn field(text: &str, min: u32, max: u32, names: &[&str]) -> Result<Vec<u32>, String> {
    let value = |word: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(word)) {
            // Month names count from 1, weekday names from 0.
            return Ok(i as u32 + if names.len() == 12 { 1 } else { 0 });
        }
        let n: u32 = word.parse().map_err(|_| {
            format!("`{word}` cannot be written as a systemd calendar value (L, W and # have no systemd equivalent); use `--emit cron`")
        })?;
        if n < min || n > max {
            return Err(format!("`{n}` is outside {min}-{max}"));
        }
        Ok(n)
    };
    let mut values = Vec::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (
                range,
                step.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("`{part}` has no valid step"))?,
            ),
            None => (part, 1),
        };
        let (from, to) = match range {
            "*" | "?" => (min, max),
            _ => match range.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None if step > 1 => (value(range)?, max),
                None => {
                    let v = value(range)?;
                    (v, v)
                }
            },
        };
        values.extend((from..=to).step_by(step as usize));
    }
    values.sort_unstable();
    values.dedup();
    if values.is_empty() {
        // A wrapping range (`22-2`), which systemd cannot spell as one value.
        return Err(format!(
            "`{text}` cannot be written as a systemd calendar value; use `--emit cron`"
        ));
    }
    Ok(values)
}

/// A list of values in systemd's shortest spelling: `*` for all of them, `A/S` for a
/// progression that runs to the end, `A..B` for a run, else a comma list.
fn compress(values: &[u32], min: u32, max: u32, width: usize) -> String {
    let all = (max - min + 1) as usize;
    if values.len() == all {
        return "*".into();
    }
    let pad = |v: u32| format!("{v:0width$}");
    if let [first, second, ..] = values
        && values.len() > 2
    {
        let step = second - first;
        let regular = values.windows(2).all(|w| w[1] - w[0] == step);
        if regular && step == 1 {
            return format!("{}..{}", pad(*first), pad(values[values.len() - 1]));
        }
        if regular && values[values.len() - 1] + step > max {
            return format!("{}/{step}", pad(*first));
        }
    }
    values.iter().map(|v| pad(*v)).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(cron: &str, zone: Option<&str>) -> CronSchedule {
        CronSchedule::new(
            &Schedule {
                cron: cron.into(),
                timezone: zone.map(str::to_owned),
            },
            None,
        )
        .unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn next_runs_are_in_the_plan_zone() {
        let s = schedule("0 2 * * *", Some("America/Sao_Paulo"));
        let next: Vec<String> = s
            .next(at("2026-11-30T12:00:00Z"), 3)
            .iter()
            .map(|t| t.to_rfc3339())
            .collect();
        assert_eq!(
            next,
            [
                "2026-12-01T02:00:00-03:00",
                "2026-12-02T02:00:00-03:00",
                "2026-12-03T02:00:00-03:00"
            ]
        );
    }

    #[test]
    fn a_time_dst_skips_is_not_a_run() {
        // Europe/Berlin jumps from 02:00 to 03:00 on 2026-03-29.
        let s = schedule("30 2 * * *", Some("Europe/Berlin"));
        let next: Vec<String> = s
            .next(at("2026-03-27T12:00:00Z"), 3)
            .iter()
            .map(|t| t.to_rfc3339())
            .collect();
        assert_eq!(next[0], "2026-03-28T02:30:00+01:00");
        assert!(!next.iter().any(|t| t.starts_with("2026-03-29T02:30")));
    }

    #[test]
    fn calendar_lines() {
        let cal = |cron: &str| schedule(cron, Some("UTC")).on_calendar().unwrap();
        assert_eq!(cal("0 2 * * *"), ["*-*-* 02:00:00 UTC"]);
        assert_eq!(cal("*/15 * * * *"), ["*-*-* *:00/15:00 UTC"]);
        assert_eq!(
            cal("30 3 * * 1-5"),
            ["Mon,Tue,Wed,Thu,Fri *-*-* 03:30:00 UTC"]
        );
        assert_eq!(cal("0 4 1 * *"), ["*-*-01 04:00:00 UTC"]);
        assert_eq!(cal("0 4 1 jan,jul *"), ["*-01,07-01 04:00:00 UTC"]);
        assert_eq!(
            cal("0 4 1 * 0"),
            ["*-*-01 04:00:00 UTC", "Sun *-*-* 04:00:00 UTC"]
        );
        assert_eq!(cal("0 4 * * 7"), ["Sun *-*-* 04:00:00 UTC"]);
        assert_eq!(cal("@weekly"), ["Sun *-*-* 00:00:00 UTC"]);
        assert_eq!(cal("0 4 * * mon"), ["Mon *-*-* 04:00:00 UTC"]);
        assert!(
            schedule("0 4 L * *", Some("UTC"))
                .on_calendar()
                .unwrap_err()
                .contains("--emit cron")
        );
    }
}
