//! Secrets that must never reach output, argv or manifests, attacked through the real binary
//! the way a hostile reader of the README would (issue 8, attack pass 5): a multi-line secret,
//! a secret cut by a long line, the encodings a child prints a secret in, a secret inside a
//! PostgreSQL connection string, a secret in a recorded path, and `{{env.VAR}}` where `VAR`
//! is where a secret comes from.
//!
//! Every secret here is spelled with the letters `Q` and `J` only (and punctuation), which
//! nothing else planrun writes contains, so "no `Q` and no `J` anywhere" proves that not even
//! a fragment of it leaked.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use support::run::{stderr, stdout};
use support::{Env, Test};

/// Everything a run leaves for people to read: what it printed, its log and its record.
fn everything(env: &Env, output: &Output) -> Vec<(&'static str, String)> {
    vec![
        ("stdout", stdout(output)),
        ("stderr", stderr(output)),
        (
            "state (records and logs)",
            // A run refused before it started leaves no state.
            if env.state().exists() {
                env.state_files()
            } else {
                String::new()
            },
        ),
    ]
}

/// Fails naming where a piece of a secret (any `Q` or `J`) was found.
fn assert_no_fragment(env: &Env, output: &Output) {
    for (what, text) in everything(env, output) {
        // The temp dir's random name may hold a `Q` or `J`.
        let text = env.filter(&text);
        if let Some(at) = text.find(['Q', 'J']) {
            let from = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let line = text[from..].lines().next().unwrap_or_default();
            let shown: String = line
                .chars()
                .rev()
                .take(200)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            panic!("a piece of the secret is in the {what}: …{shown}");
        }
    }
}

/// `planrun execute plan.yaml EXTRA` with `secret` in `$PLANRUN_TEST_PW`.
fn execute(env: &Env, secret: &str, extra: &[&str]) -> Output {
    env.planrun(["execute"])
        .arg(env.path("plan.yaml"))
        .args(extra)
        .env("PLANRUN_TEST_PW", secret)
        .output()
}

/// `planrun validate plan.yaml` exits 2, and its report holds each of `expected`.
fn validate_refuses(env: &Env, expected: &[&str]) {
    let ran = env
        .planrun(["validate", "plan.yaml"])
        .env("PLANRUN_TEST_PW", "QJQJ")
        .status(2)
        .run();
    let report = env.filter(&ran.stdout);
    for expected in expected {
        assert!(
            report.contains(expected),
            "missing {expected:?} in:\n{report}"
        );
    }
}

