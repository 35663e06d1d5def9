//! Operations: schedules (`plan`'s next runs, `schedule --emit cron|systemd|kubernetes`,
//! checked by systemd-analyze and a YAML parser), `init`, completions and the man page, and
//! the terminal: `--quiet`, `-v`, the one-line-per-step output, no escape codes under a
//! pipe, progress drawn under a pseudo-terminal.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use chrono::{Datelike, TimeZone, Utc};
use serde_json::Value;
use support::{Env, Test};

const SCHEDULED: &str = r#"
version: 1
name: crm
timezone: America/Sao_Paulo
secrets:
  db_password: { env: CRM_DB_PASSWORD }
  s3_secret: { file: DIR/s3.secret }
sources:
  media: { directory: { path: DIR/media } }
storage:
  local: { local: { path: DIR/backups } }
retention: { keep_last: 3 }
schedule: { cron: "0 2 1 1 *" }
steps:
  - { id: media, backup: media, timeout: 30m, retries: 1 }
  - id: ping
    shell: "test -n {{secrets.db_password}}"
    needs: [media]
    timeout: 1m
    env: { URL: "{{env.PING_URL}}" }
drill:
  schedule: { cron: "0 4 * * 1-5", timezone: UTC }
  restore:
    media: { path: "{{run.scratch}}/media" }
"#;

fn scheduled() -> Env {
    let env = Env::new();
    env.plan(SCHEDULED);
    std::fs::write(env.path("s3.secret"), "k3y\n").unwrap();
    std::fs::set_permissions(env.path("s3.secret"), PermissionsExt::from_mode(0o600)).unwrap();
    env
}

#[test]
fn plan_shows_each_schedule_with_its_next_three_runs_in_its_zone() {
    let env = scheduled();
    let ran = env
        .planrun(["plan", "plan.yaml"])
        .env("CRM_DB_PASSWORD", "pw-Zq7")
        .env("PING_URL", "http://localhost/")
        .run();
    // `0 2 1 1 *` in São Paulo (UTC-3): 1 January at 05:00 UTC of the next three years.
    let now = Utc::now();
    let first = if now < Utc.with_ymd_and_hms(now.year(), 1, 1, 5, 0, 0).unwrap() {
        now.year()
    } else {
        now.year() + 1
    };
    let jan1 = |y: i32| {
        let day = chrono::NaiveDate::from_ymd_opt(y, 1, 1).unwrap();
        format!("  next {} {y}-01-01 02:00 -03\n", day.format("%a"))
    };
    let expected = format!(
        "schedule: 0 2 1 1 * (America/Sao_Paulo)\n{}{}{}drill.schedule: 0 4 * * 1-5 (UTC)\n",
        jan1(first),
        jan1(first + 1),
        jan1(first + 2)
    );
    assert!(ran.stdout.contains(&expected), "{}", ran.stdout);
    let drill_lines: Vec<&str> = ran
        .stdout
        .split("drill.schedule: 0 4 * * 1-5 (UTC)\n")
        .nth(1)
        .unwrap()
        .lines()
        .collect();
    assert_eq!(drill_lines.len(), 3, "{}", ran.stdout);
    for line in drill_lines {
        assert!(line.ends_with(" 04:00 UTC"), "{line}");
        assert!(!line.starts_with("  next Sat") && !line.starts_with("  next Sun"));
    }

    let json = env
        .planrun(["plan", "--json", "plan.yaml"])
        .env("CRM_DB_PASSWORD", "pw-Zq7")
        .env("PING_URL", "http://localhost/")
        .run();
    let json: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["schedules"]["schedule"]["cron"], "0 2 1 1 *");
    assert_eq!(
        json["schedules"]["schedule"]["next"][0],
        format!("{first}-01-01T02:00:00-03:00")
    );
    assert_eq!(json["schedules"]["drill.schedule"]["timezone"], "UTC");
}

