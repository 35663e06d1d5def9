//! Template values never become shell code, end to end: runs of the `planrun` binary on plans
//! whose values try to reach a shell. The matrix of bash contexts × hostile values and the
//! property test call the renderer directly, so they live beside it in
//! src/shell_script/injection_tests.rs.

use std::path::Path;

fn write_plan(dir: &Path, shell: &str, var: &str) -> std::path::PathBuf {
    let plan = dir.join("plan.yaml");
    let yaml = format!(
        "version: 1\nname: inject\nvars:\n  v: {}\nsteps:\n  - id: s\n    shell: |\n{}\n",
        serde_json::to_string(var).unwrap(),
        shell
            .lines()
            .map(|l| format!("      {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    std::fs::write(&plan, yaml).unwrap();
    plan
}

fn planrun(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("planrun").unwrap();
    cmd.current_dir(dir);
    cmd
}

#[test]
fn execute_refuses_a_value_that_is_not_an_integer_in_arithmetic() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), "echo start\necho $(( {{vars.v}} + 1 ))", "1");
    let output = planrun(dir.path())
        .args(["execute"])
        .arg(&plan)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(["--var", "v=a[$(touch PWN)]"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "script line 2, column 10: `{{vars.v}}` (`'a[$(touch PWN)]'`): the value stands in bash arithmetic"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("plain integer"), "{stderr}");
    assert!(!dir.path().join("PWN").exists());
    // The plan's own value is an integer, so `validate` accepts it and `execute` runs it.
    planrun(dir.path())
        .arg("validate")
        .arg(&plan)
        .assert()
        .code(0);
}

#[test]
fn validate_refuses_the_plan_default_in_a_name_context() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), "printf -v {{vars.v}} '%s' x", "a[$(touch PWN)]");
    let output = planrun(dir.path())
        .arg("validate")
        .arg(&plan)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("script line 1, column 11: `{{vars.v}}`"),
        "{stdout}"
    );
    assert!(stdout.contains("plain identifier"), "{stdout}");
}

#[test]
fn execute_runs_a_hostile_value_as_data() {
    let dir = tempfile::tempdir().unwrap();
    // Command-substitution syntax is refused by its shape (see the tests above); everything
    // else a value can hold arrives as data.
    let evil = "x\"; touch PWN; echo \"${HOME} && touch PWN | *'\nEOF";
    let plan = write_plan(
        dir.path(),
        "printf '<%s>\\n' {{vars.v}} \"{{vars.v}}\" '{{vars.v}}' > out.txt\ncat >> out.txt <<'EOF'\n{{vars.v}}\nEOF",
        "safe",
    );
    let output = planrun(dir.path())
        .args(["execute"])
        .arg(&plan)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--var")
        .arg(format!("v={evil}"))
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!dir.path().join("PWN").exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        format!("<{evil}>\n<{evil}>\n<{evil}>\n{evil}\n")
    );
}

/// Writes a plan with `vars.v` = `default` and the given steps (YAML, indented as list items).
fn write_steps(dir: &Path, default: &str, steps: &str) -> std::path::PathBuf {
    let plan = dir.join("plan.yaml");
    let yaml = format!(
        "version: 1\nname: inject\nvars:\n  v: {}\nsteps:\n{steps}",
        serde_json::to_string(default).unwrap(),
    );
    std::fs::write(&plan, yaml).unwrap();
    plan
}

/// Runs `execute` with `--var v=VALUE`; returns exit code and stderr.
fn execute_with(dir: &Path, plan: &Path, value: &str) -> (Option<i32>, String) {
    let output = planrun(dir)
        .arg("execute")
        .arg(plan)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--var")
        .arg(format!("v={value}"))
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn validate(dir: &Path, plan: &Path) -> (Option<i32>, String) {
    let output = planrun(dir).arg("validate").arg(plan).output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

#[test]
fn execute_refuses_a_value_a_function_evaluates_in_arithmetic() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), "f() { echo $(( $1 )); }; f {{vars.v}}", "1");
    let (code, stderr) = execute_with(dir.path(), &plan, "a[$(touch PWN)]=1");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "script line 1, column 28: `{{vars.v}}` (`'a[$(touch PWN)]=1'`): the value holds `$(`"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("pass it as a `run:` argument, or as a file"),
        "{stderr}"
    );
    assert!(!dir.path().join("PWN").exists());
}

#[test]
fn execute_refuses_an_octal_escape_that_prompt_expansion_would_decode() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), "y={{vars.v}}; echo \"${y@P}\"", "x");
    let (code, stderr) = execute_with(dir.path(), &plan, "\\044(touch PWN)");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("the value holds a backslash escape"),
        "{stderr}"
    );
    assert!(!dir.path().join("PWN").exists());
}

