//! `planrun status PLAN` through the real binary: the last run and success, the newest set of
//! each storage against the RPO, the last passing drill against `drill.max_age`, and exit 1
//! when anything is overdue or missing.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn run(work: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_planrun"))
        .args(args)
        .arg("--state-dir")
        .arg(work.join("state"))
        .current_dir(work)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn plan(work: &Path, drill_extra: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(work.join("media")).unwrap();
    std::fs::write(work.join("media/a.txt"), b"a\n").unwrap();
    let path = work.join("plan.yaml");
    std::fs::write(
        &path,
        format!(
            "version: 1
name: site
sources:
  media: {{ directory: {{ path: {dir}/media }} }}
storage:
  local: {{ local: {{ path: {dir}/backups }} }}
  archive: {{ local: {{ path: {dir}/archive }} }}
steps:
  - {{ id: media, backup: media }}
recovery:
  objectives: {{ rpo: 24h }}
  levels: {{}}
drill:
{drill_extra}  restore:
    media: {{ path: media }}
  checks:
    - {{ files: media, expect: matches_backup }}
",
            dir = work.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// `(label, health)` of each text row, the detail left out.
fn rows(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(|l| {
            let parts: Vec<&str> = l.trim().split("  ").filter(|p| !p.is_empty()).collect();
            (parts[0].trim().to_owned(), parts[1].trim().to_owned())
        })
        .collect()
}

#[test]
fn a_fresh_backup_and_a_passing_drill_are_healthy_and_gaps_are_named() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    plan(work, "");
    let (code, stdout, _) = run(work, &["status", "plan.yaml"]);
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(
        rows(&stdout),
        [
            ("last run".into(), "MISSING".into()),
            ("last success".into(), "MISSING".into()),
            ("newest set (archive)".into(), "MISSING".into()),
            ("newest set (local)".into(), "MISSING".into()),
            ("last passing drill".into(), "MISSING".into()),
        ]
    );
    assert!(stdout.ends_with("needs attention\n"), "{stdout}");

    let (code, _, stderr) = run(work, &["execute", "plan.yaml"]);
    assert_eq!(code, 0, "{stderr}");
    std::fs::create_dir_all(work.join("archive")).unwrap();
    let (code, stdout, _) = run(work, &["status", "plan.yaml"]);
    assert_eq!(code, 1);
    assert_eq!(
        rows(&stdout),
        [
            ("last run".into(), "ok".into()),
            ("last success".into(), "ok".into()),
            ("newest set (archive)".into(), "MISSING".into()),
            ("newest set (local)".into(), "ok".into()),
            ("last passing drill".into(), "MISSING".into()),
        ]
    );

    // The archive gets a copy; a drill passes: healthy.
    let local = work.join("backups/site");
    let set = support::names(&local).pop().unwrap();
    std::fs::create_dir_all(work.join("archive/site")).unwrap();
    let copied = Command::new("cp")
        .arg("-r")
        .arg(local.join(&set))
        .arg(work.join("archive/site/"))
        .status()
        .unwrap();
    assert!(copied.success());
    let (code, stdout, stderr) = run(work, &["drill", "plan.yaml"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, _) = run(work, &["status", "plan.yaml"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.ends_with("healthy\n"), "{stdout}");
    assert!(stdout.contains("(limit 35d00h)"), "{stdout}");
}

#[test]
fn an_old_set_and_an_old_drill_are_overdue() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    plan(work, "  max_age: 30d\n");
    std::fs::create_dir_all(work.join("archive")).unwrap();
    // A set from 2025 in each storage, and a drill that passed 2025-03-01.
    for storage in ["backups", "archive"] {
        support::write_set(
            &work.join(storage),
            "site",
            "20250214T020000Z-1234abcd",
            &[("media.tar.zst", "media", b"x")],
        );
    }
    let drill = work.join("state/drills/20250301T040000Z-0000aaaa");
    std::fs::create_dir_all(&drill).unwrap();
    std::fs::write(
        drill.join("report.json"),
        serde_json::json!({
            "format": 1, "drill_id": "20250301T040000Z-0000aaaa", "plan": "site",
            "plan_file": "plan.yaml", "plan_digest": "00", "host": "h",
            "started_at": "2025-03-01T04:00:00Z", "finished_at": "2025-03-01T04:01:00Z",
            "storage": "local", "set": "20250214T020000Z-1234abcd",
            "set_started_at": "2025-02-14T02:00:00Z",
            "restore": { "measured_ms": 1000, "objective_ms": null, "within": null },
            "set_age": null, "checks": [], "result": "passed", "failure": null,
            "kept": [], "cleanup": []
        })
        .to_string(),
    )
    .unwrap();
    let (code, stdout, _) = run(work, &["status", "plan.yaml", "--json"]);
    assert_eq!(code, 1, "{stdout}");
    let status: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(status["healthy"], false);
    let findings: Vec<(String, String, String)> = status["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                format!(
                    "{}{}",
                    f["check"].as_str().unwrap(),
                    f["subject"]
                        .as_str()
                        .map(|s| format!(" {s}"))
                        .unwrap_or_default()
                ),
                f["health"].as_str().unwrap().to_owned(),
                f["limit_seconds"].to_string(),
            )
        })
        .collect();
    assert_eq!(
        findings,
        [
            ("last_run".into(), "missing".into(), "null".into()),
            ("last_success".into(), "missing".into(), "null".into()),
            (
                "newest_set archive".into(),
                "overdue".into(),
                "86400".into()
            ),
            ("newest_set local".into(), "overdue".into(), "86400".into()),
            (
                "last_drill".into(),
                "overdue".into(),
                (30 * 86400).to_string()
            ),
        ]
    );
}

