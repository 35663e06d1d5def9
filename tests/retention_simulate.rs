//! `planrun retention simulate` driven through the real binary: the golden cases, exact output.

use assert_cmd::Command;

fn simulate(args: &[&str], input: &str) -> assert_cmd::assert::Assert {
    Command::cargo_bin("planrun")
        .unwrap()
        .args(["retention", "simulate"])
        .args(args)
        .write_stdin(input)
        .assert()
}

fn stdout_of(args: &[&str], input: &str) -> String {
    let output = simulate(args, input).success().get_output().stdout.clone();
    String::from_utf8(output).unwrap()
}

/// One line per day at 02:00 UTC, oldest first.
fn nightly(from: &str, to: &str) -> String {
    let start = chrono::NaiveDate::parse_from_str(from, "%Y-%m-%d").unwrap();
    let end = chrono::NaiveDate::parse_from_str(to, "%Y-%m-%d").unwrap();
    start
        .iter_days()
        .take_while(|d| *d <= end)
        .map(|d| format!("{d}T02:00:00Z\n"))
        .collect()
}

const GOLDEN_2: &str = "2025-03-03T10:00:00Z
2025-03-03T22:00:00Z
2025-03-04T10:00:00Z
2025-03-10T10:00:00Z
2025-03-12T09:00:00Z
2025-03-12T21:00:00Z
";

#[test]
fn golden_1_gfs_keeps_eleven() {
    let out = stdout_of(
        &[
            "--keep-daily",
            "7",
            "--keep-weekly",
            "4",
            "--keep-monthly",
            "3",
            "--keep-yearly",
            "2",
        ],
        &nightly("2024-12-01", "2025-02-20"),
    );
    let kept: Vec<&str> = out.lines().filter(|l| l.contains("  keep  ")).collect();
    assert_eq!(
        kept,
        [
            "2024-12-31T02:00:00Z  keep    monthly 2024-12, yearly 2024",
            "2025-01-31T02:00:00Z  keep    monthly 2025-01",
            "2025-02-02T02:00:00Z  keep    weekly 2025-W05",
            "2025-02-09T02:00:00Z  keep    weekly 2025-W06",
            "2025-02-14T02:00:00Z  keep    daily 2025-02-14",
            "2025-02-15T02:00:00Z  keep    daily 2025-02-15",
            "2025-02-16T02:00:00Z  keep    daily 2025-02-16, weekly 2025-W07",
            "2025-02-17T02:00:00Z  keep    daily 2025-02-17",
            "2025-02-18T02:00:00Z  keep    daily 2025-02-18",
            "2025-02-19T02:00:00Z  keep    daily 2025-02-19",
            "2025-02-20T02:00:00Z  keep    daily 2025-02-20, weekly 2025-W08, monthly 2025-02, yearly 2025",
        ]
    );
    assert!(
        out.starts_with("TIME                  ACTION  REASONS\n2024-12-01T02:00:00Z  remove\n")
    );
    assert!(out.ends_with("\n11 kept, 71 removed\n"), "{out}");
}

#[test]
fn golden_2_daily_three() {
    assert_eq!(
        stdout_of(&["--keep-daily", "3"], GOLDEN_2),
        "TIME                  ACTION  REASONS
2025-03-03T10:00:00Z  remove
2025-03-03T22:00:00Z  remove
2025-03-04T10:00:00Z  keep    daily 2025-03-04
2025-03-10T10:00:00Z  keep    daily 2025-03-10
2025-03-12T09:00:00Z  remove
2025-03-12T21:00:00Z  keep    daily 2025-03-12
3 kept, 3 removed
"
    );
}

#[test]
fn golden_2_with_last_two_as_json() {
    assert_eq!(
        stdout_of(
            &["--keep-daily", "3", "--keep-last", "2", "--json"],
            GOLDEN_2
        ),
        r#"[
  {"time":"2025-03-03T10:00:00Z","keep":false,"reasons":[]},
  {"time":"2025-03-03T22:00:00Z","keep":false,"reasons":[]},
  {"time":"2025-03-04T10:00:00Z","keep":true,"reasons":["daily 2025-03-04"]},
  {"time":"2025-03-10T10:00:00Z","keep":true,"reasons":["daily 2025-03-10"]},
  {"time":"2025-03-12T09:00:00Z","keep":true,"reasons":["last"]},
  {"time":"2025-03-12T21:00:00Z","keep":true,"reasons":["last","daily 2025-03-12"]}
]
"#
    );
}

#[test]
fn golden_2_within_nine_days_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("times.txt");
    std::fs::write(&file, GOLDEN_2).unwrap();
    let out = stdout_of(
        &[
            "--keep-within",
            "9d",
            "--json",
            "--from",
            file.to_str().unwrap(),
        ],
        "",
    );
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let keeps: Vec<bool> = rows.iter().map(|r| r["keep"].as_bool().unwrap()).collect();
    assert_eq!(keeps, [false, true, true, true, true, true]);
    assert_eq!(rows[1]["reasons"], serde_json::json!(["within 9d"]));
}

