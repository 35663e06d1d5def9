//! `planrun plan`: the rendered plan in dependency stages, with templates expanded, script
//! values shown beside the references that carry them, and secrets never shown.

use assert_cmd::Command;

fn planrun() -> Command {
    let mut cmd = Command::cargo_bin("planrun").unwrap();
    cmd.env("PLANRUN_TEST_TOKEN", "s3cr3t-t0ken");
    cmd
}

#[test]
fn prints_stages_commands_limits_and_rollbacks() {
    let output = planrun()
        .args(["plan", "tests/plans/render.yaml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let body = stdout.split_once('\n').unwrap().1;
    assert!(
        stdout.starts_with("plan render (tests/plans/render.yaml, digest "),
        "{stdout}"
    );
    assert_eq!(
        body,
        r#"
steps: 3 in 3 stages (steps in one stage can run together)
  stage 1
    greet     shell   bash script, 2 lines
              | echo "${PLANRUN_V_1}"
              | curl -H @- https://example.com <<< "Authorization: Bearer ${PLANRUN_SECRET_TOKEN}"
              $PLANRUN_SECRET_TOKEN = ***
              $PLANRUN_V_1 = safe
  stage 2
    argv      run     printf $'%s\n' safe
              needs greet · timeout 1m30s · retries 2 (from 5s) · env TOKEN_COPY
              rollback:
                undo      run     echo undo
  stage 3
    later     run     true
              needs argv · on failure: warn
always:
    always.1  run     echo 'bye safe'
"#
    );
    assert!(!stdout.contains("s3cr3t"));
}

#[test]
fn var_overrides_are_references_in_scripts_and_kept_whole_in_argv() {
    let evil = r#"x"; touch /tmp/pwned; ""#;
    let output = planrun()
        .args(["plan", "--json", "tests/plans/render.yaml", "--var"])
        .arg(format!("label={evil}"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        plan["steps"][0]["action"]["script"],
        "echo \"${PLANRUN_V_1}\"\ncurl -H @- https://example.com <<< \"Authorization: Bearer ${PLANRUN_SECRET_TOKEN}\"\n"
    );
    // The value travels beside the script, never in it; the secret stays masked.
    assert_eq!(
        plan["steps"][0]["action"]["values"],
        serde_json::json!({"PLANRUN_V_1": evil, "PLANRUN_SECRET_TOKEN": "***"})
    );
    assert_eq!(plan["steps"][1]["action"]["args"][1], evil);
    assert_eq!(
        plan["stages"],
        serde_json::json!([["greet"], ["argv"], ["later"]])
    );
    // `when` compares with the original value, so the override makes `later` skip.
    assert_eq!(plan["steps"][2]["skip"], "`when` rendered `false`");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("s3cr3t"));
}

#[test]
fn unknown_var_override_is_refused() {
    planrun()
        .args(["plan", "tests/plans/render.yaml", "--var", "lable=x"])
        .assert()
        .code(2)
        .stderr("tests/plans/render.yaml: error: --var lable: the plan has no variable `lable` (did you mean `label`?)\n");
}

#[test]
fn malformed_var_is_a_usage_error() {
    planrun()
        .args(["plan", "tests/plans/render.yaml", "--var", "novalue"])
        .assert()
        .code(2);
}

#[test]
fn invalid_plan_is_refused_with_its_diagnostics() {
    planrun()
        .args(["plan", "tests/plans/meaning-cycle.yaml"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "dependency cycle: dump → upload → compress → dump",
        ));
}
