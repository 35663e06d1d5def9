//! Carrying out one check against restored data: `sql` (PostgreSQL through psql, SQLite
//! directly), `files` (a walk of the restored tree), `verify` (every artifact re-hashed) and
//! `http`. `run` checks are a program the caller runs through the process supervisor. Every
//! check is held to its timeout; none can pass without a value to compare.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::CheckResult;
use super::sql_count::counted_table;
use crate::exec_plan::ExecPlan;
use crate::plan::{CheckStep, Expect, FileCount, PostgresSource, Source};
use crate::source::Stop;
use crate::storage::{Facts, SetSummary, Store};

/// How long a check may take when it does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Where a source can be read after a restore: its scratch database (and server) or path.
/// A source with no target is read where the plan says it lives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target {
    pub database: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: Option<PathBuf>,
}

impl Target {
    /// The source's connection, pointed at the target's server and database.
    pub fn connection(&self, pg: &PostgresSource) -> (PostgresSource, String) {
        let mut pg = pg.clone();
        if self.host.is_some() {
            pg.host = self.host.clone();
        }
        if self.port.is_some() {
            pg.port = self.port;
        }
        let database = self.database.clone().unwrap_or_else(|| pg.database.clone());
        (pg, database)
    }
}

/// What checks read: the plan's sources, where each was restored, and the set whose
/// recorded facts `matches_backup` compares with (and `verify` re-hashes).
pub struct CheckScope<'a> {
    pub plan: &'a ExecPlan,
    pub targets: &'a BTreeMap<String, Target>,
    pub set: Option<(&'a Store, &'a SetSummary)>,
}

impl CheckScope<'_> {
    fn source(&self, name: &str) -> Option<&Source> {
        self.plan
            .sources
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
    }

    fn target(&self, name: &str) -> Target {
        self.targets.get(name).cloned().unwrap_or_default()
    }

    /// The facts the set recorded for `source` at backup time.
    fn recorded(&self, source: &str) -> Option<&Facts> {
        let (_, set) = self.set?;
        let manifest = set.manifest.as_ref()?;
        manifest
            .artifacts
            .iter()
            .find(|a| a.source == source)
            .map(|a| &a.facts)
    }
}

/// A check's name for reports: its own `name`, else what it does.
pub fn describe(check: &CheckStep) -> (String, &'static str) {
    let (what, kind) = if let Some(sql) = &check.sql {
        (
            format!(
                "{} on {}",
                sql.trim(),
                check.source.as_deref().unwrap_or("?")
            ),
            "sql",
        )
    } else if let Some(files) = &check.files {
        (format!("files of {files}"), "files")
    } else if check.verify.is_some() {
        ("sha256 of every artifact".to_owned(), "verify")
    } else if let Some(run) = &check.run {
        (run.join(" "), "run")
    } else {
        (
            format!("GET {}", check.http.as_deref().unwrap_or("?")),
            "http",
        )
    };
    (check.name.clone().unwrap_or(what), kind)
}

/// Carries out `check` (any form but `run`) within its timeout.
pub async fn evaluate(check: &CheckStep, scope: &CheckScope<'_>) -> CheckResult {
    let (name, kind) = describe(check);
    let started = Instant::now();
    let limit = check.timeout.map_or(DEFAULT_TIMEOUT, |t| t.as_std());
    let base = CheckResult::new(&name, kind);
    let stop = Stop::with_grace(scope.plan.kill_grace);
    let work = async {
        if let Some(sql) = &check.sql {
            sql_check(base.clone(), check, sql, scope, &stop).await
        } else if let Some(files) = &check.files {
            files_check(base.clone(), check, files, scope).await
        } else if check.verify.is_some() {
            verify_check(base.clone(), scope).await
        } else if let Some(url) = &check.http {
            http_check(base.clone(), check, url, limit).await
        } else {
            base.clone()
                .failed("-".into(), "a `run` check runs through the executor")
        }
    };
    let mut result = match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => {
            // The psql of an `sql` check is stopped as a group, not left on the server.
            stop.stop();
            base.failed(
                "-".into(),
                format!("timed out after {}", crate::duration::Duration(limit)),
            )
        }
    };
    result.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    result
}

