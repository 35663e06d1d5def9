//! `planrun schema` prints the committed schema, and every example plan starts with the
//! editor line pointing at it. That the committed schema matches the types is a unit test in
//! src/schema.rs.

use assert_cmd::Command;

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