#[test]
fn cron_emit_is_one_exact_line_per_schedule_with_its_environment() {
    let env = scheduled();
    let ran = env
        .planrun([
            "schedule",
            "plan.yaml",
            "--emit",
            "cron",
            "--bin",
            "/usr/local/bin/planrun",
        ])
        .stdout(
            "# planrun plan `crm` (DIR/plan.yaml): add with `crontab -e`.
# planrun takes its own lock (a second run exits 4), so no flock is needed; --quiet
# prints only failures, so cron mails only failures.
# /etc/planrun/crm.env (mode 0600, NAME=value lines) must set: CRM_DB_PASSWORD, PING_URL.
# CRON_TZ is honoured by cronie; other crons read the times in the host's zone.
CRON_TZ=America/Sao_Paulo
0 2 1 1 * PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; set -a; . /etc/planrun/crm.env; set +a; exec /usr/local/bin/planrun execute --quiet --state-dir /var/lib/planrun DIR/plan.yaml
CRON_TZ=UTC
0 4 * * 1-5 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; set -a; . /etc/planrun/crm.env; set +a; exec /usr/local/bin/planrun drill --quiet --state-dir /var/lib/planrun DIR/plan.yaml
",
        )
        .run();
    // The secret file's content and the env secret's value never appear.
    assert!(!ran.stdout.contains("k3y"));
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let env = scheduled();
    let units = env.path("units");
    env.planrun(["schedule", "plan.yaml", "--emit", "systemd", "--output-dir"])
        .arg(&units)
        .run();
    let mut names: Vec<String> = std::fs::read_dir(&units)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "planrun-crm-drill.service",
            "planrun-crm-drill.timer",
            "planrun-crm.service",
            "planrun-crm.timer"
        ]
    );
    let service = std::fs::read_to_string(units.join("planrun-crm.service")).unwrap();
    let bin = env!("CARGO_BIN_EXE_planrun");
    assert!(
        service.contains(&format!(
            "\nExecStart={bin} execute --state-dir /var/lib/planrun {}\n",
            env.path("plan.yaml").display()
        )),
        "{service}"
    );
    assert!(service.contains("\nEnvironmentFile=/etc/planrun/crm.env\n"));
    // media: 2 attempts × (30m + 10s grace) + 1s delay; ping: 1m + 10s.
    assert!(service.contains("\nTimeoutStartSec=62min\n"), "{service}");
    assert!(service.contains("\nNoNewPrivileges=yes\n"));
    let timer = std::fs::read_to_string(units.join("planrun-crm.timer")).unwrap();
    assert!(
        timer.contains("\nOnCalendar=*-01-01 02:00:00 America/Sao_Paulo\n"),
        "{timer}"
    );
    assert!(timer.contains("\nPersistent=true\n"));
    let drill = std::fs::read_to_string(units.join("planrun-crm-drill.timer")).unwrap();
    assert!(
        drill.contains("\nOnCalendar=Mon,Tue,Wed,Thu,Fri *-*-* 04:00:00 UTC\n"),
        "{drill}"
    );

    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no", "--generators=no"])
        .args(names.iter().map(|n| units.join(n)))
        .output()
        .expect("systemd-analyze (Debian package `systemd`)");
    assert_eq!(
        (
            verify.status.code(),
            String::from_utf8_lossy(&verify.stderr).into_owned()
        ),
        (Some(0), String::new()),
    );

    // A second emit into the same folder overwrites nothing.
    env.planrun(["schedule", "plan.yaml", "--emit", "systemd", "--output-dir"])
        .arg(&units)
        .status(2)
        .stderr(
            "planrun: DIR/units/planrun-crm.service exists; remove it or choose another --output-dir\n",
        )
        .run();
}

