//! `planrun schedule PLAN --emit cron|systemd|kubernetes`: the plan's `schedule:` and
//! `drill.schedule:` as a crontab line, systemd units, or a Kubernetes CronJob. Nothing here
//! holds a secret value: jobs read secrets at run time from an environment file, a Secret or
//! the files the plan names.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::{CommandError, CommandResult, Console};
use crate::cli::{Emit, ScheduleArgs};
use crate::exit_code;
use crate::pipeline::{self, Loaded};
use crate::plan::{Plan, Schedule, SecretSource, Step};
use crate::schedule::CronSchedule;

/// Where the jobs keep run records, logs and locks unless told otherwise.
const DEFAULT_STATE_DIR: &str = "/var/lib/planrun";
/// The PATH a job runs with: cron's own is too short to find pg_dump and friends.
const JOB_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// What a step without a `timeout` counts for in a job's deadline.
const UNTIMED_STEP_SECS: u64 = 3600;

/// What a job on this host runs: the binary, the plan, the state directory and where the
/// environment comes from. Shared by the cron line and the systemd units.
struct Host {
    bin: PathBuf,
    plan_path: PathBuf,
    state_dir: PathBuf,
    env_file: PathBuf,
    /// The environment variables the plan reads (names only).
    env_names: Vec<String>,
}

/// One scheduled job: the nightly run, or the drill.
struct Job {
    /// `execute` or `drill`.
    command: &'static str,
    /// `planrun-crm` or `planrun-crm-drill`.
    unit: String,
    schedule: CronSchedule,
}

pub fn run(args: &ScheduleArgs, console: &mut Console) -> CommandResult {
    let loaded = pipeline::load(&args.plan)?;
    let plan = &loaded.plan;
    let jobs = jobs(plan)?;
    let host = Host {
        bin: args.bin.clone().unwrap_or_else(this_binary),
        plan_path: absolute(&args.plan),
        state_dir: args
            .state_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
        env_file: args
            .env_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/etc/planrun/{}.env", plan.name))),
        env_names: env_names(&loaded),
    };
    match args.emit {
        Emit::Cron => console.out(&cron(plan, &jobs, &host)),
        Emit::Systemd => {
            let files = systemd(plan, &jobs, &host)?;
            match &args.output_dir {
                Some(dir) => {
                    write_new(dir, &files)?;
                    for (name, _) in &files {
                        console.line(dir.join(name).display());
                    }
                }
                None => {
                    let text: Vec<String> = files
                        .iter()
                        .map(|(name, body)| format!("# ---- {name}\n{body}"))
                        .collect();
                    console.out(&text.join("\n"));
                }
            }
        }
        Emit::Kubernetes => {
            let image = args.image.as_deref().unwrap_or("planrun");
            let bin = args.bin.clone().unwrap_or_else(|| PathBuf::from("planrun"));
            console.out(&kubernetes(plan, &jobs, image, &bin, &host.env_names)?);
        }
    }
    Ok(exit_code::SUCCESS)
}

fn jobs(plan: &Plan) -> Result<Vec<Job>, CommandError> {
    let zone = plan.timezone.as_deref();
    let mut jobs = Vec::new();
    let mut add = |command, unit: String, schedule: &Schedule| -> Result<(), CommandError> {
        jobs.push(Job {
            command,
            unit,
            schedule: CronSchedule::new(schedule, zone).map_err(CommandError::Usage)?,
        });
        Ok(())
    };
    if let Some(schedule) = &plan.schedule {
        add("execute", format!("planrun-{}", plan.name), schedule)?;
    }
    if let Some(schedule) = plan.drill.as_ref().and_then(|d| d.schedule.as_ref()) {
        add("drill", format!("planrun-{}-drill", plan.name), schedule)?;
    }
    if jobs.is_empty() {
        return Err(CommandError::Usage(format!(
            "plan `{}` has no `schedule:`: add e.g. `schedule: {{ cron: \"0 2 * * *\", timezone: UTC }}` (and `drill: {{ schedule: … }}` for drills)",
            plan.name
        )));
    }
    Ok(jobs)
}

