//! The committed schema matches the types, `planrun schema` prints it, and every example plan
//! starts with the editor line pointing at it.

use assert_cmd::Command;

#[test]
fn committed_schema_matches_the_types() {
    let committed = std::fs::read_to_string("schemas/plan.schema.json").unwrap();
    let generated = planrun::schema::schema_json();
    assert!(
        committed == generated,
        "schemas/plan.schema.json is out of date: run `cargo run -- schema > schemas/plan.schema.json`"
    );
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let committed = std::fs::read_to_string("schemas/plan.schema.json").unwrap();
    Command::cargo_bin("planrun")
        .unwrap()
        .arg("schema")
        .assert()
        .success()
        .stdout(committed);
}

#[test]
fn every_example_plan_names_the_schema_and_validates() {
    let mut plans: Vec<_> = std::fs::read_dir("plans")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    plans.sort();
    assert!(
        plans.len() >= 3,
        "plans/ should hold nightly, demo and common"
    );
    for plan in &plans {
        let text = std::fs::read_to_string(plan).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schemas/plan.schema.json\n"),
            "{} does not start with the schema line",
            plan.display()
        );
    }
    Command::cargo_bin("planrun")
        .unwrap()
        .arg("validate")
        .args(&plans)
        .assert()
        .code(0);
}