#[test]
fn kubernetes_emit_parses_and_has_what_a_cronjob_needs() {
    let env = scheduled();
    let ran = env
        .planrun([
            "schedule",
            "plan.yaml",
            "--emit",
            "kubernetes",
            "--image",
            "registry.example/planrun:1",
        ])
        .run();
    assert!(!ran.stdout.contains("k3y"));
    let docs: Vec<Value> = serde_saphyr::from_multiple(&ran.stdout).unwrap();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["ConfigMap", "PersistentVolumeClaim", "CronJob", "CronJob"]
    );
    let job = &docs[2];
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["metadata"]["name"], "planrun-crm");
    assert_eq!(job["spec"]["schedule"], "0 2 1 1 *");
    assert_eq!(job["spec"]["timeZone"], "America/Sao_Paulo");
    assert_eq!(job["spec"]["concurrencyPolicy"], "Forbid");
    let spec = &job["spec"]["jobTemplate"]["spec"];
    assert_eq!(spec["backoffLimit"], 1);
    assert_eq!(spec["activeDeadlineSeconds"], 2 * (1800 + 10) + 1 + 60 + 10);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "registry.example/planrun:1");
    assert_eq!(
        container["args"],
        serde_json::json!([
            "execute",
            "--state-dir",
            "/var/lib/planrun",
            "/etc/planrun/plan.yaml"
        ])
    );
    assert_eq!(container["envFrom"][0]["secretRef"]["name"], "planrun-crm");
    let volumes = pod["volumes"].as_array().unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v["configMap"]["name"] == "planrun-crm-plan")
    );
    assert!(
        volumes
            .iter()
            .any(|v| v["persistentVolumeClaim"]["claimName"] == "planrun-crm-state")
    );
    assert!(
        volumes
            .iter()
            .any(|v| v["secret"]["secretName"] == "planrun-crm-files")
    );
    let mounts = container["volumeMounts"].as_array().unwrap();
    let secret_file = env.path("s3.secret").display().to_string();
    assert!(
        mounts
            .iter()
            .any(|m| m["mountPath"] == secret_file.as_str() && m["subPath"] == "s3_secret")
    );
    assert_eq!(
        docs[3]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"][0],
        "drill"
    );

    // The ConfigMap's plan is a whole plan: it validates on its own.
    let plan = docs[0]["data"]["plan.yaml"].as_str().unwrap();
    env.plan_at("from-configmap.yaml", plan);
    let valid = env.planrun(["validate", "from-configmap.yaml"]).run();
    assert!(
        valid
            .stdout
            .ends_with("from-configmap.yaml: valid (3 warnings)\n"),
        "{}",
        valid.stdout
    );
}

#[test]
fn schedule_without_a_schedule_says_what_to_add() {
    Test::new()
        .plan("version: 1\nname: bare\nsteps:\n  - { id: a, run: [\"true\"] }\n")
        .args(["schedule", "plan.yaml", "--emit", "cron"])
        .status(2)
        .stderr("planrun: plan `bare` has no `schedule:`: add e.g. `schedule: { cron: \"0 2 * * *\", timezone: UTC }` (and `drill: { schedule: … }` for drills)\n")
        .run();
}

const TWO_STEPS: &str = r#"
version: 1
name: tidy
sources:
  media: { directory: { path: DIR/media } }
storage:
  local: { local: { path: DIR/backups } }
steps:
  - { id: media, backup: media }
  - { id: second, needs: [media], shell: "echo two; exit ${CODE:-0}" }
always:
  - { id: ping, shell: "true" }
"#;

fn two_steps() -> Env {
    let env = Env::new();
    env.plan(TWO_STEPS);
    std::fs::create_dir(env.path("media")).unwrap();
    std::fs::write(env.path("media/a.txt"), vec![b'x'; 300 * 1024]).unwrap();
    env
}

/// `media  succeeded    T  123.4 KiB  …/s` with the size and rate replaced.
fn sizes(text: &str) -> String {
    text.lines()
        .map(|line| {
            let mut words: Vec<&str> = line.split("  ").collect();
            for w in &mut words {
                if w.ends_with("B/s") {
                    *w = "RATE";
                } else if w.ends_with(" KiB") || w.ends_with(" B") {
                    *w = "SIZE";
                }
            }
            let line = words.join("  ");
            // `(123 bytes)` in the set's line.
            let line = match (line.find("artifact ("), line.rfind(" bytes)")) {
                (Some(a), Some(b)) => format!("{}(SIZE){}", &line[..a + 9], &line[b + 7..]),
                _ => line,
            };
            format!("{line}\n")
        })
        .collect()
}

