//! A backup step that does not run because a step it needs was skipped is never silent:
//! `planrun execute` reports it as skipped with the reason and a warning, the set it commits
//! (if another backup made one) records the source as missing, and the run exits 3.

mod support;

use support::{Env, Test};

/// Two directory sources; `data`'s backup needs `gate`, whose `when` renders `WHEN`.
fn plan(env: &Env, when: &str, media: bool) {
    std::fs::create_dir_all(env.path("data")).unwrap();
    std::fs::create_dir_all(env.path("media")).unwrap();
    std::fs::write(env.path("data/a.txt"), "a\n").unwrap();
    std::fs::write(env.path("media/m.txt"), "m\n").unwrap();
    let media_step = if media {
        "  - { id: media, backup: media }\n"
    } else {
        ""
    };
    env.plan(&format!(
        "version: 1\nname: skip\nvars: {{ ready: \"{when}\" }}\nsources:\n  \
         data: {{ directory: {{ path: DIR/data }} }}\n  media: {{ directory: {{ path: DIR/media }} }}\n\
         storage:\n  local: {{ local: {{ path: DIR/store }} }}\nsteps:\n  \
         - {{ id: gate, run: [\"true\"], when: \"{{{{vars.ready}}}}\" }}\n  \
         - {{ id: data, backup: data, needs: [gate] }}\n{media_step}"
    ));
}

#[test]
fn a_backup_skipped_with_the_step_it_needs_warns_makes_the_set_partial_and_exits_3() {
    let env = Env::new();
    plan(&env, "false", true);
    let ran = Test::in_env(&env)
        .args(["execute", "plan.yaml"])
        .status(3)
        .run();
    let stderr = env.filter(&ran.stderr);
    for line in [
        "gate   skipped    : `when` rendered `false`\n",
        "    data | warning: the backup of `data` did not run: it needs `gate`, which was skipped\n",
        "data   skipped    : needs `gate`, which was skipped\n",
        "planrun: set RUN is partial (without data): manifest written with 1 artifact (",
        "planrun: run partial in T (exit code 3)",
    ] {
        assert!(stderr.contains(line), "{line}\n{stderr}");
    }
    let sets = env.snapshots(&env.path("plan.yaml"), "local");
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert_eq!(sets[0]["sources"], serde_json::json!(["media"]), "{sets:?}");
    assert_eq!(
        sets[0]["missing_sources"],
        serde_json::json!(["data"]),
        "{sets:?}"
    );
    assert_eq!(env.record()["status"], "partial");
}

#[test]
fn a_night_whose_only_backup_was_skipped_exits_3_with_no_set() {
    let env = Env::new();
    plan(&env, "false", false);
    let ran = Test::in_env(&env)
        .args(["execute", "plan.yaml"])
        .status(3)
        .run();
    assert!(
        ran.stderr.contains(
            "warning: the backup of `data` did not run: it needs `gate`, which was skipped"
        ),
        "{}",
        ran.stderr
    );
    assert!(!env.path("store/skip").exists());
}

#[test]
fn a_backup_whose_needs_ran_commits_a_full_set_and_exits_0() {
    let env = Env::new();
    plan(&env, "true", true);
    Test::in_env(&env).args(["execute", "plan.yaml"]).run();
    let sets = env.snapshots(&env.path("plan.yaml"), "local");
    assert_eq!(
        sets[0]["missing_sources"],
        serde_json::json!([]),
        "{sets:?}"
    );
}
