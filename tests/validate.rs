//! `planrun validate`: each layer (YAML, includes, schema, meaning, templates, advice) against
//! plans under tests/plans, comparing the exact output with the reviewed `.expected` file
//! beside each plan, and the exit code.

use std::path::Path;

use assert_cmd::Command;

fn planrun() -> Command {
    Command::cargo_bin("planrun").unwrap()
}

/// Runs `planrun validate PLAN` and compares stdout with `PLAN.expected`.
fn check(plan: &str, code: i32) {
    let expected_path = Path::new(plan).with_extension("expected");
    let expected = std::fs::read_to_string(&expected_path)
        .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
    let output = planrun().args(["validate", plan]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout, expected,
        "output of `planrun validate {plan}` changed"
    );
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit code of `planrun validate {plan}`"
    );
}

#[test]
fn yaml_syntax_error_shows_line_and_caret() {
    check("tests/plans/yaml-syntax.yaml", 2);
}

#[test]
fn yaml_duplicate_keys_are_errors() {
    check("tests/plans/yaml-duplicate.yaml", 2);
}

#[test]
fn yaml_tabs_are_named() {
    check("tests/plans/yaml-tab.yaml", 2);
}

#[test]
fn yaml_empty_file_is_named() {
    check("tests/plans/yaml-empty.yaml", 2);
}

#[test]
fn yaml_non_utf8_is_named_with_its_position() {
    check("tests/plans/yaml-latin1.yaml", 2);
}

#[test]
fn yaml_alias_bomb_is_refused() {
    check("tests/plans/yaml-bomb.yaml", 2);
}

#[test]
fn alias_bomb_is_refused_within_bounded_memory() {
    // 9^9 expansions would need gigabytes; under a 256 MiB address-space limit planrun must
    // still answer with the diagnostic (a crash would give no such line).
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -v 262144; exec {} validate tests/plans/yaml-bomb.yaml",
            env!("CARGO_BIN_EXE_planrun")
        ))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stdout).contains("looks like an alias bomb"));
}

#[test]
fn missing_plan_file_is_named() {
    planrun()
        .args(["validate", "tests/plans/nope.yaml"])
        .assert()
        .code(2)
        .stdout(
            "tests/plans/nope.yaml: error: cannot read tests/plans/nope.yaml: no such file or directory\n\
             tests/plans/nope.yaml: invalid (1 error)\n",
        );
}

#[test]
fn schema_reports_every_violation_with_paths_and_suggestions() {
    check("tests/plans/schema-errors.yaml", 2);
}

#[test]
fn meaning_checks_references_ids_levels_cron_zones_retention_and_drills() {
    check("tests/plans/meaning-errors.yaml", 2);
}

#[test]
fn dependency_cycles_are_named() {
    check("tests/plans/meaning-cycle.yaml", 2);
}

#[test]
fn templates_name_only_defined_variables_and_helpers() {
    check("tests/plans/template-errors.yaml", 2);
}

#[test]
fn advice_warns_but_exits_zero() {
    check("tests/plans/advice-warnings.yaml", 0);
}

#[test]
fn durations_and_calendar_spans_without_units_get_the_spelling_meant() {
    check("tests/plans/time-units.yaml", 2);
}

#[test]
fn prune_without_a_retention_policy_is_invalid() {
    check("tests/plans/prune-without-retention.yaml", 2);
}

#[test]
fn sources_never_backed_up_are_advice_and_weeks_are_a_calendar_unit() {
    check("tests/plans/unbacked-source.yaml", 0);
}

#[test]
fn include_cycles_name_the_chain() {
    check("tests/plans/include/cycle-a.yaml", 2);
}

#[test]
fn missing_includes_name_the_chain() {
    check("tests/plans/include/missing.yaml", 2);
}

#[test]
fn includes_refuse_duplicates_and_unshared_sections() {
    check("tests/plans/include/twice.yaml", 2);
}

#[test]
fn includes_merge_and_errors_point_into_the_included_file() {
    check("tests/plans/include/good.yaml", 0);
}

#[test]
fn several_plans_are_checked_and_one_invalid_fails_the_run() {
    let output = planrun()
        .args([
            "validate",
            "plans/nightly.yaml",
            "tests/plans/meaning-cycle.yaml",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("plans/nightly.yaml: valid\n"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("tests/plans/meaning-cycle.yaml: invalid (1 error)\n"),
        "{stdout}"
    );
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn json_format_lists_diagnostics_for_editors() {
    let output = planrun()
        .args([
            "validate",
            "--format",
            "json",
            "tests/plans/schema-errors.yaml",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["valid"], false);
    let file = &value["files"][0];
    assert_eq!(file["file"], "tests/plans/schema-errors.yaml");
    assert_eq!(file["errors"], 8);
    let timeout = file["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"] == "steps[1].timeout")
        .expect("a diagnostic for steps[1].timeout");
    assert_eq!(timeout["line"], 17);
    assert_eq!(timeout["column"], 14);
    assert_eq!(timeout["severity"], "error");
    assert_eq!(timeout["layer"], "schema");
    assert_eq!(
        timeout["message"],
        "`10x` is not a duration: unknown unit `x` (use ms, s, m, h, d or w)"
    );
    let typo = file["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["message"] == "unknown key `timout`")
        .unwrap();
    assert_eq!(typo["help"], "did you mean `timeout`?");
}

#[test]
fn shared_fragments_validate_on_their_own() {
    planrun()
        .args(["validate", "plans/common.yaml"])
        .assert()
        .code(0)
        .stdout("plans/common.yaml: valid (shared definitions for `include`)\n");
}

#[test]
fn usage_errors_exit_2() {
    planrun().args(["validate"]).assert().code(2);
    planrun().args(["frobnicate"]).assert().code(2);
}