/// What the expectation reads as, for reports.
fn expectation(expect: &Expect) -> String {
    match expect {
        Expect::MatchesBackup => "the recorded value".into(),
        Expect::Equals(value) => match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        },
        Expect::Range { min, max } => match (min, max) {
            (Some(min), Some(max)) => format!("{min}..={max}"),
            (Some(min), None) => format!(">= {min}"),
            (None, Some(max)) => format!("<= {max}"),
            (None, None) => "anything".into(),
        },
    }
}

/// Compares a value read back (`actual`, as text) with `expect`; `recorded` is the backup's
/// fact for `matches_backup`.
fn compare(
    base: CheckResult,
    expect: &Expect,
    actual: &str,
    recorded: Option<&serde_json::Value>,
) -> CheckResult {
    match expect {
        Expect::MatchesBackup => match recorded {
            Some(value) => {
                let expected = match value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let passed = same_value(value, actual);
                base.compared(expected, actual.to_owned(), passed)
            }
            None => base.failed("-".into(), "nothing was recorded to match"),
        },
        Expect::Equals(value) => {
            let passed = same_value(value, actual);
            base.compared(expectation(expect), actual.to_owned(), passed)
        }
        Expect::Range { min, max } => match actual.trim().parse::<f64>() {
            Ok(number) => {
                let passed = min.is_none_or(|m| number >= m as f64)
                    && max.is_none_or(|m| number <= m as f64);
                base.compared(expectation(expect), actual.to_owned(), passed)
            }
            Err(_) => base.failed(
                expectation(expect),
                format!("expected a number, found `{actual}`"),
            ),
        },
    }
}

/// Whether the text a query or count produced equals `value`: numbers as numbers, booleans
/// as psql and SQLite print them, anything else as text.
fn same_value(value: &serde_json::Value, actual: &str) -> bool {
    let actual = actual.trim();
    match value {
        serde_json::Value::Number(n) => match (n.as_f64(), actual.parse::<f64>()) {
            (Some(a), Ok(b)) => a == b,
            _ => false,
        },
        serde_json::Value::Bool(b) => {
            let text = if *b {
                ["t", "true", "1"]
            } else {
                ["f", "false", "0"]
            };
            text.contains(&actual)
        }
        serde_json::Value::Null => actual.is_empty(),
        serde_json::Value::String(s) => s == actual,
        other => *other == actual,
    }
}