#[test]
fn golden_3_iso_weeks() {
    let input = "2025-12-20T12:00:00Z\n2025-12-27T12:00:00Z\n2025-12-28T12:00:00Z\n\
                 2025-12-29T12:00:00Z\n2025-12-31T12:00:00Z\n2026-01-03T12:00:00Z\n";
    assert_eq!(
        stdout_of(&["--keep-weekly", "2"], input),
        "TIME                  ACTION  REASONS
2025-12-20T12:00:00Z  remove
2025-12-27T12:00:00Z  remove
2025-12-28T12:00:00Z  keep    weekly 2025-W52
2025-12-29T12:00:00Z  remove
2025-12-31T12:00:00Z  remove
2026-01-03T12:00:00Z  keep    weekly 2026-W01
2 kept, 4 removed
"
    );
}

#[test]
fn timestamps_keep_their_written_form_and_zone_counts() {
    // 23:30 UTC on 30 March is already 31 March in Berlin.
    let input = "2024-03-30T23:30:00Z\n2024-03-30T23:30:00+01:00\n";
    assert_eq!(
        stdout_of(
            &["--keep-daily", "5", "--timezone", "Europe/Berlin", "--json"],
            input
        ),
        r#"[
  {"time":"2024-03-30T23:30:00Z","keep":true,"reasons":["daily 2024-03-31"]},
  {"time":"2024-03-30T23:30:00+01:00","keep":true,"reasons":["daily 2024-03-30"]}
]
"#
    );
}

#[test]
fn a_bad_timestamp_names_its_line() {
    simulate(
        &["--keep-daily", "3"],
        "2025-03-03T10:00:00Z\n\n2025-02-30T10:00:00Z\n",
    )
    .code(2)
    .stdout("")
    .stderr(
        "planrun: stdin:3: `2025-02-30T10:00:00Z` is not an RFC 3339 timestamp such as \
             2025-02-14T02:00:00Z (input is out of range)\n",
    );
}

#[test]
fn an_empty_policy_is_refused() {
    simulate(&[], GOLDEN_2).code(2).stdout("").stderr(
        "planrun: a retention policy that keeps nothing is refused: set at least one keep rule\n",
    );
}

#[test]
fn an_unknown_zone_is_refused() {
    simulate(&["--keep-daily", "1", "--timezone", "Europe/Atlantis"], GOLDEN_2)
        .code(2)
        .stderr("planrun: unknown time zone `Europe/Atlantis`: use an IANA name such as `UTC` or `Europe/Berlin`\n");
}

/// Months are `mo`; the old `m` keeps the very same sets, with a warning on stderr that gives
/// the new spelling. The span crosses the end of February, so calendar months are tested.
#[test]
fn keep_within_months_are_mo_and_the_old_m_keeps_the_same_sets_with_a_warning() {
    // Six calendar months back from 31 August 02:00 is 28 February 02:00 (not 3 March):
    // later than that is within.
    let input = "2025-02-27T02:00:00Z\n2025-02-28T02:00:00Z\n2025-02-28T03:00:00Z\n\
                 2025-03-01T02:00:00Z\n2025-08-31T02:00:00Z\n";
    let new = simulate(&["--keep-within", "6mo", "--json"], input).success();
    let new_out = String::from_utf8(new.get_output().stdout.clone()).unwrap();
    assert_eq!(String::from_utf8_lossy(&new.get_output().stderr), "");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&new_out).unwrap();
    let keeps: Vec<bool> = rows.iter().map(|r| r["keep"].as_bool().unwrap()).collect();
    assert_eq!(keeps, [false, false, true, true, true]);
    assert_eq!(rows[2]["reasons"], serde_json::json!(["within 6mo"]));

    let old = simulate(&["--keep-within", "6m", "--json"], input).success();
    assert_eq!(String::from_utf8_lossy(&old.get_output().stdout), new_out);
    assert_eq!(
        String::from_utf8_lossy(&old.get_output().stderr),
        "planrun: --keep-within: `m` means months here; write `6mo` (`m` is minutes in a duration)\n"
    );

    let out = stdout_of(&["--keep-within", "1y6mo"], "2025-08-31T02:00:00Z\n");
    assert!(out.contains("within 1y6mo"), "{out}");
}

#[test]
fn keep_within_refuses_minutes_as_a_span() {
    simulate(&["--keep-within", "90s"], "")
        .failure()
        .code(2)
        .stderr(predicates::str::contains(
            "(use y, mo, w, d or h, as in `30d`, `2w`, `6mo` or `1y`)",
        ));
}