/// The environment variables the plan reads: its `env:` secrets and `{{env.NAME}}`
/// references. Their values live in the environment file or Secret, never in what is printed.
fn env_names(loaded: &Loaded) -> Vec<String> {
    let mut names: BTreeSet<String> = loaded
        .plan
        .secrets
        .values()
        .filter_map(|s| match s {
            SecretSource::Env(name) => Some(name.clone()),
            SecretSource::File(_) => None,
        })
        .collect();
    // Every `env.NAME` inside a `{{…}}`, helpers' arguments included (`{{#if env.X}}`).
    let text = loaded.value.value.to_string();
    for mustache in text.split("{{").skip(1) {
        let inside = mustache.split("}}").next().unwrap_or_default();
        for (at, _) in inside.match_indices("env.") {
            let word_start = inside[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'));
            let name: String = inside[at + 4..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if word_start && !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names.into_iter().collect()
}

/// The plan's `file:` secrets, by name.
fn secret_files(plan: &Plan) -> Vec<(&str, &str)> {
    plan.secrets
        .iter()
        .filter_map(|(name, s)| match s {
            SecretSource::File(path) => Some((name.as_str(), path.as_str())),
            SecretSource::Env(_) => None,
        })
        .collect()
}

fn this_binary() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/usr/local/bin/planrun"))
}

/// The path made absolute and without `.` or `..` parts, as a job started elsewhere needs it.
fn absolute(path: &Path) -> PathBuf {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    path.canonicalize().unwrap_or(path)
}

fn quote(path: &Path) -> String {
    let text = path.display().to_string();
    shlex::try_quote(&text)
        .map(|q| q.into_owned())
        .unwrap_or(text)
}

fn cron(plan: &Plan, jobs: &[Job], host: &Host) -> String {
    let Host {
        bin,
        plan_path,
        state_dir,
        env_file,
        env_names,
    } = host;
    let mut out = String::new();
    writeln!(
        out,
        "# planrun plan `{}` ({}): add with `crontab -e`.",
        plan.name,
        plan_path.display()
    )
    .ok();
    writeln!(
        out,
        "# planrun takes its own lock (a second run exits 4), so no flock is needed; --quiet"
    )
    .ok();
    writeln!(out, "# prints only failures, so cron mails only failures.").ok();
    let load_env = if env_names.is_empty() {
        String::new()
    } else {
        writeln!(
            out,
            "# {} (mode 0600, NAME=value lines) must set: {}.",
            env_file.display(),
            env_names.join(", ")
        )
        .ok();
        format!("set -a; . {}; set +a; ", quote(env_file))
    };
    writeln!(
        out,
        "# CRON_TZ is honoured by cronie; other crons read the times in the host's zone."
    )
    .ok();
    for job in jobs {
        // `%` ends a crontab command line; escape it wherever a path holds one.
        let line = format!(
            "PATH={JOB_PATH}; {load_env}exec {} {} --quiet --state-dir {} {}",
            quote(bin),
            job.command,
            quote(state_dir),
            quote(plan_path)
        )
        .replace('%', "\\%");
        writeln!(out, "CRON_TZ={}", job.schedule.zone.name()).ok();
        writeln!(out, "{} {line}", job.schedule.expression).ok();
    }
    out
}

/// An upper bound on how long a run may take: every step's attempts at their timeouts,
/// the retry delays, and the grace to stop each. Steps run in parallel finish sooner.
fn run_budget(plan: &Plan) -> (u64, Vec<String>) {
    let grace = plan.kill_grace.map_or(10, |d| d.as_std().as_secs());
    let mut untimed = Vec::new();
    let mut total = 0;
    let mut count = |step: &Step, fallback_id: String| {
        let attempts = u64::from(step.retries.unwrap_or(0)) + 1;
        let timeout = match step.timeout {
            Some(t) => t.as_std().as_secs().max(1),
            None => {
                untimed.push(step.id.clone().unwrap_or(fallback_id));
                UNTIMED_STEP_SECS
            }
        };
        // Backoff doubles from `retry_delay`, capped at 5 minutes.
        let mut delay = step.retry_delay.map_or(1, |d| d.as_std().as_secs());
        let mut delays = 0;
        for _ in 1..attempts {
            delays += delay.min(300);
            delay = delay.saturating_mul(2);
        }
        total += attempts * (timeout + grace) + delays;
    };
    for (i, step) in plan.steps.iter().enumerate() {
        count(step, format!("steps.{}", i + 1));
        for (j, rollback) in step.rollback.iter().enumerate() {
            count(rollback, format!("steps.{}.rollback.{}", i + 1, j + 1));
        }
    }
    for (i, step) in plan.on_failure.iter().enumerate() {
        count(step, format!("on_failure.{}", i + 1));
    }
    for (i, step) in plan.always.iter().enumerate() {
        count(step, format!("always.{}", i + 1));
    }
    (total, untimed)
}

/// A job's deadline: [`run_budget`] for runs; for drills, an allowance per restore and check.
fn job_budget(plan: &Plan, job: &Job) -> (u64, Vec<String>) {
    match (job.command, &plan.drill) {
        ("drill", Some(drill)) => (
            drill.restore.len() as u64 * UNTIMED_STEP_SECS + drill.checks.len() as u64 * 600,
            Vec::new(),
        ),
        _ => run_budget(plan),
    }
}

fn minutes(secs: u64) -> String {
    format!("{}min", secs.div_ceil(60).max(1))
}

fn systemd(plan: &Plan, jobs: &[Job], host: &Host) -> Result<Vec<(String, String)>, CommandError> {
    let Host {
        bin,
        plan_path,
        state_dir,
        env_file,
        env_names,
    } = host;
    let grace = plan.kill_grace.map_or(10, |d| d.as_std().as_secs());
    let mut files = Vec::new();
    for job in jobs {
        let (budget, untimed) = job_budget(plan, job);
        let calendars = job.schedule.on_calendar().map_err(CommandError::Usage)?;
        let what = match job.command {
            "drill" => "restore drill",
            _ => "backup run",
        };
        let mut service = String::new();
        writeln!(
            service,
            "[Unit]\nDescription=planrun plan {}: {what}\nDocumentation=man:planrun(1)\nWants=network-online.target\nAfter=network-online.target\n",
            plan.name
        )
        .ok();
        writeln!(service, "[Service]\nType=oneshot").ok();
        // Not `--quiet`: the journal keeps every run's step lines, and a failure is seen in
        // `systemctl status` and through the plan's own notifications.
        writeln!(
            service,
            "ExecStart={} {} --state-dir {} {}",
            systemd_arg(bin),
            job.command,
            systemd_arg(state_dir),
            systemd_arg(plan_path)
        )
        .ok();
        writeln!(service, "Environment=PATH={JOB_PATH}").ok();
        if !env_names.is_empty() {
            writeln!(
                service,
                "# {} (mode 0600) sets: {}",
                env_file.display(),
                env_names.join(", ")
            )
            .ok();
            writeln!(service, "EnvironmentFile={}", systemd_arg(env_file)).ok();
        }
        if job.command == "drill" {
            writeln!(
                service,
                "# {} for each restore and 10min for each check of the drill.",
                minutes(UNTIMED_STEP_SECS)
            )
            .ok();
        } else {
            if !untimed.is_empty() {
                writeln!(
                    service,
                    "# Steps without a timeout, each counted as {} here: {}",
                    minutes(UNTIMED_STEP_SECS),
                    untimed.join(", ")
                )
                .ok();
            }
            writeln!(
                service,
                "# The sum of the steps' timeouts, retries and kill grace."
            )
            .ok();
        }
        writeln!(service, "TimeoutStartSec={}", minutes(budget)).ok();
        writeln!(
            service,
            "# planrun stops its own children (TERM, grace, KILL) and cleans up: signal it alone first.\nKillMode=mixed\nTimeoutStopSec={}s",
            grace * 2 + 60
        )
        .ok();
        writeln!(
            service,
            "# Hardening that leaves pg_dump, sqlite3, tar and git working (no syscall filter,\n# network and Unix sockets allowed, /var writable for sets and state).\nNoNewPrivileges=yes\nPrivateTmp=yes\nProtectSystem=full\nProtectKernelTunables=yes\nProtectKernelModules=yes\nProtectControlGroups=yes\nRestrictSUIDSGID=yes\nRestrictRealtime=yes\nLockPersonality=yes\nUMask=0077"
        )
        .ok();
        let mut timer = String::new();
        writeln!(
            timer,
            "[Unit]\nDescription=planrun plan {}: {what} schedule ({})\n\n[Timer]",
            plan.name, job.schedule.expression
        )
        .ok();
        for calendar in calendars {
            writeln!(timer, "OnCalendar={calendar}").ok();
        }
        writeln!(
            timer,
            "# A run missed while the machine was off starts at the next boot.\nPersistent=true\nUnit={}.service\n\n[Install]\nWantedBy=timers.target\n",
            job.unit
        )
        .ok();
        files.push((format!("{}.service", job.unit), service));
        files.push((format!("{}.timer", job.unit), timer));
    }
    Ok(files)
}

/// A path as one systemd command-line word: quoted when it holds a space, `%` doubled.
fn systemd_arg(path: &Path) -> String {
    let text = path.display().to_string().replace('%', "%%");
    if text.contains([' ', '"', '\'', '\\']) {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        text
    }
}

/// Writes each file into `dir`, refusing any that exists: units someone edited are theirs.
fn write_new(dir: &Path, files: &[(String, String)]) -> Result<(), CommandError> {
    for (name, _) in files {
        let path = dir.join(name);
        if path.symlink_metadata().is_ok() {
            return Err(CommandError::Usage(format!(
                "{} exists; remove it or choose another --output-dir",
                path.display()
            )));
        }
    }
    std::fs::create_dir_all(dir).map_err(|error| CommandError::Write {
        path: dir.to_owned(),
        error,
    })?;
    for (name, body) in files {
        let path = dir.join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut file| std::io::Write::write_all(&mut file, body.as_bytes()))
            .map_err(|error| CommandError::Write { path, error })?;
    }
    Ok(())
}

/// A name Kubernetes accepts for a Secret key.
fn key_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn kubernetes(
    plan: &Plan,
    jobs: &[Job],
    image: &str,
    bin: &Path,
    env_names: &[String],
) -> Result<String, CommandError> {
    let name = format!("planrun-{}", plan.name);
    let labels = json!({ "app.kubernetes.io/name": "planrun", "planrun.dev/plan": plan.name });
    // The plan as the job reads it: includes merged in, so one ConfigMap key holds it all.
    let mut merged = plan.clone();
    merged.include.clear();
    let plan_text = serde_saphyr::to_string(&merged)
        .map_err(|e| CommandError::Usage(format!("cannot write the plan as YAML: {e}")))?;
    let files = secret_files(plan);
    let mut docs = vec![
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "name": format!("{name}-plan"), "labels": labels },
            "data": { "plan.yaml": plan_text },
        }),
        json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": { "name": format!("{name}-state"), "labels": labels },
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": { "requests": { "storage": "1Gi" } },
            },
        }),
    ];
    for job in jobs {
        let (budget, _) = job_budget(plan, job);
        let mut mounts = vec![
            // A subPath mount is a plain file; a ConfigMap folder is a symlink farm, which
            // planrun's trusted-file reader would rightly refuse.
            json!({ "name": "plan", "mountPath": "/etc/planrun/plan.yaml", "subPath": "plan.yaml", "readOnly": true }),
            json!({ "name": "state", "mountPath": DEFAULT_STATE_DIR }),
        ];
        let mut volumes = vec![
            json!({ "name": "plan", "configMap": { "name": format!("{name}-plan") } }),
            json!({ "name": "state", "persistentVolumeClaim": { "claimName": format!("{name}-state") } }),
        ];
        if !files.is_empty() {
            for (secret, path) in &files {
                mounts.push(json!({
                    "name": "secret-files",
                    "mountPath": path,
                    "subPath": key_name(secret),
                    "readOnly": true,
                }));
            }
            volumes.push(json!({
                "name": "secret-files",
                "secret": { "secretName": format!("{name}-files"), "defaultMode": 0o400 },
            }));
        }
        let mut container = json!({
            "name": "planrun",
            "image": image,
            "command": [bin.display().to_string()],
            "args": [job.command, "--state-dir", DEFAULT_STATE_DIR, "/etc/planrun/plan.yaml"],
            "volumeMounts": mounts,
        });
        if !env_names.is_empty() {
            container["envFrom"] = json!([{ "secretRef": { "name": name } }]);
        }
        docs.push(json!({
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": { "name": job.unit, "labels": labels },
            "spec": {
                "schedule": job.schedule.expression,
                "timeZone": job.schedule.zone.name(),
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 3600,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": { "spec": {
                    "backoffLimit": 1,
                    "activeDeadlineSeconds": budget,
                    "template": {
                        "metadata": { "labels": labels },
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [container],
                            "volumes": volumes,
                        },
                    },
                }},
            },
        }));
    }
    let mut out = String::new();
    writeln!(
        out,
        "# planrun plan `{}`: apply with `kubectl apply -f`.\n# Steps retry themselves and planrun cleans up after a killed run, so one more try\n# (backoffLimit: 1) is safe; activeDeadlineSeconds is the sum of the steps' timeouts.",
        plan.name
    )
    .ok();
    if !env_names.is_empty() {
        writeln!(
            out,
            "# Secrets as environment, created apart so no value is in this file:\n#   kubectl create secret generic {name} --from-env-file=FILE  (FILE sets {})",
            env_names.join(", ")
        )
        .ok();
    }
    if !files.is_empty() {
        let from: Vec<String> = files
            .iter()
            .map(|(secret, path)| format!("--from-file={}={path}", key_name(secret)))
            .collect();
        writeln!(
            out,
            "# Secret files, mounted where the plan reads them:\n#   kubectl create secret generic {name}-files {}",
            from.join(" ")
        )
        .ok();
    }
    let docs: Result<Vec<String>, _> = docs.iter().map(serde_saphyr::to_string).collect();
    let docs =
        docs.map_err(|e| CommandError::Usage(format!("cannot write the manifest as YAML: {e}")))?;
    for doc in docs {
        out.push_str("---\n");
        out.push_str(&doc);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}