#[test]
fn execute_refuses_an_env_value_a_shell_evaluates_in_arithmetic() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_steps(
        dir.path(),
        "1",
        "  - id: s\n    env:\n      N: \"{{vars.v}}\"\n    shell: echo $(( N ))\n",
    );
    let (code, stderr) = execute_with(dir.path(), &plan, "a[$(touch PWN)]");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("steps[0].env.N"), "{stderr}");
    assert!(
        stderr.contains("`{{vars.v}}` (`'a[$(touch PWN)]'`): the value holds `$(`"),
        "{stderr}"
    );
    assert!(!dir.path().join("PWN").exists());
}

#[test]
fn validate_refuses_an_env_key_that_defines_a_bash_function() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_steps(
        dir.path(),
        "1",
        "  - id: s\n    env:\n      \"BASH_FUNC_echo%%\": \"() { touch PWN; }\"\n    shell: echo hi\n",
    );
    let (code, out) = validate(dir.path(), &plan);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("env `BASH_FUNC_echo%%`: `BASH_FUNC_echo%%` is not a plain variable name"),
        "{out}"
    );
    let (code, stderr) = execute_with(dir.path(), &plan, "1");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(!dir.path().join("PWN").exists());
}

#[test]
fn validate_refuses_a_templated_startup_variable() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_steps(
        dir.path(),
        "/tmp/x",
        "  - id: s\n    env:\n      BASH_ENV: \"{{vars.v}}\"\n    shell: echo hi\n",
    );
    let (code, out) = validate(dir.path(), &plan);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("`BASH_ENV` is read as code or a hook"),
        "{out}"
    );
}

#[test]
fn a_run_step_refuses_a_template_as_a_shell_script() {
    let dir = tempfile::tempdir().unwrap();
    for argv in [
        "[bash, -c, \"{{vars.v}}\"]",
        "[sh, -c, \"echo {{vars.v}}\"]",
        "[env, bash, -c, \"{{vars.v}}\"]",
    ] {
        let plan = write_steps(
            dir.path(),
            "touch PWN",
            &format!("  - id: s\n    run: {argv}\n"),
        );
        let (code, out) = validate(dir.path(), &plan);
        assert_eq!(code, Some(2), "{argv}: {out}");
        assert!(out.contains("steps[0].run["), "{argv}: {out}");
        assert!(out.contains("takes commands"), "{argv}: {out}");
        let (code, stderr) = execute_with(dir.path(), &plan, "touch PWN");
        assert_eq!(code, Some(2), "{argv}: {stderr}");
        assert!(!dir.path().join("PWN").exists(), "{argv}");
    }
    // The value as an argument after the script is data.
    let plan = write_steps(
        dir.path(),
        "x",
        "  - id: s\n    run: [bash, -c, 'printf \"<%s>\" \"$1\" > out.txt', _, \"{{vars.v}}\"]\n",
    );
    let (code, stderr) = execute_with(dir.path(), &plan, "$(touch PWN); `x`");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "<$(touch PWN); `x`>"
    );
    assert!(!dir.path().join("PWN").exists());
}

#[test]
fn validate_refuses_a_plan_default_a_function_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        "f() { echo $(( $1 )); }; f {{vars.v}}",
        "a[$(touch PWN)]=1",
    );
    let (code, out) = validate(dir.path(), &plan);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("script line 1, column 28: `{{vars.v}}`"),
        "{out}"
    );
    assert!(out.contains("the value holds `$(`"), "{out}");
    assert!(!dir.path().join("PWN").exists());
}

#[test]
fn ordinary_values_reach_scripts_and_env_intact() {
    let dir = tempfile::tempdir().unwrap();
    let value = "/srv/my files/it's \"q\"; a && b | c * $HOME\nline two \u{e9}\u{4e2d}";
    let plan = write_steps(
        dir.path(),
        "x",
        "  - id: s\n    env:\n      V: \"{{vars.v}}\"\n    shell: |\n      printf '%s|%s' {{vars.v}} \"$V\" > out.txt\n",
    );
    let (code, stderr) = execute_with(dir.path(), &plan, value);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        format!("{value}|{value}")
    );
}

#[test]
fn a_value_is_never_a_command_name() {
    // Found by the property test: an expansion in the command name splits around the value,
    // and a value such as `eval` or `bash` would run the rest of the line. A path prefix
    // from a value is refused too (`{{vars.v}}/echo`): it could name any program.
    for script in [
        "${UNSET:-eval {{vars.v}}}",
        "{{vars.v}} x",
        "e{{vars.v}} x",
        "{{vars.v}}/echo ran",
        "env {{vars.v}} x",
        "sudo -u nobody {{vars.v}} x",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let plan = write_plan(dir.path(), script, "touch PWN");
        let (code, out) = validate(dir.path(), &plan);
        assert_eq!(code, Some(2), "{script}: {out}");
        assert!(
            out.contains("the value stands in the command name"),
            "{script}: {out}"
        );
        let (code, _) = execute_with(dir.path(), &plan, "touch PWN");
        assert_eq!(code, Some(2), "{script}");
        assert!(!dir.path().join("PWN").exists(), "{script}");
    }
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), "{{vars.v}}/echo ran > out.txt", "/bin");
    let (code, stderr) = execute_with(dir.path(), &plan, "/bin");
    assert_eq!(code, Some(2), "{stderr}");
}