#[test]
fn default_output_is_one_line_per_step_with_size_and_throughput() {
    let env = two_steps();
    let output = env.execute(&[]);
    assert_eq!(output.status.code(), Some(0));
    let err = sizes(&env.filter(&String::from_utf8(output.stderr).unwrap()));
    let err = err.replace("  RATE", "");
    assert_eq!(
        err,
        "planrun: plan `tidy`, run RUN: 2 steps, then 1 `always`
planrun: set RUN is complete: manifest written with 1 artifact (SIZE)
media   succeeded    T  SIZE
second  succeeded    T
ping    succeeded    T  (always)
planrun: run succeeded in T (exit code 0); log: DIR/state/logs/RUN.log
"
    );
    // The log names planrun once, never `planrun planrun:`.
    let log = env.log();
    assert!(log.contains(" planrun: run "), "{log}");
    assert!(!log.contains("planrun planrun"), "{log}");
}

#[test]
fn verbose_adds_starts_hashes_facts_and_a_summary() {
    let env = two_steps();
    let output = env.execute(&["-v"]);
    assert_eq!(output.status.code(), Some(0));
    let err = env.filter(&String::from_utf8(output.stderr).unwrap());
    assert!(err.contains("[media] started\n"), "{err}");
    assert!(err.contains("    media | media.tar.zst: "), "{err}");
    assert!(err.contains(", sha256 "), "{err}");
    assert!(err.contains("\"files\":1"), "{err}");
    assert!(
        err.contains("\nsummary:\n  media   succeeded    T\n"),
        "{err}"
    );
}

