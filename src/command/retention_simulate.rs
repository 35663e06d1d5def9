//! `planrun retention simulate`: run a retention policy over timestamps and print the decisions.

use std::io::BufRead;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::{CommandResult, Console};
use crate::cli::SimulateArgs;
use crate::exit_code;
use crate::plan::Retention;
use crate::retention::{Decision, Policy, PolicyError, SetInfo, SetStatus, decide};

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{input}:{line}: `{text}` is not an RFC 3339 timestamp such as 2025-02-14T02:00:00Z ({reason})"
    )]
    BadTimestamp {
        input: String,
        line: usize,
        text: String,
        reason: chrono::ParseError,
    },
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// One input line that held a timestamp.
struct Entry {
    text: String,
    time: DateTime<Utc>,
}

pub fn run(args: &SimulateArgs, console: &mut Console) -> CommandResult {
    if let Some(span) = args.keep_within.filter(|span| span.months_as_m) {
        // The span as written is gone once clap parsed it; the new spelling is its own.
        console.notice(format!(
            "--keep-within: `m` means months here; write `{span}` (`m` is minutes in a duration)"
        ));
    }
    console.out(&decide_all(args)?);
    Ok(exit_code::SUCCESS)
}

/// The decisions as text or JSON.
fn decide_all(args: &SimulateArgs) -> Result<String, SimulateError> {
    let retention = Retention {
        keep_last: args.keep_last,
        keep_hourly: args.keep_hourly,
        keep_daily: args.keep_daily,
        keep_weekly: args.keep_weekly,
        keep_monthly: args.keep_monthly,
        keep_yearly: args.keep_yearly,
        keep_within: args.keep_within,
        timezone: args.timezone.clone(),
        incomplete_after: None,
    };
    let policy = Policy::new(&retention)?;
    let entries = match &args.from {
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|source| SimulateError::Read {
                path: path.clone(),
                source,
            })?;
            read_entries(std::io::BufReader::new(file), &path.display().to_string())
                .map_err(|e| e.with_path(path))?
        }
        None => read_entries(std::io::stdin().lock(), "stdin")
            .map_err(|e| e.with_path(&PathBuf::from("stdin")))?,
    };
    let sets: Vec<SetInfo> = entries
        .iter()
        .map(|e| SetInfo {
            time: e.time,
            status: SetStatus::Complete,
        })
        .collect();
    let decisions = decide(&sets, &policy, Utc::now());
    Ok(if args.json {
        render_json(&entries, &decisions)
    } else {
        render_table(&entries, &decisions)
    })
}

/// Reading fails either on I/O or on a bad line; the I/O case still needs the path attached.
enum ReadFailure {
    Io(std::io::Error),
    Bad(SimulateError),
}

impl ReadFailure {
    fn with_path(self, path: &std::path::Path) -> SimulateError {
        match self {
            ReadFailure::Io(source) => SimulateError::Read {
                path: path.to_owned(),
                source,
            },
            ReadFailure::Bad(error) => error,
        }
    }
}

/// Blank lines are skipped so that a trailing newline or a spaced-out file is fine.
fn read_entries(reader: impl BufRead, input: &str) -> Result<Vec<Entry>, ReadFailure> {
    let mut entries = Vec::new();
    for (number, line) in reader.lines().enumerate() {
        let line = line.map_err(ReadFailure::Io)?;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let time = DateTime::parse_from_rfc3339(text).map_err(|reason| {
            ReadFailure::Bad(SimulateError::BadTimestamp {
                input: input.to_owned(),
                line: number + 1,
                text: text.to_owned(),
                reason,
            })
        })?;
        entries.push(Entry {
            text: text.to_owned(),
            time: time.with_timezone(&Utc),
        });
    }
    Ok(entries)
}

fn reasons_of(decision: &Decision) -> Vec<String> {
    decision.reasons.iter().map(ToString::to_string).collect()
}

/// One JSON array, one object per line, in input order: valid JSON that also reads well and greps.
fn render_json(entries: &[Entry], decisions: &[Decision]) -> String {
    if entries.is_empty() {
        return "[]\n".to_owned();
    }
    let rows: Vec<String> = entries
        .iter()
        .zip(decisions)
        .map(|(entry, decision)| {
            let object = serde_json::json!({
                "time": entry.text,
                "keep": decision.keep,
                "reasons": reasons_of(decision),
            });
            format!("  {object}")
        })
        .collect();
    format!("[\n{}\n]\n", rows.join(",\n"))
}

fn render_table(entries: &[Entry], decisions: &[Decision]) -> String {
    let width = entries
        .iter()
        .map(|e| e.text.len())
        .max()
        .unwrap_or(0)
        .max("TIME".len());
    let mut out = format!("{:width$}  {:6}  REASONS\n", "TIME", "ACTION");
    for (entry, decision) in entries.iter().zip(decisions) {
        let action = if decision.keep { "keep" } else { "remove" };
        let line = format!(
            "{:width$}  {action:6}  {}",
            entry.text,
            reasons_of(decision).join(", ")
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let kept = decisions.iter().filter(|d| d.keep).count();
    out.push_str(&format!(
        "{kept} kept, {} removed\n",
        decisions.len() - kept
    ));
    out
}