/// A plan whose recovery plan was last reviewed on `last_review`, to be reviewed every six
/// months and rehearsed yearly, with a level 1 of one manual step.
fn upkeep_plan(work: &Path, last_review: &str) {
    plan(work, "");
    let path = work.join("plan.yaml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "  levels: {}\n",
        &format!(
            "  review: {{ every: 6mo, last: {last_review} }}
  training: {{ every: 1y }}
  levels:
    1:
      name: Tell the users
      steps:
        - {{ id: tell, manual: \"Tell the users the site is down\" }}
"
        ),
    );
    std::fs::write(&path, text).unwrap();
}

/// The text row of `label`, whole.
fn row<'a>(stdout: &'a str, label: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label} row in {stdout}"))
}

#[test]
fn an_overdue_review_fails_status_and_a_rehearsal_within_training_is_ok() {
    use chrono::{Months, Utc};
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let today = Utc::now().date_naive();
    let reviewed = today.checked_sub_months(Months::new(8)).unwrap();
    let due = reviewed.checked_add_months(Months::new(6)).unwrap();
    let late = (today - due).num_days();
    upkeep_plan(work, &reviewed.to_string());
    let (code, stdout, stderr) = run(work, &["execute", "plan.yaml"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    std::fs::create_dir_all(work.join("archive")).unwrap();

    let (code, stdout, _) = run(work, &["status", "plan.yaml"]);
    assert_eq!(code, 1, "{stdout}");
    let found = rows(&stdout);
    assert_eq!(
        found[found.len() - 2..],
        [
            ("recovery plan review".into(), "OVERDUE".into()),
            ("recovery rehearsal".into(), "OVERDUE".into()),
        ],
        "{stdout}"
    );
    assert_eq!(
        row(&stdout, "recovery plan review"),
        format!(
            "  recovery plan review  OVERDUE  \
             last reviewed {reviewed}, every 6mo: due {due}, {late} days ago"
        ),
    );
    assert_eq!(
        row(&stdout, "recovery rehearsal"),
        "  recovery rehearsal    OVERDUE  \
         no rehearsal recorded; training every 1y: run `planrun recover --level N --rehearse`",
    );

    // The team rehearses level 1: its incident record is what status reads.
    let (code, stdout, stderr) = run(
        work,
        &["recover", "--level", "1", "plan.yaml", "--rehearse"],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let next = today.checked_add_months(Months::new(12)).unwrap();
    let (code, stdout, _) = run(work, &["status", "plan.yaml"]);
    assert_eq!(code, 1, "the review is still overdue: {stdout}");
    let found = rows(&stdout);
    assert_eq!(
        found[found.len() - 1],
        ("recovery rehearsal".into(), "ok".into()),
        "{stdout}"
    );
    assert_eq!(
        row(&stdout, "recovery rehearsal"),
        format!(
            "  recovery rehearsal    ok       \
             last rehearsal {today} (level 1, closed), every 1y: next due {next}"
        ),
    );

    // Reviewed today: nothing about the recovery plan needs attention any more.
    upkeep_plan(work, &today.to_string());
    let (_, stdout, _) = run(work, &["status", "plan.yaml"]);
    assert_eq!(
        rows(&stdout)[5..],
        [
            ("recovery plan review".into(), "ok".into()),
            ("recovery rehearsal".into(), "ok".into()),
        ],
        "{stdout}"
    );
}

/// A night that backed up only some sources is not a healthy night: the partial run is
/// FAILED and no storage's newest set counts unless it holds every source, so a source
/// without a backup never hides behind a fresh set of the others.
#[test]
fn a_partial_night_is_not_healthy() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    std::fs::create_dir_all(work.join("media")).unwrap();
    std::fs::write(work.join("media/a.txt"), b"a\n").unwrap();
    let path = work.join("plan.yaml");
    std::fs::write(
        &path,
        format!(
            "version: 1
name: site
sources:
  media: {{ directory: {{ path: {dir}/media }} }}
  gone: {{ directory: {{ path: {dir}/gone }} }}
storage:
  local: {{ local: {{ path: {dir}/backups }} }}
steps:
  - {{ id: media, backup: media }}
  - {{ id: gone, backup: gone, on_failure: warn }}
recovery:
  objectives: {{ rpo: 24h }}
  levels: {{}}
",
            dir = work.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, _, stderr) = run(work, &["execute", "plan.yaml"]);
    assert_eq!(code, 3, "{stderr}");
    let (code, stdout, _) = run(work, &["status", "plan.yaml"]);
    assert_eq!(code, 1, "{stdout}");
    let found = rows(&stdout);
    assert_eq!(found[0], ("last run".into(), "FAILED".into()), "{stdout}");
    assert_eq!(
        found[2],
        ("newest set (local)".into(), "MISSING".into()),
        "{stdout}"
    );
    assert!(
        stdout.contains("no restorable set holds every source"),
        "{stdout}"
    );
}