/// Second attack pass: prompt escapes that leave `$(` behind, shells reached through
/// compound commands, `source` of a descriptor, startup variables written in the script,
/// `-c --`, and shells behind programs planrun does not know as wrappers.
#[test]
fn scripts_and_argv_that_start_a_shell_take_no_value() {
    let scripts = [
        ("y=\"{{vars.v}}\"; echo \"${y@P}\"", "$\\](touch PWN)"),
        ("{ printf '%s\\n' \"{{vars.v}}\"; } | sh", "touch PWN"),
        ("f(){ echo \"{{vars.v}}\"; }; f | ( sh )", "touch PWN"),
        ("exec 3<<< \"{{vars.v}}\"; source /dev/fd/3", "touch PWN"),
        (
            "env BASH_ENV=/dev/stdin bash -c : <<< \"{{vars.v}}\"",
            "touch PWN",
        ),
        ("rbash <<< \"{{vars.v}}\"", "touch PWN"),
        ("flock LOCK -c \"{{vars.v}}\"", "touch PWN"),
        ("printf '%s' \"{{vars.v}}\" > s; . ./s", "touch PWN"),
    ];
    for (script, value) in scripts {
        assert_script_refused(script, value);
    }
    for argv in [
        "[bash, -c, --, \"{{vars.v}}\"]",
        "[rbash, -c, \"{{vars.v}}\"]",
        "[chroot, /, sh, -c, \"{{vars.v}}\"]",
        "[find, ., -maxdepth, \"0\", -exec, sh, -c, \"{{vars.v}}\", \";\"]",
        "[env, -S, \"sh -c\", \"{{vars.v}}\"]",
        "[flock, LOCK, -c, \"{{vars.v}}\"]",
    ] {
        assert_run_refused(argv);
    }
}

/// Third attack pass: a value as the command behind `command`/`builtin`/`time -p` or a
/// numbered redirect, two values joined into `$(`, and the long or joined spellings of the
/// options that hand a program its command line.
#[test]
fn joined_values_wrapped_command_names_and_long_options_are_refused() {
    for (script, value) in [
        ("command {{vars.v}} 'touch PWN'", "eval"),
        ("2>/dev/null {{vars.v}} 'touch PWN'", "eval"),
        ("time -p {{vars.v}} 'touch PWN'", "/bin/bash -c 'touch PWN'"),
        ("f() { echo ${!1}; }; f {{vars.v}}'(touch PWN)]'", "a[$"),
        ("env {{vars.v}} x", "-S touch PWN"),
    ] {
        assert_script_refused(script, value);
    }
    for argv in [
        "[su, --command, \"{{vars.v}}\"]",
        "[su, \"--command={{vars.v}}\"]",
        "[su, \"-c{{vars.v}}\"]",
        "[script, -q, \"--command={{vars.v}}\", /dev/null]",
        "[flock, LOCK, --command, \"{{vars.v}}\"]",
        "[env, \"-S{{vars.v}}\"]",
        "[ssh, -o, \"ProxyCommand={{vars.v}}\", x, \"true\"]",
    ] {
        assert_run_refused(argv);
    }
}

/// Fourth attack pass: shells spelled so no word list sees them (`/proc/self/exe`, globs,
/// ANSI-C escapes), `env -S` in a script, and `env:` variables git or the shell run.
#[test]
fn shells_spelled_indirectly_and_run_variables_take_no_value() {
    for script in [
        "/proc/self/exe -c \"{{vars.v}}\"",
        "/bin/b?sh -c \"{{vars.v}}\"",
        "printf %s \"{{vars.v}}\" | /bin/da[s]h",
        "$'\\x62ash' -c \"{{vars.v}}\"",
        "env -S \"{{vars.v}}\"",
    ] {
        assert_script_refused(script, "touch PWN");
    }
    for key in ["GIT_CONFIG_VALUE_0", "GIT_CONFIG_PARAMETERS", "PATH"] {
        let dir = tempfile::tempdir().unwrap();
        let plan = write_steps(
            dir.path(),
            "safe",
            &format!("  - id: r\n    env: {{ {key}: \"{{{{vars.v}}}}\" }}\n    run: [\"true\"]\n"),
        );
        let (code, stderr) = execute_with(dir.path(), &plan, "touch PWN");
        assert_eq!(code, Some(2), "{key}: {stderr}");
        assert!(
            stderr.contains(&format!("`{key}` is read as code")),
            "{stderr}"
        );
    }
}

/// `execute` of a `shell:` step running `script` with `--var v=VALUE` is refused (exit 2) and
/// the marker file `PWN` is never made.
fn assert_script_refused(script: &str, value: &str) {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), script, "safe");
    let (code, stderr) = execute_with(dir.path(), &plan, value);
    assert_eq!(code, Some(2), "{script}: {stderr}");
    assert!(!dir.path().join("PWN").exists(), "{script}");
}

