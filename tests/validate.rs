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
fn a_unit_written_twice_is_refused_with_the_sum_as_hint() {
    check("tests/plans/duration-repeated.yaml", 2);
}

#[test]
fn each_duration_has_one_spelling_and_the_error_gives_it() {
    check("tests/plans/duration-spelling.yaml", 2);
}

#[test]
fn values_the_run_would_refuse_are_refused_by_validate() {
    check("tests/plans/run-time-refusals.yaml", 2);
}

#[test]
fn a_backup_that_needs_a_conditional_step_is_advice() {
    check("tests/plans/backup-needs-conditional.yaml", 0);
}

#[test]
fn a_backup_in_always_is_refused() {
    check("tests/plans/backup-in-always.yaml", 2);
}

#[test]
fn only_unguarded_backups_in_steps_count_as_backing_a_source_up() {
    check("tests/plans/backup-only-conditionally.yaml", 0);
}

#[test]
fn a_templated_files_path_with_dot_dot_is_refused_once_rendered() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        "version: 1\nname: crm\nvars: { app: /srv/crm/../other }\nsources:\n  config: { files: [\"{{vars.app}}/.env\"] }\n\
         storage:\n  local: { local: { path: /var/backups } }\nsteps:\n  - { id: config, backup: config }\n",
    )
    .unwrap();
    let p = plan.display();
    // The template is plain text to `validate`; the rendered path is refused before any step.
    let output = planrun().arg("plan").arg(&plan).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "{p}:5:21: error: sources.config.files[0]: `/srv/crm/../other/.env` contains `..`, which the backup refuses: below a symbolic link `..` is not the folder above\n  \
             |\n\
             5 |   config: {{ files: [\"{{{{vars.app}}}}/.env\"] }}\n  \
             |                     ^\n  \
             = help: write the real path, as `realpath -m /srv/crm/../other/.env` prints it\n"
        )
    );
    assert_eq!(output.status.code(), Some(2));
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

/// Loose permissions and unbounded input: the files that decide what planrun runs.
mod trust {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::process::Stdio;

    use super::planrun;

    const PLAN: &str = "version: 1\nname: crm\nsteps:\n  - { id: a, run: [\"true\"] }\n";

    /// The fixes name root as the trusted owner; as another user they name that user.
    fn as_root() -> bool {
        if nix::unistd::geteuid().is_root() {
            true
        } else {
            eprintln!("skipped: permission refusals are checked as root, as CI runs");
            false
        }
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn validate(path: &Path) -> (String, Option<i32>) {
        let output = planrun().arg("validate").arg(path).output().unwrap();
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            output.status.code(),
        )
    }

    const RUN_AS_ROOT: &str =
        "anyone who can change a plan can make planrun run their commands as root";