async fn sql_check(
    base: CheckResult,
    check: &CheckStep,
    sql: &str,
    scope: &CheckScope<'_>,
    stop: &Stop,
) -> CheckResult {
    let expect = check.expect.clone().unwrap_or(Expect::MatchesBackup);
    let source_name = check.source.as_deref().unwrap_or_default();
    // `matches_backup` needs a recorded fact before anything is queried: a query with
    // nothing to compare with fails, never passes silently.
    let recorded = if expect == Expect::MatchesBackup {
        let Some(table) = counted_table(sql) else {
            return base.failed(
                "the recorded value".into(),
                "nothing was recorded for this query: `matches_backup` compares `SELECT count(*) FROM TABLE` with the row count recorded at backup time",
            );
        };
        let counts = scope
            .recorded(source_name)
            .and_then(|f| f.get("row_counts"))
            .and_then(|c| c.as_object());
        let found = counts.and_then(|counts| {
            counts.get(&table).or_else(|| {
                // `public.t` and `t` name the same table where the schema is the default.
                table
                    .strip_prefix("public.")
                    .and_then(|t| counts.get(t))
                    .or_else(|| counts.get(&format!("public.{table}")))
            })
        });
        match found {
            Some(value) => Some(value.clone()),
            None => {
                return base.failed(
                    "the recorded value".into(),
                    format!(
                        "nothing was recorded for table `{table}` of `{source_name}` at backup time (add it to `count_rows`)"
                    ),
                );
            }
        }
    } else {
        None
    };
    let target = scope.target(source_name);
    let value = match scope.source(source_name) {
        Some(Source::Postgres(pg)) => {
            let (pg, database) = target.connection(pg);
            let (sql, stop) = (sql.to_owned(), stop.clone());
            tokio::task::spawn_blocking(move || {
                crate::source::postgres::query_text(&pg, &database, &sql, &stop)
                    .map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|join| Err(join.to_string()))
        }
        Some(Source::Sqlite(db)) => {
            let path = target.path.unwrap_or_else(|| PathBuf::from(&db.path));
            let sql = sql.to_owned();
            tokio::task::spawn_blocking(move || sqlite_value(&path, &sql))
                .await
                .unwrap_or_else(|join| Err(join.to_string()))
        }
        _ => Err(format!(
            "`{source_name}` is not a postgres or sqlite source"
        )),
    };
    let value = match value {
        Ok(value) if value.contains('\n') => Err("the query returned more than one row".into()),
        other => other,
    };
    match value {
        Ok(actual) => compare(base, &expect, &actual, recorded.as_ref()),
        Err(error) => base.failed(expectation(&expect), error),
    }
}

/// The first column of the one row `sql` returns, read-only.
fn sqlite_value(path: &Path, sql: &str) -> Result<String, String> {
    use rusqlite::types::ValueRef;
    let connection =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("sqlite {}: {e}", path.display()))?;
    let mut statement = connection.prepare(sql).map_err(|e| e.to_string())?;
    let mut rows = statement.query([]).map_err(|e| e.to_string())?;
    let Some(row) = rows.next().map_err(|e| e.to_string())? else {
        return Err("the query returned no row".into());
    };
    let text = match row.get_ref(0).map_err(|e| e.to_string())? {
        ValueRef::Null => String::new(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Blob(b) => format!("<{} bytes>", b.len()),
    };
    if rows.next().map_err(|e| e.to_string())?.is_some() {
        return Err("the query returned more than one row".into());
    }
    Ok(text)
}

/// Files, bytes and symbolic links under a folder, counted without following links.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeCount {
    pub files: u64,
    pub bytes: u64,
    pub symlinks: u64,
}

impl TreeCount {
    pub fn of(root: &Path) -> std::io::Result<TreeCount> {
        let mut count = TreeCount::default();
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let kind = entry.file_type()?;
                if kind.is_symlink() {
                    count.symlinks += 1;
                } else if kind.is_dir() {
                    pending.push(entry.path());
                } else if kind.is_file() {
                    count.files += 1;
                    count.bytes += entry.metadata()?.len();
                }
            }
        }
        Ok(count)
    }

    fn get(&self, what: FileCount) -> u64 {
        match what {
            FileCount::Files => self.files,
            FileCount::Bytes => self.bytes,
            FileCount::Symlinks => self.symlinks,
        }
    }
}

async fn files_check(
    base: CheckResult,
    check: &CheckStep,
    source_name: &str,
    scope: &CheckScope<'_>,
) -> CheckResult {
    let expect = check.expect.clone().unwrap_or(Expect::MatchesBackup);
    let root = match (scope.target(source_name).path, scope.source(source_name)) {
        (Some(path), _) => path,
        (None, Some(Source::Directory(dir))) => PathBuf::from(&dir.path),
        _ => {
            return base.failed(
                expectation(&expect),
                format!("`{source_name}` was not restored to a folder this check can count"),
            );
        }
    };
    let counted = {
        let root = root.clone();
        tokio::task::spawn_blocking(move || TreeCount::of(&root))
            .await
            .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())))
    };
    let count = match counted {
        Ok(count) => count,
        Err(error) => {
            return base.failed(
                expectation(&expect),
                format!("cannot count {}: {error}", root.display()),
            );
        }
    };
    match expect {
        Expect::MatchesBackup => {
            let Some(facts) = scope.recorded(source_name) else {
                return base.failed(
                    "the recorded counts".into(),
                    format!("nothing was recorded for `{source_name}` at backup time"),
                );
            };
            let mut expected = Vec::new();
            let mut actual = Vec::new();
            let mut wrong = Vec::new();
            for what in [FileCount::Files, FileCount::Bytes, FileCount::Symlinks] {
                let Some(recorded) = facts.get(what.as_str()).and_then(|v| v.as_u64()) else {
                    continue;
                };
                let found = count.get(what);
                expected.push(format!("{} {recorded}", what.as_str()));
                actual.push(format!("{} {found}", what.as_str()));
                if recorded != found {
                    wrong.push(format!(
                        "{}: expected {recorded}, found {found}",
                        what.as_str()
                    ));
                }
            }
            if expected.is_empty() {
                return base.failed(
                    "the recorded counts".into(),
                    format!("nothing was recorded for `{source_name}` at backup time"),
                );
            }
            let passed = wrong.is_empty();
            let mut result = base.compared(expected.join(", "), actual.join(", "), passed);
            if !passed {
                result.message = wrong.join("; ");
            }
            result
        }
        other => {
            let what = check.count.unwrap_or_default();
            let result = compare(base.clone(), &other, &count.get(what).to_string(), None);
            let named = |text: &str| format!("{} {text}", what.as_str());
            base.compared(
                named(&result.expected),
                named(&result.actual),
                result.passed,
            )
        }
    }
}