/// The same for a `run:` step with this argv, the value being `touch PWN`.
fn assert_run_refused(argv: &str) {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_steps(dir.path(), "safe", &format!("  - id: r\n    run: {argv}\n"));
    let (code, stderr) = execute_with(dir.path(), &plan, "touch PWN");
    assert_eq!(code, Some(2), "{argv}: {stderr}");
    assert!(!dir.path().join("PWN").exists(), "{argv}");
}

/// Fifth attack pass: words that set what a later command runs without starting a shell
/// (`alias`, `hash`, `BASH_ALIASES`, `compgen -C`, `declare -f`, `enable`, `fc`, a variable
/// git or a pager runs), a value copied into one of them, and a value reaching a script that
/// runs text through `env:` or a `run:` argument instead of `{{…}}` in the script.
#[test]
fn scripts_that_set_what_a_command_runs_take_no_value() {
    for (script, word) in [
        (
            "shopt -s expand_aliases\ny=\"{{vars.v}}\"\nalias a=\"$y\"\na",
            "expand_aliases",
        ),
        ("alias a=x; y=\"{{vars.v}}\"", "alias"),
        ("BASH_ALIASES[a]=\"{{vars.v}}\"", "BASH_ALIASES"),
        ("y=\"{{vars.v}}\"; hash -p /bin/true ls", "hash"),
        ("compgen -C \"{{vars.v}}\" x", "compgen"),
        ("complete -C \"{{vars.v}}\" x", "complete"),
        ("bind -x '\"a\": x'; echo \"{{vars.v}}\"", "bind"),
        ("declare -f f; echo \"{{vars.v}}\"", "declare -f"),
        ("enable -f ./x.so x; echo \"{{vars.v}}\"", "enable"),
        ("history -s \"{{vars.v}}\"; fc -s", "history"),
        ("PROMPT_COMMAND=x; echo \"{{vars.v}}\"", "PROMPT_COMMAND"),
        (
            "y=\"{{vars.v}}\"; GIT_SSH_COMMAND=\"$y\" git ls-remote ssh://example.invalid/x",
            "GIT_*",
        ),
        ("y=\"{{vars.v}}\"; export PAGER=\"$y\"", "PAGER"),
        ("echo \"{{vars.v}}\" | xargs env", "xargs"),
        ("echo \"{{vars.v}}\" | at now", "at"),
        ("y=\"{{vars.v}}\"; sudo -u postgres -s \"$y\"", "sudo -s"),
        (
            "y=\"{{vars.v}}\"; rsync -a -e \"$y\" src host:dst",
            "rsync -e",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let plan = write_plan(dir.path(), script, "touch PWN");
        let (code, out) = validate(dir.path(), &plan);
        assert_eq!(code, Some(2), "{script}: {out}");
        assert!(
            out.contains(&format!(
                "the value would be run as code: the script names `{word}`, which starts a shell, runs text as commands or sets what a later command runs"
            )),
            "{script}: {out}"
        );
        assert_script_refused(script, "touch PWN");
    }
    // A value straight in such an option is refused where it stands, as in a `run:` step.
    for script in [
        "tar -I \"{{vars.v}}\" -cf x.tar /dev/null",
        "git -c core.sshCommand=\"{{vars.v}}\" ls-remote ssh://example.invalid/x",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let plan = write_plan(dir.path(), script, "touch PWN");
        let (code, out) = validate(dir.path(), &plan);
        assert_eq!(code, Some(2), "{out}");
        assert!(
            out.contains(
                "the value would be run as code: the program runs this option's argument as a command"
            ),
            "{out}"
        );
        assert_script_refused(script, "touch PWN");
    }
    for argv in [
        "[rsync, -a, -e, \"{{vars.v}}\", src, \"host:dst\"]",
        "[rsync, \"--rsh={{vars.v}}\", src, \"host:dst\"]",
        "[tar, \"--use-compress-program={{vars.v}}\", -cf, x.tar, /dev/null]",
        "[tar, -I, \"{{vars.v}}\", -cf, x.tar, /dev/null]",
        "[git, -c, \"core.sshCommand={{vars.v}}\", ls-remote, \"ssh://example.invalid/x\"]",
    ] {
        assert_run_refused(argv);
    }
    // The value as data beside such an option is still fine in a `run:` step.
    let dir = tempfile::tempdir().unwrap();
    let plan = write_steps(
        dir.path(),
        "out.tar",
        "  - id: r\n    run: [tar, -I, gzip, -cf, \"{{vars.v}}\", /dev/null]\n",
    );
    let (code, stderr) = execute_with(dir.path(), &plan, "my out.tar");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(dir.path().join("my out.tar").exists());
    // A value assigned straight to a variable a program runs is refused where it stands.
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        "GIT_SSH_COMMAND=\"{{vars.v}}\" git ls-remote ssh://example.invalid/x || true",
        "touch PWN",
    );
    let (code, out) = validate(dir.path(), &plan);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("reads this variable as code or a hook, or it chooses the program that runs"),
        "{out}"
    );
    // Through `env:` and through a `run:` shell's arguments, the value reaches a script that
    // runs text just the same.
    for steps in [
        "  - id: s\n    env: { X: \"{{vars.v}}\" }\n    shell: eval \"$X\"\n",
        "  - id: s\n    env: { X: \"{{vars.v}}\" }\n    run: [bash, -c, 'eval \"$X\"']\n",
        "  - id: s\n    run: [bash, -c, 'eval \"$1\"', _, \"{{vars.v}}\"]\n",
        "  - id: s\n    run: [bash, -c, 'GIT_SSH_COMMAND=\"$1\" git ls-remote ssh://example.invalid/x', _, \"{{vars.v}}\"]\n",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let plan = write_steps(dir.path(), "touch PWN", steps);
        let (code, out) = validate(dir.path(), &plan);
        assert_eq!(code, Some(2), "{steps}: {out}");
        assert!(
            out.contains("a templated value reaches the step's script as "),
            "{steps}: {out}"
        );
        let (code, stderr) = execute_with(dir.path(), &plan, "touch PWN");
        assert_eq!(code, Some(2), "{steps}: {stderr}");
        assert!(!dir.path().join("PWN").exists(), "{steps}");
    }
    // The documented way to hand a value to a shell still works.
    let dir = tempfile::tempdir().unwrap();
    let plan = write_steps(
        dir.path(),
        "safe",
        "  - id: s\n    env: { X: \"{{vars.v}}\" }\n    run: [bash, -c, 'printf \"%s|%s\" \"$X\" \"$1\" > out.txt', _, \"{{vars.v}}\"]\n",
    );
    let (code, stderr) = execute_with(dir.path(), &plan, "touch PWN; x");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "touch PWN; x|touch PWN; x"
    );
}