/// A program in `DIR/bin` that tells its version, or appends its arguments to `DIR/argv` and
/// fails: a stand-in for
/// pg_dump that shows what planrun passed it on its command line.
fn argv_recorder(env: &Env, name: &str, body: &str) {
    let bin = env.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let program = bin.join(name);
    std::fs::write(
        &program,
        format!(
            "#!/bin/bash\n[ \"$1\" = --version ] && {{ echo '{name} (PostgreSQL) 15.0'; exit 0; }}\nprintf '%s\\n' \"$@\" >> {}\n{body}\nexit 1\n",
            env.path("argv").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn every_line_of_a_multi_line_secret_is_masked() {
    let env = Env::new();
    let key = env.path("key");
    // A PEM-like key: two identifying lines and a short one (`}`), too short to mask alone.
    std::fs::write(&key, "QJ-first-line-QJQJ\nQJ second line\n}\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    env.plan(
        r#"
version: 1
name: multi
secrets:
  key: { file: DIR/key }
steps:
  - id: leak
    shell: echo "{{secrets.key}}"; echo "{{secrets.key}}" >&2; exit 1
"#,
    );
    let output = env.execute(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("    leak | ***\n    leak | ***\n    leak | }\n"),
        "{}",
        stderr(&output)
    );
    let log = env.log();
    assert!(
        log.contains(" leak stdout: ***\n") && log.contains(" leak stderr: ***\n"),
        "{log}"
    );
    assert_no_fragment(&env, &output);
    let output = env.execute(&["--json"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains(r#""line":"***""#),
        "{}",
        stdout(&output)
    );
    assert_no_fragment(&env, &output);
}

#[test]
fn a_secret_cut_by_the_line_splitter_is_still_masked_whole() {
    let env = Env::new();
    // Lines are cut every 16 KiB; these prefixes put the cut everywhere in and around the
    // secret, on both streams.
    env.plan(
        r#"
version: 1
name: long
secrets:
  pw: { env: PLANRUN_TEST_PW }
steps:
  - id: long
    shell: |
      for n in $(seq 16368 16386); do
        printf "%${n}s" "" | tr ' ' x; echo "{{secrets.pw}}"
        printf "%${n}s" "" | tr ' ' x >&2; echo "{{secrets.pw}}" >&2
      done
      exit 1
"#,
    );
    let output = execute(&env, "QJQJ-JJQQ-QQJJ", &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_no_fragment(&env, &output);
    // Each of the 38 secrets printed is one mask, with nothing of it on either side of a cut.
    assert_eq!(env.log().matches("***").count(), 38, "{}", env.log());
}

#[test]
fn a_secret_a_tool_writes_across_the_cut_is_masked_in_its_error() {
    let env = Env::new();
    argv_recorder(&env, "pg_dump", "");
    argv_recorder(
        &env,
        "psql",
        r#"printf "%16380s" "" | tr ' ' x >&2; printf '%s rejected\n' "$PGPASSWORD" >&2"#,
    );
    env.plan(
        r#"
version: 1
name: tool
secrets:
  pw: { env: PLANRUN_TEST_PW }
sources:
  db: { postgres: { database: crm, password: "{{secrets.pw}}", bin_dir: DIR/bin } }
storage:
  local: { local: { path: DIR/store } }
steps:
  - { id: db, backup: db }
"#,
    );
    let output = execute(&env, "QJQJ-JJQQ-QQJJ", &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("xxx*** rejected"),
        "{}",
        stderr(&output)
    );
    assert_no_fragment(&env, &output);
    // The password reached psql in its environment, not on its command line.
    let argv = std::fs::read_to_string(env.path("argv")).unwrap();
    assert!(
        argv.contains("--dbname=crm\n") && !env.filter(&argv).contains('Q'),
        "{argv}"
    );
}

#[test]
fn the_encodings_a_child_prints_a_secret_in_are_masked() {
    let env = Env::new();
    env.plan(
        r#"
version: 1
name: forms
secrets:
  pw: { env: PLANRUN_TEST_PW }
steps:
  - id: forms
    shell: |
      printf 'q=%q\n' "{{secrets.pw}}"
      echo "at=${PLANRUN_SECRET_PW@Q}"
      echo "uri=$(S="{{secrets.pw}}" jq -rn 'env.S|@uri')"
      echo "json=$(S="{{secrets.pw}}" jq -cn '{s:env.S}')"
      echo "form=$(printf '%s' "{{secrets.pw}}" | jq -sRr @uri | sed 's/%20/+/g')"
      exit 1
"#,
    );
    let output = execute(&env, "QJ QJ'$QJ&\"QJ/QJ\\", &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "    forms | q=***\n    forms | at='***'\n    forms | uri=***\n    forms | json={\"s\":\"***\"}\n    forms | form=***\n"
        ),
        "{}",
        stderr(&output)
    );
    assert_no_fragment(&env, &output);
}

#[test]
fn a_secret_in_a_postgres_connection_string_is_refused() {
    let env = Env::new();
    argv_recorder(&env, "pg_dump", "");
    env.plan(
        r#"
version: 1
name: uri
vars: { db: crm }
secrets:
  pw: { env: PLANRUN_TEST_PW }
sources:
  secret: { postgres: { database: "postgresql://u:{{secrets.pw}}@127.0.0.1:5999/crm", bin_dir: DIR/bin } }
  from_env: { postgres: { database: "postgresql://u:{{env.PLANRUN_TEST_PW}}@127.0.0.1:5999/crm", bin_dir: DIR/bin } }
  literal: { postgres: { database: "host=127.0.0.1 dbname=crm password=QJ", bin_dir: DIR/bin } }
storage:
  local: { local: { path: DIR/store } }
steps:
  - { id: secret, backup: secret }
  - { id: from_env, backup: from_env }
  - { id: literal, backup: literal }
"#,
    );
    validate_refuses(
        &env,
        &[
            "plan.yaml:8:35: error: sources.secret.postgres.database: `secrets.pw` in source `secret` (`database`) would be on the command line of pg_dump, pg_restore and psql (`--dbname=…`), visible in `ps`\n",
            "plan.yaml:9:37: error: sources.from_env.postgres.database: `env.PLANRUN_TEST_PW` holds the secret `pw` (read from `PLANRUN_TEST_PW`): `secrets.pw` in source `from_env` (`database`) would be on the command line of pg_dump, pg_restore and psql (`--dbname=…`), visible in `ps`\n",
            "  = help: put the password in the source's `password:`, which reaches the PostgreSQL tools only through their environment; a connection string is not a secret\n",
            "plan.yaml:10:36: error: sources.literal.postgres.database: the database connection string holds a password, which would be on the command line of pg_dump, pg_restore and psql (`--dbname=…`), visible in `ps`\n",
            "  = help: remove the password from `database` and set the source's `password: \"{{secrets.NAME}}\"`; planrun passes it to the tools in their environment only\n",
            "plan.yaml: invalid (3 errors)\n",
        ],
    );

    // The same, reached where `validate` cannot see it: a `--var` holding a password in a
    // URI, or a secret's value. Nothing is started.
    env.plan(
        r#"
version: 1
name: uri
vars: { db: crm }
secrets:
  pw: { env: PLANRUN_TEST_PW }
sources:
  db: { postgres: { database: "{{vars.db}}", bin_dir: DIR/bin } }
storage:
  local: { local: { path: DIR/store } }
steps:
  - { id: db, backup: db }
"#,
    );
    for (var, message) in [
        (
            "db=postgresql://u:hunter2@127.0.0.1/crm",
            "error: sources.db.postgres.database: the database connection string holds a password",
        ),
        (
            "db=postgresql://u@127.0.0.1/QJQJ",
            "error: sources.db.postgres.database: the value of a secret in source `db` (`database`) would be on the command line of pg_dump",
        ),
    ] {
        let output = execute(&env, "QJQJ", &["--var", var]);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(stderr(&output).contains(message), "{}", stderr(&output));
        assert!(!env.path("argv").exists(), "pg_dump was started");
    }
}

#[test]
fn a_secret_in_a_source_path_is_refused_and_never_recorded() {
    let env = Env::new();
    std::fs::write(env.path("QJQJ"), "data").unwrap();
    let key = env.path("key");
    std::fs::write(&key, "QJQJ\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    env.plan(
        r#"
version: 1
name: paths
vars: { f: a.txt }
secrets:
  key: { file: DIR/key }
  pw: { env: PLANRUN_TEST_PW }
sources:
  cfg: { files: ["DIR/{{secrets.key}}", "DIR/{{env.PLANRUN_TEST_PW}}"] }
  media: { directory: { path: "DIR/{{secrets.pw}}" } }
storage:
  local: { local: { path: DIR/store } }
steps:
  - { id: cfg, backup: cfg }
  - { id: media, backup: media }
"#,
    );
    validate_refuses(
        &env,
        &[
            "error: sources.cfg.files[0]: `secrets.key` in source `cfg` (`files`) would be written in plain text to the backup's `manifest.json` and to reports: source paths are recorded\n",
            "error: sources.cfg.files[1]: `env.PLANRUN_TEST_PW` holds the secret `pw` (read from `PLANRUN_TEST_PW`): `secrets.pw` in source `cfg` (`files`) would be written",
            "error: sources.media.directory.path: `secrets.pw` in source `media` (`path`) would be written in plain text",
            "  = help: name the path without a secret: paths are not secrets\n",
            "plan.yaml: invalid (3 errors)\n",
        ],
    );

    // A `--var` holding a secret's value is refused when the plan is rendered: no set, no
    // manifest with the secret in it.
    env.plan(
        r#"
version: 1
name: paths
vars: { f: a.txt }
secrets:
  key: { file: DIR/key }
sources:
  cfg: { files: ["DIR/{{vars.f}}"] }
storage:
  local: { local: { path: DIR/store } }
steps:
  - { id: cfg, backup: cfg }
"#,
    );
    let output = env.execute(&["--var", "f=QJQJ"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        env.filter(&stderr(&output)).contains(
            "error: sources.cfg.files[0]: the value of a secret in source `cfg` (`files`) would be written in plain text to the backup's `manifest.json` and to reports: source paths are recorded\n"
        ),
        "{}",
        stderr(&output)
    );
    assert!(!env.path("store").exists());
    assert_no_fragment(&env, &output);
}

#[test]
fn an_env_variable_a_secret_comes_from_is_that_secret() {
    let env = Env::new();
    env.plan(
        r#"
version: 1
name: envs
secrets:
  pw: { env: PLANRUN_TEST_PW }
steps:
  - id: argv
    run: [sleep, "0", "{{env.PLANRUN_TEST_PW}}", '{{env "PLANRUN_TEST_PW"}}']
"#,
    );
    Test::in_env(&env)
        .args(["validate", "plan.yaml"])
        .env("PLANRUN_TEST_PW", "QJQJ")
        .status(2)
        .stdout(
            "plan.yaml:8:23: error: steps[0].run[2]: `env.PLANRUN_TEST_PW` holds the secret `pw` (read from `PLANRUN_TEST_PW`): `secrets.pw` in a `run:` argument would show the secret in `ps`
  |
8 |     run: [sleep, \"0\", \"{{env.PLANRUN_TEST_PW}}\", '{{env \"PLANRUN_TEST_PW\"}}']
  |                       ^
  = help: pass it through the step's `env:` and read the variable in the program, or use a `shell:` step
plan.yaml:8:50: error: steps[0].run[3]: `env.PLANRUN_TEST_PW` holds the secret `pw` (read from `PLANRUN_TEST_PW`): `secrets.pw` in a `run:` argument would show the secret in `ps`
  |
8 |     run: [sleep, \"0\", \"{{env.PLANRUN_TEST_PW}}\", '{{env \"PLANRUN_TEST_PW\"}}']
  |                                                  ^
  = help: pass it through the step's `env:` and read the variable in the program, or use a `shell:` step
plan.yaml: invalid (2 errors)
",
        )
        .run();

    // Where the variable may stand, `plan` shows it masked, like the secret it is, and a
    // secret's value reaching argv another way (`--var`) is refused before anything runs.
    env.plan(
        r#"
version: 1
name: envs
vars: { x: fine }
secrets:
  pw: { env: PLANRUN_TEST_PW }
steps:
  - id: script
    shell: echo "{{env.PLANRUN_TEST_PW}}"
  - id: argv
    run: [touch, "DIR/{{vars.x}}"]
"#,
    );
    for json in [false, true] {
        let mut test = env.planrun(["plan", "plan.yaml"]);
        if json {
            test = test.arg("--json");
        }
        let ran = test.env("PLANRUN_TEST_PW", "QJQJ").run();
        // The temp dir's random name may hold a `Q`: filtered out first.
        assert!(!env.filter(&ran.stdout).contains('Q'), "{}", ran.stdout);
        assert!(ran.stdout.contains("***"), "{}", ran.stdout);
    }
    let output = execute(&env, "QJQJ", &["--var", "x=QJQJ"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("error: steps[1].run[1]: this `run:` argument holds the value of a secret, which would show in `ps`; pass it through the step's `env:` instead"),
        "{}",
        stderr(&output)
    );
    assert!(!env.path("QJQJ").exists());
    assert_no_fragment(&env, &output);

    // A refusal that shows what a value holds masks it when the value is a secret's.
    env.plan(
        r#"
version: 1
name: envs
secrets:
  pw: { env: PLANRUN_TEST_PW }
steps:
  - id: script
    shell: echo $(( {{env.PLANRUN_TEST_PW}} + 1 ))
"#,
    );
    let output = execute(&env, "QJ`QJ$(QJ)", &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output)
            .contains("`{{env.PLANRUN_TEST_PW}}` (`'***'`): the value stands in bash arithmetic"),
        "{}",
        stderr(&output)
    );
    assert_no_fragment(&env, &output);
}

/// Seventh attack pass: a secret in a `shell:` script was an argument of `tail`, on its
/// command line for every user's `ps`, while `run:` already refused the same. A secret may be
/// an argument of a bash builtin (`echo`, `printf`, `test`: no process), an assignment before
/// a command (its environment) or a here-string (its stdin), never an argument of a program.
#[test]
fn a_secret_is_never_an_argument_of_a_program_a_script_runs() {
    let env = Env::new();
    let plan = |script: &str| {
        format!(
            "version: 1\nname: argv\nsecrets:\n  pw: {{ env: PW }}\nsteps:\n  - id: s\n    shell: '{script}'\n"
        )
    };
    env.plan_at(
        "bad.yaml",
        &plan("tail -f /dev/null \"{{secrets.pw}}\" 2>/dev/null & sleep 0.3; kill $!"),
    );
    let refused = Test::in_env(&env)
        .args(["validate", "bad.yaml"])
        .status(2)
        .run();
    assert!(
        refused
            .stdout
            .contains("a secret as an argument of `tail` would be on its command line"),
        "{}",
        refused.stdout
    );
    env.plan_at(
        "good.yaml",
        &plan(
            "test -n \"{{secrets.pw}}\"; X=\"{{secrets.pw}}\" printenv X > /dev/null; cat > /dev/null <<< \"{{secrets.pw}}\"",
        ),
    );
    Test::in_env(&env)
        .args(["execute", "good.yaml"])
        .env("PW", "QJQJ-sec")
        .status(0)
        .run();
}