async fn verify_check(base: CheckResult, scope: &CheckScope<'_>) -> CheckResult {
    let expected = "every sha256 as in the manifest".to_owned();
    let Some((store, set)) = scope.set else {
        return base.failed(expected, "no set to verify");
    };
    match crate::storage::verify_set(store, &scope.plan.name, set, chrono::Utc::now()).await {
        Ok(record) if record.ok() => {
            let count = set.manifest.as_ref().map_or(0, |m| m.artifacts.len());
            base.compared(expected, format!("{count} artifacts match"), true)
        }
        Ok(record) => {
            let problems: Vec<String> = record.problems.iter().map(ToString::to_string).collect();
            let mut result = base.compared(expected, problems.join("; "), false);
            result.message = format!("set {} is damaged: {}", set.id, problems.join("; "));
            result
        }
        Err(error) => base.failed(expected, error.to_string()),
    }
}

async fn http_check(
    base: CheckResult,
    check: &CheckStep,
    url: &str,
    limit: Duration,
) -> CheckResult {
    let expect = check.expect.clone().unwrap_or(Expect::Range {
        min: Some(200),
        max: Some(299),
    });
    let client = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10).min(limit))
        .read_timeout(Duration::from_secs(20).min(limit))
        .timeout(limit)
        .build()
    {
        Ok(client) => client,
        Err(error) => return base.failed(expectation(&expect), error.to_string()),
    };
    match client.get(url).send().await {
        Ok(response) => {
            let status = response.status().as_u16().to_string();
            let mut result = compare(base, &expect, &status, None);
            result.expected = format!("HTTP {}", result.expected);
            result.actual = format!("HTTP {status}");
            result
        }
        // The URL may carry a token; only the kind of failure is kept.
        Err(error) if error.is_connect() => base.failed(expectation(&expect), "cannot connect"),
        Err(error) if error.is_timeout() => base.failed(expectation(&expect), "no answer in time"),
        Err(_) => base.failed(expectation(&expect), "the request failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_as_their_kind() {
        assert!(same_value(&serde_json::json!(42), "42"));
        assert!(same_value(&serde_json::json!(42), " 42.0"));
        assert!(!same_value(&serde_json::json!(42), "41"));
        assert!(same_value(&serde_json::json!(true), "t"));
        assert!(same_value(&serde_json::json!("crm"), "crm"));
        let base = CheckResult::new("n", "sql");
        let range = Expect::Range {
            min: Some(1),
            max: Some(3),
        };
        assert!(compare(base.clone(), &range, "3", None).passed);
        let low = compare(base.clone(), &range, "0", None);
        assert_eq!(
            (low.passed, low.message.as_str()),
            (false, "expected 1..=3, found 0")
        );
        let nothing = compare(base, &Expect::MatchesBackup, "3", None);
        assert_eq!(
            (nothing.passed, nothing.message.as_str()),
            (false, "nothing was recorded to match")
        );
    }
}