/// A refused value is reported at its `{{…}}` in the plan file: the line of the script in a
/// block scalar, and the column of the expression, also on a one-line quoted script.
#[test]
fn a_refused_value_is_reported_at_its_expression_in_the_plan_file() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_steps(
        dir.path(),
        "1+x",
        "  - id: block\n    shell: |\n      echo start\n      echo \"{{vars.v}}\"; n=$(( {{vars.v}} + 1 ))\n\
         \x20 - id: quoted\n    shell: \"echo {{vars.v}}; echo $(( {{vars.v}} ))\"\n",
    );
    let (code, out) = validate(dir.path(), &plan);
    assert_eq!(code, Some(2), "{out}");
    let file = plan.display();
    assert!(
        out.contains(&format!(
            "{file}:9:32: error: steps[0].shell: script line 2, column 26: `{{{{vars.v}}}}` (`1+x`): the value stands in bash arithmetic"
        )),
        "{out}"
    );
    assert!(
        out.contains("9 |       echo \"{{vars.v}}\"; n=$(( {{vars.v}} + 1 ))\n  |                                ^\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{file}:11:39: error: steps[1].shell: script line 1, column 27: `{{{{vars.v}}}}` (`1+x`)"
        )),
        "{out}"
    );
    // A `--var` value refused when the plan is rendered is placed the same way.
    let plan = write_steps(
        dir.path(),
        "1",
        "  - id: block\n    shell: |\n      echo start\n      echo \"{{vars.v}}\"; n=$(( {{vars.v}} + 1 ))\n",
    );
    let (code, stderr) = execute_with(dir.path(), &plan, "1+x");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{file}:9:32: error: steps[0].shell: script line 2, column 26: `{{{{vars.v}}}}` (`1+x`)"
        )),
        "{stderr}"
    );
}

/// Sixth attack pass (issue 8's fifth list), finding 1: bash history and completion run
/// text (`fc -s`, `fc -e`, `compgen -C`, `complete -C`).
#[test]
fn history_and_completion_take_no_value() {
    for (script, value) in [
        (
            "set -o history; history -s \"{{vars.v}}\"; fc -s",
            "touch PWN",
        ),
        ("fc -e \"{{vars.v}}\" -1", "touch PWN;true"),
        ("compgen -C \"{{vars.v}}\" x", "touch PWN"),
        (
            "complete -C \"{{vars.v}}\" x; compgen -A command x",
            "touch PWN",
        ),
    ] {
        assert_script_refused(script, value);
    }
}