    #[test]
    fn a_group_writable_plan_is_refused_with_the_chmod_that_fixes_it() {
        if !as_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join("plan.yaml");
        std::fs::write(&plan, PLAN).unwrap();
        chmod(&plan, 0o664);
        let p = plan.display();
        assert_eq!(
            validate(&plan),
            (
                format!(
                    "{p}: error: refusing the plan {p}: it is writable by group (mode 0664)\n  \
                     = help: run `chmod go-w {p}`; {RUN_AS_ROOT}\n{p}: invalid (1 error)\n"
                ),
                Some(2)
            )
        );
        // The same refusal stops a run before any step.
        let output = planrun()
            .arg("execute")
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg(&plan)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&output.stderr).contains("refusing the plan"));
        chmod(&plan, 0o644);
        assert_eq!(validate(&plan), (format!("{p}: valid\n"), Some(0)));
    }

    #[test]
    fn a_plan_owned_by_another_user_is_refused_with_chown() {
        if !as_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join("plan.yaml");
        std::fs::write(&plan, PLAN).unwrap();
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        std::os::unix::fs::chown(&plan, Some(nobody.uid.as_raw()), None).unwrap();
        let p = plan.display();
        assert_eq!(
            validate(&plan),
            (
                format!(
                    "{p}: error: refusing the plan {p}: it is owned by `nobody` (uid {}), not by root\n  \
                     = help: run `chown root {p}`; {RUN_AS_ROOT}\n{p}: invalid (1 error)\n",
                    nobody.uid
                ),
                Some(2)
            )
        );
    }

    #[test]
    fn a_plan_in_a_writable_folder_is_refused() {
        if !as_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("plans");
        std::fs::create_dir(&folder).unwrap();
        let plan = folder.join("plan.yaml");
        std::fs::write(&plan, PLAN).unwrap();
        chmod(&folder, 0o777);
        let (p, f) = (plan.display(), folder.display());
        assert_eq!(
            validate(&plan),
            (
                format!(
                    "{p}: error: refusing the plan {p}: its folder {f} is writable by group and others (mode 0777)\n  \
                     = help: run `chmod go-w {f}`; {RUN_AS_ROOT}\n{p}: invalid (1 error)\n"
                ),
                Some(2)
            )
        );
        // The sticky bit (as on /tmp) keeps others from replacing the file: allowed.
        chmod(&folder, 0o1777);
        assert_eq!(validate(&plan).1, Some(0));
    }

    #[test]
    fn a_writable_included_file_is_refused_at_the_include() {
        if !as_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join("plan.yaml");
        std::fs::write(&plan, format!("include: [shared.yaml]\n{PLAN}")).unwrap();
        let shared = dir.path().join("shared.yaml");
        std::fs::write(&shared, "vars: { app: /srv/crm }\n").unwrap();
        chmod(&shared, 0o646);
        let (p, s) = (plan.display(), shared.display());
        assert_eq!(
            validate(&plan),
            (
                format!(
                    "{p}:1:11: error: refusing the included file {s}: it is writable by others (mode 0646)\n  \
                     |\n\
                     1 | include: [shared.yaml]\n  \
                     |           ^\n  \
                     = help: run `chmod go-w {s}`; {RUN_AS_ROOT}\n{p}: invalid (1 error)\n"
                ),
                Some(2)
            )
        );
    }

    #[test]
    fn a_secret_file_readable_by_others_is_refused_like_an_ssh_key() {
        if !as_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s3.secret");
        std::fs::write(&secret, "hunter2\n").unwrap();
        chmod(&secret, 0o644);
        let plan = dir.path().join("plan.yaml");
        let s = secret.display();
        std::fs::write(
            &plan,
            format!(
                "version: 1\nname: crm\nsecrets:\n  key: {{ file: {s} }}\nsteps:\n  - {{ id: a, shell: \"test -n '{{{{secrets.key}}}}'\" }}\n"
            ),
        )
        .unwrap();
        let p = plan.display();
        let line = format!("  key: {{ file: {s} }}");
        assert_eq!(
            validate(&plan),
            (
                format!(
                    "{p}:4:16: error: secrets.key.file: refusing the secret file {s}: it is readable by group and others (mode 0644)\n  \
                     |\n\
                     4 | {line}\n  \
                     |                ^\n  \
                     = help: run `chmod go-rw {s}`; a secret file must be readable and writable only by its owner, as ssh requires of a private key\n\
                     {p}: invalid (1 error)\n"
                ),
                Some(2)
            )
        );
        let execute = || {
            planrun()
                .arg("execute")
                .arg("--state-dir")
                .arg(dir.path().join("state"))
                .arg(&plan)
                .output()
                .unwrap()
        };
        assert_eq!(execute().status.code(), Some(2));
        chmod(&secret, 0o600);
        assert_eq!(validate(&plan), (format!("{p}: valid\n"), Some(0)));
        assert_eq!(execute().status.code(), Some(0));
    }

    /// Runs `planrun validate PATH` under a 256 MiB address-space limit, so reading without a
    /// bound fails the test instead of eating the machine.
    fn validate_in_256_mib(path: &str) -> (String, Option<i32>) {
        let output = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "ulimit -v 262144; exec {} validate {path}",
                env!("CARGO_BIN_EXE_planrun")
            ))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            output.status.code(),
        )
    }

    #[test]
    fn dev_zero_is_refused_as_a_device() {
        assert_eq!(
            validate_in_256_mib("/dev/zero"),
            (
                "/dev/zero: error: refusing the plan /dev/zero: it is a character device, not a file\n\
                 /dev/zero: invalid (1 error)\n"
                    .into(),
                Some(2)
            )
        );
    }

    #[test]
    fn an_endless_pipe_is_read_only_up_to_the_plan_limit() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("plan.yaml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Held open for writing by the test, so planrun sees a writer however late `cat`
        // opens the pipe (a pipe with no writer reads as empty).
        let _held = hold_open(&fifo);
        let mut writer = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("exec cat /dev/zero > {}", fifo.display()))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let f = fifo.display().to_string();
        let result = validate_in_256_mib(&f);
        // The writer gets SIGPIPE once planrun stops reading; kill it in case planrun never opened.
        writer.kill().ok();
        writer.wait().unwrap();
        assert_eq!(
            result,
            (
                format!(
                    "{f}: error: {f} is larger than 4 MiB, the limit for a plan\n  \
                     = help: plans are a few kilobytes; is this the right file?\n{f}: invalid (1 error)\n"
                ),
                Some(2)
            )
        );
    }

    fn mkfifo(path: &Path) {
        nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }

    /// Opens a FIFO for reading and writing, which never blocks: the pipe then has a writer
    /// that never writes, the way a stalled generator holds it.
    fn hold_open(path: &Path) -> std::fs::File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap()
    }

    /// Runs planrun with `args` under `timeout 60`, so a hang fails the test (exit 124)
    /// instead of hanging it.
    fn bounded(args: &[&std::ffi::OsStr]) -> (String, String, Option<i32>) {
        let output = std::process::Command::new("timeout")
            .arg("60")
            .arg(env!("CARGO_BIN_EXE_planrun"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
            output.status.code(),
        )
    }

    #[test]
    fn a_fifo_with_no_writer_reads_as_an_empty_plan() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("plan.yaml");
        mkfifo(&fifo);
        let f = fifo.display();
        assert_eq!(
            bounded(&["validate".as_ref(), fifo.as_os_str()]),
            (
                format!(
                    "{f}:1:1: error: the plan is empty: it needs at least `version` and `name`\n\
                     {f}: invalid (1 error)\n"
                ),
                String::new(),
                Some(2)
            )
        );
    }

    #[test]
    fn a_fifo_as_an_included_file_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join("plan.yaml");
        std::fs::write(&plan, format!("include: [shared.yaml]\n{PLAN}")).unwrap();
        mkfifo(&dir.path().join("shared.yaml"));
        let (stdout, _, code) = bounded(&["validate".as_ref(), plan.as_os_str()]);
        assert_eq!(code, Some(2), "{stdout}");
        assert!(
            stdout.contains("shared.yaml:1:1: error: the plan is empty"),
            "{stdout}"
        );
    }

    #[test]
    fn a_fifo_as_a_secret_file_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s3.secret");
        mkfifo(&secret);
        let plan = dir.path().join("plan.yaml");
        let s = secret.display();
        std::fs::write(
            &plan,
            format!(
                "version: 1\nname: crm\nsecrets:\n  key: {{ file: {s} }}\nsteps:\n  - {{ id: a, shell: \"test -n '{{{{secrets.key}}}}'\" }}\n"
            ),
        )
        .unwrap();
        let state = dir.path().join("state");
        let (_, stderr, code) = bounded(&[
            "execute".as_ref(),
            "--state-dir".as_ref(),
            state.as_os_str(),
            plan.as_os_str(),
        ]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("secret `key`: {s} is empty")),
            "{stderr}"
        );
    }

    #[test]
    fn a_stalled_writer_times_out_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("plan.yaml");
        mkfifo(&fifo);
        let _held = hold_open(&fifo);
        let f = fifo.display();
        let started = std::time::Instant::now();
        assert_eq!(
            bounded(&["validate".as_ref(), fifo.as_os_str()]),
            (
                format!(
                    "{f}: error: gave up reading the plan {f} after 10s: whatever writes it sent no end of file\n  \
                     = help: a pipe's writer must finish and close it; check the program that writes it\n\
                     {f}: invalid (1 error)\n"
                ),
                String::new(),
                Some(2)
            )
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
    }

    #[test]
    fn a_live_writer_through_a_pipe_still_works() {
        // `<(…)` is an anonymous pipe whose writer starts late and takes its time.
        let output = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "timeout 60 {} validate <(sleep 1; printf %s \"$PLAN\")",
                env!("CARGO_BIN_EXE_planrun"),
            ))
            .env("PLAN", PLAN)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.starts_with("/dev/fd/") && stdout.ends_with(": valid\n"),
            "{stdout}"
        );
        assert_eq!(output.status.code(), Some(0), "{stdout}");
    }

    #[test]
    fn a_symlink_owned_by_another_user_is_refused_on_any_component() {
        if !as_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let plan = real.join("plan.yaml");
        std::fs::write(&plan, PLAN).unwrap();
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        let p = plan.display();

        // The last component: a link to a good root-owned plan, owned by `nobody`.
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&plan, &link).unwrap();
        assert_eq!(validate(&link).1, Some(0), "a root-owned link is fine");
        std::os::unix::fs::lchown(&link, Some(nobody.uid.as_raw()), None).unwrap();
        let l = link.display();
        assert_eq!(
            validate(&link),
            (
                format!(
                    "{l}: error: refusing the plan {l}: the symbolic link {l} on the way to it is owned by `nobody` (uid {}), not by root: that account can point it at any file\n  \
                     = help: run `ln -sfn {p} {l}`, or name the real path {p}; {RUN_AS_ROOT}\n{l}: invalid (1 error)\n",
                    nobody.uid
                ),
                Some(2)
            )
        );

        // A folder on the way: `dir/via/plan.yaml` with `via -> real`, a relative link.
        let via = dir.path().join("via");
        std::os::unix::fs::symlink("real", &via).unwrap();
        let through = via.join("plan.yaml");
        assert_eq!(validate(&through).1, Some(0));
        std::os::unix::fs::lchown(&via, Some(nobody.uid.as_raw()), None).unwrap();
        let (t, v) = (through.display(), via.display());
        assert_eq!(
            validate(&through),
            (
                format!(
                    "{t}: error: refusing the plan {t}: the symbolic link {v} on the way to it is owned by `nobody` (uid {}), not by root: that account can point it at any file\n  \
                     = help: run `ln -sfn real {v}`, or name the real path {p}; {RUN_AS_ROOT}\n{t}: invalid (1 error)\n",
                    nobody.uid
                ),
                Some(2)
            )
        );

        // A secret reached through such a link is refused too, at validate and at run time.
        let secret = real.join("s3.secret");
        std::fs::write(&secret, "hunter2\n").unwrap();
        chmod(&secret, 0o600);
        let secret_link = dir.path().join("s3.link");
        std::os::unix::fs::symlink(&secret, &secret_link).unwrap();
        std::os::unix::fs::lchown(&secret_link, Some(nobody.uid.as_raw()), None).unwrap();
        let secret_plan = real.join("secret-plan.yaml");
        std::fs::write(
            &secret_plan,
            format!(
                "version: 1\nname: crm\nsecrets:\n  key: {{ file: {} }}\nsteps:\n  - {{ id: a, shell: \"test -n '{{{{secrets.key}}}}'\" }}\n",
                secret_link.display()
            ),
        )
        .unwrap();
        let (stdout, code) = validate(&secret_plan);
        assert_eq!(code, Some(2), "{stdout}");
        assert!(
            stdout.contains(&format!(
                "refusing the secret file {}: the symbolic link {} on the way to it is owned by `nobody`",
                secret_link.display(),
                secret_link.display()
            )),
            "{stdout}"
        );
    }

    #[test]
    fn a_huge_file_is_read_only_up_to_the_plan_limit() {
        let dir = tempfile::tempdir().unwrap();
        let huge = dir.path().join("plan.yaml");
        // Sparse: 5 GiB that costs no disk, but all of it would have been read into memory.
        std::fs::File::create(&huge)
            .unwrap()
            .set_len(5 << 30)
            .unwrap();
        let h = huge.display().to_string();
        assert_eq!(
            validate_in_256_mib(&h),
            (
                format!(
                    "{h}: error: {h} is larger than 4 MiB, the limit for a plan\n  \
                     = help: plans are a few kilobytes; is this the right file?\n{h}: invalid (1 error)\n"
                ),
                Some(2)
            )
        );
    }
}

#[test]
fn deprecated_spellings_warn_with_the_new_spelling_and_exit_zero() {
    check("tests/plans/deprecated-spellings.yaml", 0);
}

#[test]
fn the_new_spellings_draw_no_deprecation_warning() {
    check("tests/plans/new-spellings.yaml", 0);
    let output = planrun()
        .args(["validate", "--json", "tests/plans/new-spellings.yaml"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let layers: Vec<&str> = json["files"][0]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["layer"].as_str().unwrap())
        .collect();
    assert!(!layers.contains(&"deprecation"), "{layers:?}");
    let output = planrun()
        .args([
            "validate",
            "--json",
            "tests/plans/deprecated-spellings.yaml",
        ])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let deprecations = json["files"][0]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["layer"] == "deprecation" && d["severity"] == "warning")
        .count();
    assert_eq!(deprecations, 6);
}

#[test]
fn a_restore_step_with_both_set_and_from_is_refused() {
    check("tests/plans/restore-set-and-from.yaml", 2);
}

#[test]
fn months_in_a_duration_are_refused_with_the_reason() {
    check("tests/plans/months-in-a-duration.yaml", 2);
}