#[test]
fn quiet_is_silent_on_success_and_prints_the_failure_summary_on_failure() {
    let env = two_steps();
    let output = env.execute(&["--quiet"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");

    let failed = env
        .planrun(["-q", "execute", "plan.yaml", "--state-dir"])
        .arg(env.state())
        .env("CODE", "5")
        .output();
    assert_eq!(failed.status.code(), Some(1));
    let err = sizes(&env.filter(&String::from_utf8(failed.stderr).unwrap()));
    let err = err.replace("  RATE", "");
    assert!(
        err.contains(
            "second  failed       T: exit code 5
    second | two
ping    succeeded    T  (always)
planrun: run failed in T (exit code 1); log: DIR/state/logs/RUN.log
"
        ),
        "{err}"
    );
}

#[test]
fn no_escape_codes_under_a_pipe() {
    let env = two_steps();
    for extra in [&[][..], &["-v"], &["--json"]] {
        let output = env.execute(extra);
        assert_eq!(output.status.code(), Some(0));
        assert!(!output.stderr.contains(&0x1b), "{extra:?}");
        assert!(!output.stdout.contains(&0x1b), "{extra:?}");
        assert!(!output.stderr.contains(&b'\r'), "{extra:?}");
    }
}

/// Runs `planrun ARGS` under a pseudo-terminal (util-linux `script`) and returns what the
/// terminal received. `STATE` in ARGS is the test's state dir.
fn under_pty(env: &Env, args: &str) -> String {
    let args = args.replace("STATE", &env.state().display().to_string());
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_planrun"));
    let output = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .current_dir(env.dir())
        .env("TERM", "xterm")
        .output()
        .expect("script (util-linux)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn progress_is_drawn_under_a_terminal_and_not_under_quiet() {
    let env = Env::new();
    env.plan(
        r#"
version: 1
name: slow
sources:
  media: { directory: { path: DIR/media } }
storage:
  local: { local: { path: DIR/backups } }
steps:
  - { id: media, backup: media }
  - { id: nap, run: [sleep, "0.6"], needs: [media] }
"#,
    );
    std::fs::create_dir(env.path("media")).unwrap();
    std::fs::write(env.path("media/a"), vec![7u8; 1 << 20]).unwrap();
    let shown = under_pty(&env, "execute plan.yaml --state-dir STATE");
    assert!(shown.contains("nap running for"), "{shown:?}");
    // The data line: bytes written so far and the rate.
    assert!(shown.contains(" data "), "{shown:?}");
    assert!(shown.contains("B/s"), "{shown:?}");
    assert!(shown.contains('\u{1b}'), "{shown:?}");
    assert!(shown.contains("nap    succeeded"), "{shown:?}");

    let quiet = under_pty(&env, "execute --quiet plan.yaml --state-dir STATE");
    assert_eq!(quiet, "");
}

#[test]
fn diagnostics_are_coloured_at_a_terminal_unless_no_color() {
    let env = Env::new();
    env.plan("version: 1\nname: bad\nsteps:\n  - { id: a, timout: 3s, run: [\"true\"] }\n");
    let shown = under_pty(&env, "validate plan.yaml");
    assert!(shown.contains("\u{1b}["), "{shown:?}");
    assert!(shown.contains("did you mean `timeout`?"), "{shown:?}");
    // The same error on stderr, from a command that reads the plan.
    let shown = under_pty(&env, "execute plan.yaml --state-dir STATE");
    assert!(shown.contains("\u{1b}["), "{shown:?}");

    let plain = Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(format!(
            "{} validate plan.yaml",
            env!("CARGO_BIN_EXE_planrun")
        ))
        .arg("/dev/null")
        .current_dir(env.dir())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let plain = String::from_utf8_lossy(&plain.stdout);
    assert!(!plain.contains('\u{1b}'), "{plain:?}");
    assert!(
        plain.contains("plan.yaml:4:14: error: steps[0]: unknown key `timout`"),
        "{plain:?}"
    );
}

#[test]
fn bash_completion_loads_and_names_the_commands() {
    let bin = env!("CARGO_BIN_EXE_planrun");
    let output = Command::new("bash")
        .args([
            "-c",
            &format!("source <({bin} completions bash) && complete -p planrun"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "complete -o bashdefault -o default -o nosort -F _planrun planrun\n",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for shell in ["zsh", "fish"] {
        let ran = Test::new().args(["completions", shell]).run();
        assert!(ran.stdout.contains("schedule"), "{shell}");
    }
    let bash = Test::new().args(["completions", "bash"]).run();
    for word in ["schedule", "init", "--quiet", "--emit"] {
        assert!(bash.stdout.contains(word), "{word}");
    }
}

#[test]
fn man_page_is_roff_for_planrun() {
    let ran = Test::new().args(["man"]).run();
    assert!(
        ran.stdout.starts_with(".ie \\n(.g .ds Aq"),
        "{}",
        &ran.stdout[..200]
    );
    assert!(
        ran.stdout.contains(".TH planrun 1"),
        "{}",
        &ran.stdout[..400]
    );
    assert!(ran.stdout.contains("schedule"));
}

#[test]
fn init_writes_a_commented_plan_that_validates_with_secrets_by_reference() {
    let env = Env::new();
    std::fs::create_dir(env.path("media")).unwrap();
    let ran = env
        .planrun([
            "init",
            "crm.yaml",
            "--postgres",
            "postgres://crm:hunter2@db.internal:5433/crm",
            "--dir",
            "media",
            "--files",
            "/srv/crm/.env",
            "/srv/crm/settings.py",
            "--git",
            "/srv/crm",
            "--to",
            "backups",
            "--s3",
            "s3://crm-backups/nightly",
        ])
        .stdout(
            "wrote crm.yaml (plan `crm`, valid)
set before running: CRM_DB_PASSWORD, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (secrets are read at run time, never stored in the plan)
next: planrun plan crm.yaml, then planrun execute crm.yaml
",
        )
        .run();
    drop(ran);
    let text = std::fs::read_to_string(env.path("crm.yaml")).unwrap();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        text.contains("db_password: { env: CRM_DB_PASSWORD }"),
        "{text}"
    );
    assert!(
        text.contains("password: \"{{secrets.db_password}}\""),
        "{text}"
    );
    assert!(text.contains("\n# "), "commented: {text}");
    assert!(text.contains("bucket: \"crm-backups\""), "{text}");
    assert!(text.contains("prefix: \"nightly/\""), "{text}");
    let mode = std::fs::metadata(env.path("crm.yaml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    env.planrun(["validate", "crm.yaml"])
        .stdout("crm.yaml: valid\n")
        .run();
    assert!(text.contains("\ndrill:\n"), "{text}");
    let plan: Value = serde_json::from_str(
        &env.planrun(["plan", "--json", "crm.yaml"])
            .env("CRM_DB_PASSWORD", "pw-Zq7")
            .env("AWS_ACCESS_KEY_ID", "AKIA-test-Zq7")
            .env("AWS_SECRET_ACCESS_KEY", "secret-Zq7-key")
            .run()
            .stdout,
    )
    .unwrap();
    let ids: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "db", "media", "config", "code", "verify", "offsite", "prune"
        ]
    );
}

#[test]
fn init_never_overwrites_and_needs_something_to_back_up() {
    let env = Env::new();
    std::fs::write(env.path("mine.yaml"), "keep me\n").unwrap();
    env.planrun(["init", "mine.yaml", "--sqlite", "app.db"])
        .status(2)
        .stderr(
            "planrun: mine.yaml exists: planrun init never overwrites a file; name another path\n",
        )
        .run();
    assert_eq!(
        std::fs::read_to_string(env.path("mine.yaml")).unwrap(),
        "keep me\n"
    );
    env.planrun(["init", "new.yaml"])
        .status(2)
        .stderr("planrun: name at least one thing to back up: --postgres, --sqlite, --dir, --files or --git\n")
        .run();
    assert!(!env.path("new.yaml").exists());
    // A local-only plan from one flag validates too.
    env.planrun(["init", "small.yaml", "--sqlite", "app.db", "-q"])
        .stdout("")
        .run();
    // Valid, with the 3-2-1 advice a local-only plan deserves.
    let small = env.planrun(["validate", "small.yaml"]).run();
    assert!(
        small.stdout.ends_with("small.yaml: valid (3 warnings)\n"),
        "{}",
        small.stdout
    );
}

#[test]
fn validate_json_is_format_json() {
    let env = Env::new();
    env.plan("version: 1\nname: ok\nsteps:\n  - { id: a, run: [\"true\"] }\n");
    let a = env.planrun(["validate", "--json", "plan.yaml"]).run();
    let b = env
        .planrun(["validate", "--format", "json", "plan.yaml"])
        .run();
    assert_eq!(a.stdout, b.stdout);
    let v: Value = serde_json::from_str(&a.stdout).unwrap();
    assert_eq!(v["valid"], true);
    // `--quiet`: nothing for a valid plan, everything for an invalid one.
    env.planrun(["validate", "-q", "plan.yaml"])
        .stdout("")
        .run();
    env.plan_at("bad.yaml", "version: 1\nname: Bad\n");
    let bad = env.planrun(["validate", "-q", "bad.yaml"]).status(2).run();
    assert!(
        bad.stdout.ends_with("bad.yaml: invalid (1 error)\n"),
        "{}",
        bad.stdout
    );
}

#[test]
fn paths_above_the_plan_folder_are_shown_normalised() {
    let env = Env::new();
    std::fs::create_dir(env.path("plans")).unwrap();
    env.plan_at(
        "plans/plan.yaml",
        r#"
version: 1
name: up
storage:
  local: { local: { path: "{{plan.dir}}/../backups" } }
steps:
  - { id: where, shell: "echo {{set.path}}" }
"#,
    );
    let ran = env.planrun(["plan", "plans/plan.yaml"]).run();
    let shown = env.filter(&ran.stdout);
    assert!(
        shown.contains("$PLANRUN_V_1 = DIR/backups/up/RUN\n"),
        "{shown}"
    );
}

/// Keys in an `--s3` URL and a password in a libpq keyword string never reach the plan or
/// the terminal: init refuses them without repeating them, and leaves no file behind.
#[test]
fn init_refuses_credentials_in_its_flags_without_repeating_them() {
    let env = Env::new();
    let s3 = env
        .planrun([
            "init",
            "d.yaml",
            "--sqlite",
            "app.db",
            "--s3",
            "s3://AKIAQJQJ:SkQJQJFour@bucket/pre",
        ])
        .status(2)
        .run();
    assert!(!s3.stderr.contains("QJQJ"), "{}", s3.stderr);
    assert!(
        s3.stderr.contains("keys never go in the URL"),
        "{}",
        s3.stderr
    );
    assert!(!env.path("d.yaml").exists());
    let pg = env
        .planrun([
            "init",
            "c.yaml",
            "--postgres",
            "host=localhost dbname=crm user=crm password=PwQJQJ",
        ])
        .status(2)
        .run();
    assert!(!pg.stderr.contains("QJQJ"), "{}", pg.stderr);
    assert!(pg.stderr.contains("not a keyword string"), "{}", pg.stderr);
    assert!(!env.path("c.yaml").exists());
}