/// Finding 2: a shell named by an expansion (`"$BASH"`, `$0`) directly or behind a wrapper,
/// and text fed to such a shell through a pipe, a process substitution, a co-process or a
/// file. A script that takes a value names every program literally.
#[test]
fn programs_named_by_an_expansion_refuse_every_value_of_the_script() {
    for script in [
        "unshare \"$BASH\" -c \"{{vars.v}}\"",
        "ionice -c3 \"$BASH\" -c \"{{vars.v}}\"",
        "chrt -o 0 \"$BASH\" -c \"{{vars.v}}\"",
        "taskset 1 \"$BASH\" -c \"{{vars.v}}\"",
        "strace -o /dev/null \"$BASH\" -c \"{{vars.v}}\"",
        "prlimit --nofile=99 \"$BASH\" -c \"{{vars.v}}\"",
        "setpriv --reuid=0 \"$BASH\" -c \"{{vars.v}}\"",
        "env -u X \"$BASH\" -c \"{{vars.v}}\"",
        "find . -maxdepth 0 -exec \"$BASH\" -c \"{{vars.v}}\" \\;",
        "find . -maxdepth 0 -execdir \"$BASH\" -c \"{{vars.v}}\" \\;",
        "unshare $0 -c \"{{vars.v}}\"",
        "echo \"{{vars.v}}\" | unshare \"$BASH\"",
        "exec < <(echo \"{{vars.v}}\"); exec \"$BASH\"",
        "coproc X { \"$BASH\"; }; echo \"{{vars.v}}\" >&\"${X[1]}\"; exec {X[1]}>&-; wait",
        "printf \"%s\\n\" \"{{vars.v}}\" > \"$PLANRUN_SCRATCH/x\"; \"$BASH\" \"$PLANRUN_SCRATCH/x\"",
        "X=bash; printf '%s\\n' \"{{vars.v}}\" > x; \"$X\" x",
        "f() { \"$@\"; }; f printf '%s' \"{{vars.v}}\"",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let plan = write_plan(dir.path(), script, "touch PWN");
        let (code, out) = validate(dir.path(), &plan);
        assert_eq!(code, Some(2), "{script}: {out}");
        assert!(
            out.contains("the value would be run as code"),
            "{script}: {out}"
        );
        assert_script_refused(script, "touch PWN");
    }
    // A literal program, also behind a wrapper, still takes a value as data.
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        "nice -n 5 timeout 10 printf '%s' \"{{vars.v}}\" > out.txt",
        "x",
    );
    let (code, stderr) = execute_with(dir.path(), &plan, "touch PWN; $HOME");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "touch PWN; $HOME"
    );
}

/// Findings 3 and 4: `env -S` in every spelling is read as the command line it becomes, and
/// `watch` and the ssh options of `scp`/`sftp`, `rsync -e`, `git -c core.sshCommand` take no
/// template in a `run:` step.
#[test]
fn run_reads_split_strings_watch_and_ssh_options_as_command_lines() {
    for argv in [
        "[env, \"-Ssh -c\", \"{{vars.v}}\"]",
        "[env, \"--split-string=sh -c\", \"{{vars.v}}\"]",
        "[env, \"--split-s=sh -c\", \"{{vars.v}}\"]",
        "[env, -S, \"FOO=1 sh -c\", \"{{vars.v}}\"]",
        "[env, -S, \"nice sh -c\", \"{{vars.v}}\"]",
        "[env, -iS, \"sh -c\", \"{{vars.v}}\"]",
        "[watch, -g, -n1, \"{{vars.v}}\"]",
        "[scp, -o, \"ProxyCommand={{vars.v}}\", \"x:/a\", /tmp/b]",
        "[sftp, -o, \"ProxyCommand={{vars.v}}\", x]",
        "[rsync, -e, \"{{vars.v}}\", \"x:/a\", /tmp/b]",
        "[git, -c, \"core.sshCommand={{vars.v}}\", ls-remote, \"ssh://x/y\"]",
        "[unshare, sh, -c, \"{{vars.v}}\"]",
        "[setpriv, --reuid, \"0\", sh, -c, \"{{vars.v}}\"]",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let plan = write_steps(dir.path(), "safe", &format!("  - id: r\n    run: {argv}\n"));
        let (code, out) = validate(dir.path(), &plan);
        assert_eq!(code, Some(2), "{argv}: {out}");
        assert!(out.contains("takes commands"), "{argv}: {out}");
        assert_run_refused(argv);
    }
}

/// Finding 14: `env:` variables that common programs run (`LESSOPEN` with `less`), read
/// options from or load code along take no template, by name and by name family.
#[test]
fn env_variables_programs_run_take_no_template() {
    for key in [
        "LESSOPEN",
        "LESSCLOSE",
        "PAGER",
        "MANPAGER",
        "SYSTEMD_PAGER",
        "EDITOR",
        "VISUAL",
        "FCEDIT",
        "GIT_EXTERNAL_DIFF",
        "TAR_OPTIONS",
        "RSYNC_RSH",
        "SSH_ASKPASS",
        "SUDO_ASKPASS",
        "PERL5OPT",
        "PERL5LIB",
        "PYTHONSTARTUP",
        "PYTHONPATH",
        "NODE_OPTIONS",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "GCONV_PATH",
        "PROMPT_COMMAND",
        "PS4",
        "JAVA_OPTS",
        "KUBECONFIG",
        "OPENSSL_CONF",
        "PSQLRC",
        "HOME",
        "MY_TOOL_COMMAND",
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "text\n").unwrap();
        let plan = write_steps(
            dir.path(),
            "safe",
            &format!("  - id: r\n    env: {{ {key}: \"{{{{vars.v}}}}\" }}\n    run: [less, f]\n"),
        );
        let (code, out) = validate(dir.path(), &plan);
        assert_eq!(code, Some(2), "{key}: {out}");
        assert!(out.contains(&format!("`{key}` is read as code")), "{out}");
        let (code, stderr) = execute_with(dir.path(), &plan, "|touch PWN; echo %s");
        assert_eq!(code, Some(2), "{key}: {stderr}");
        assert!(!dir.path().join("PWN").exists(), "{key}");
    }
    // Words xargs reads become options of its program unless the author wrote `--`.
    assert_script_refused(
        "echo \"x {{vars.v}}\" | xargs tar -cf /dev/null",
        "--checkpoint=1 --checkpoint-action=exec=touch${IFS}PWN /etc/hostname",
    );
    // A value copied into such a variable in a script (`read`, `printf -v`) is refused too:
    // the script names the variable.
    for script in [
        "read -r LESSOPEN <<< \"{{vars.v}}\"; export LESSOPEN; less /etc/hostname",
        "printf -v PYTHONSTARTUP %s \"{{vars.v}}\"; export PYTHONSTARTUP; python3 -i < /dev/null",
    ] {
        assert_script_refused(script, "|touch PWN; echo %s");
    }
    // Names programs do not run still take a template.
    let dir = tempfile::tempdir().unwrap();
    let plan = write_steps(
        dir.path(),
        "safe",
        "  - id: r\n    env: { PGDATABASE: \"{{vars.v}}\", APP_VALUE: \"{{vars.v}}\" }\n    run: [bash, -c, 'printf \"%s\" \"$APP_VALUE\" > out.txt']\n",
    );
    // (A `|` at a value's end is refused everywhere since the seventh pass: perl opens it.)
    let (code, stderr) = execute_with(dir.path(), &plan, "touch PWN; echo %s");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "touch PWN; echo %s"
    );
}

/// Finding 15: a value that starts with `-` would be read as an option, and options run
/// commands (`git ls-remote --upload-pack=`, `tar --to-command=`, `perl -e`). It is refused
/// where it starts an argument unless the author wrote `--` before it; a value is never the
/// program.
#[test]
fn a_value_starting_with_a_dash_is_never_an_option_and_never_a_program() {
    let dir = tempfile::tempdir().unwrap();
    // `--to-command` runs for regular files only, so the archive holds one.
    std::fs::create_dir(dir.path().join("d")).unwrap();
    std::fs::write(dir.path().join("d/f"), "data\n").unwrap();
    let status = std::process::Command::new("tar")
        .current_dir(dir.path())
        .args(["-cf", "a.tar", "d"])
        .status()
        .unwrap();
    assert!(status.success());
    for (steps, value) in [
        (
            "  - id: r\n    run: [git, ls-remote, \"{{vars.v}}\", /tmp]\n",
            "--upload-pack=touch PWN;",
        ),
        (
            "  - id: r\n    run: [tar, -xf, a.tar, -C, d, \"{{vars.v}}\"]\n",
            "--to-command=touch PWN",
        ),
        (
            "  - id: r\n    run: [sudo, --, git, ls-remote, \"{{vars.v}}\", /tmp]\n",
            "--upload-pack=touch PWN;",
        ),
        (
            "  - id: s\n    shell: git ls-remote \"{{vars.v}}\" /tmp\n",
            "--upload-pack=touch PWN;",
        ),
        (
            "  - id: s\n    shell: tar -xf a.tar -C d {{vars.v}}\n",
            "--to-command=touch PWN",
        ),
        (
            "  - id: s\n    shell: git ls-remote $UNSET\"{{vars.v}}\" /tmp\n",
            "--upload-pack=touch PWN;",
        ),
    ] {
        let plan = write_steps(dir.path(), "origin", steps);
        let (code, stderr) = execute_with(dir.path(), &plan, value);
        assert_eq!(code, Some(2), "{steps}: {stderr}");
        assert!(stderr.contains("starts with `-`"), "{steps}: {stderr}");
        assert!(!dir.path().join("PWN").exists(), "{steps}");
    }
    // A copy of the value (an assignment, a here-string, an `env:` variable) is handed to a
    // program just the same.
    for steps in [
        "  - id: s\n    shell: x={{vars.v}}; tar -xf a.tar -C d \"$x\"\n",
        "  - id: s\n    shell: read -r x <<< \"{{vars.v}}\"; tar -xf a.tar -C d \"$x\"\n",
        "  - id: s\n    env: { X: \"{{vars.v}}\" }\n    shell: tar -xf a.tar -C d \"$X\"\n",
    ] {
        let plan = write_steps(dir.path(), "origin", steps);
        let (code, stderr) = execute_with(dir.path(), &plan, "--to-command=touch PWN");
        assert_eq!(code, Some(2), "{steps}: {stderr}");
        assert!(stderr.contains("starts with `-`"), "{steps}: {stderr}");
        assert!(!dir.path().join("PWN").exists(), "{steps}");
    }
    // `--` written by the author ends the options: the value is an operand.
    let plan = write_steps(
        dir.path(),
        "x",
        "  - id: r\n    run: [touch, --, \"{{vars.v}}\"]\n  - id: s\n    shell: printf '%s' -- \"{{vars.v}}\" > out.txt\n",
    );
    let (code, stderr) = execute_with(dir.path(), &plan, "-rf");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(dir.path().join("-rf").exists());
    // A shell's positional parameters are never its options.
    let plan = write_steps(
        dir.path(),
        "x",
        "  - id: r\n    run: [bash, -c, 'printf \"%s\" \"$1\" > out.txt', _, \"{{vars.v}}\"]\n",
    );
    let (code, stderr) = execute_with(dir.path(), &plan, "-x");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "-x"
    );
    // The program itself never comes from a value, in `run:` and in a script.
    let plan = dir.path().join("tool.yaml");
    std::fs::write(
        &plan,
        "version: 1\nname: tool\nvars: { tool: /bin/echo, opt: x, file: y }\nsteps:\n  - id: r\n    run: [\"{{vars.tool}}\", \"{{vars.opt}}\", \"{{vars.file}}\"]\n",
    )
    .unwrap();
    let (code, out) = validate(dir.path(), &plan);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(
            "argument 0 (`{{vars.tool}}`) is the program, and a value is never a command name"
        ),
        "{out}"
    );
    let output = planrun(dir.path())
        .arg("execute")
        .arg(&plan)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(["--var", "tool=/usr/bin/perl", "--var", "opt=-e"])
        .args(["--var", "file=system('touch PWN')"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(!dir.path().join("PWN").exists());
    for steps in [
        "  - id: r\n    run: [env, \"{{vars.v}}\", x]\n",
        "  - id: r\n    run: [find, ., -maxdepth, \"0\", -exec, \"{{vars.v}}\", \";\"]\n",
    ] {
        let plan = write_steps(dir.path(), "safe", steps);
        let (code, out) = validate(dir.path(), &plan);
        assert_eq!(code, Some(2), "{steps}: {out}");
        assert!(out.contains("a value is never a command name"), "{out}");
    }
}

/// Seventh attack pass, each created PWN before: a value whose words split off into options
/// (`find $d` with `. -exec …`, `tar $FILES` through `env:`), a pipe at a value's end that
/// perl opens as a command, wrappers the reader did not know (`setarch`, `ld.so`), and an
/// editor's startup variable in `env:`.
#[test]
fn split_options_pipes_more_wrappers_and_editor_variables_take_no_value() {
    let run = |steps: &str, value: &str| {
        let dir = tempfile::tempdir().unwrap();
        let plan = write_steps(dir.path(), "safe", steps);
        let (code, stderr) = execute_with(dir.path(), &plan, value);
        assert_eq!(code, Some(2), "{steps}: {stderr}");
        assert!(!dir.path().join("PWN").exists(), "{steps}");
    };
    run(
        "  - id: s\n    shell: 'd=\"{{vars.v}}\"; find $d -maxdepth 0'\n",
        ". -exec touch PWN ;",
    );
    run(
        "  - id: s\n    shell: 'tar -cf /dev/null $FILES'\n    env: { FILES: \"{{vars.v}}\" }\n",
        "/etc/hostname --checkpoint=1 --checkpoint-action=exec=touch${IFS}PWN",
    );
    run(
        "  - id: s\n    run: [perl, -ne, print, \"{{vars.v}}\"]\n",
        "touch PWN|",
    );
    run(
        "  - id: s\n    run: [setarch, x86_64, \"{{vars.v}}\", PWN]\n",
        "touch",
    );
    run(
        "  - id: s\n    run: [/lib64/ld-linux-x86-64.so.2, \"{{vars.v}}\", PWN]\n",
        "/usr/bin/touch",
    );
    run(
        "  - id: s\n    run: [\"true\"]\n    env: { VIMINIT: \"{{vars.v}}\" }\n",
        "!touch PWN",
    );
}

/// Seventh attack pass: long options that run a command, abbreviated as getopt and git allow
/// (`--upl=`, `--use-compress=`, `--checkpoint-act=`) or with the value as the next argument.
#[test]
fn abbreviated_and_separate_command_options_take_no_value() {
    for argv in [
        "[git, ls-remote, \"--upl={{vars.v}}\", .]",
        "[git, ls-remote, --upload-pack, \"{{vars.v}}\", .]",
        "[tar, -cf, /dev/null, \"--use-compress={{vars.v}}\", /etc/hostname]",
        "[tar, -cf, /dev/null, --use-compress, \"{{vars.v}}\", /etc/hostname]",
        "[tar, -cf, /dev/null, --checkpoint=1, \"--checkpoint-act=exec={{vars.v}}\", /etc/hostname]",
    ] {
        assert_run_refused(argv);
    }
    assert_script_refused(
        "x=\"{{vars.v}}\"\ntar -cf /dev/null --use-compress=\"$x\" /etc/hostname",
        "touch PWN;",
    );
}
