//! The command line: clap definitions, parsed into a [`Command`]. Parsing stops here;
//! `command::main` runs what was parsed.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::exit_code;

#[derive(Debug, Parser)]
#[command(
    name = "planrun",
    version,
    about = "Declarative backup and disaster-recovery plans: validate, execute, drill, recover",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub verbosity: Verbosity,
}

/// `--quiet` and `-v`, accepted before or after the subcommand.
#[derive(Clone, Copy, Debug, Default, Args)]
pub struct Verbosity {
    /// Print nothing on success; on failure, the failure summary (for cron, which mails
    /// whatever a job prints).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More detail: each step's start, artifact hashes and recorded facts, a summary table.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check plans: YAML, schema, meaning, templates, and 3-2-1 advice.
    Validate(ValidateArgs),
    /// Print the plan JSON Schema (the same as schemas/plan.schema.json).
    Schema,
    /// Print the fully rendered plan: steps in dependency order, nothing executed.
    Plan(PlanArgs),
    /// Run a plan's steps: dependency graph, timeouts, retries, rollback, `always`.
    Execute(ExecuteArgs),
    /// List past runs from the state directory, newest first.
    History(HistoryArgs),
    /// List a plan's backup sets, newest first: status, age, size and artifacts.
    Snapshots(SnapshotsArgs),
    /// Re-read stored sets and re-hash every artifact against the manifest.
    Verify(VerifyArgs),
    /// Restore one source from a backup set, after checking every artifact's sha256.
    Restore(RestoreArgs),
    /// Retention tools: preview what a policy keeps.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Apply retention: print keep/remove with reasons for each set, then remove.
    Prune(PruneArgs),
    /// Print a recovery level's runbook (roles, contacts, steps, where the backups are) as
    /// Markdown or HTML; reads only the plan and the state directory.
    Runbook(RunbookArgs),
    /// Print a crontab line, systemd units or a Kubernetes CronJob that run the plan on its
    /// `schedule:` (and `drill.schedule:`).
    Schedule(ScheduleArgs),
    /// Write a commented starting plan from what you name; secrets are read at run time.
    Init(InitArgs),
    /// Print shell completions for bash, zsh or fish.
    Completions(CompletionsArgs),
    /// Print the manual page (roff), generated from this command line.
    Man,
    /// Run a recovery runbook (level 1-4): roles, steps, confirmations, resumable.
    Recover(RecoverArgs),
    /// Document an incident: add lessons learned, close it.
    #[command(subcommand)]
    Incident(IncidentCommand),
    /// Restore-test: restore the newest set into scratch targets, check it against the
    /// facts recorded at backup time, report, clean up.
    Drill(DrillArgs),
    /// The plan's health: last run and success, newest set per storage against the RPO,
    /// last passing drill; exit 1 when something is overdue.
    Status(StatusArgs),
}

impl Command {
    /// Commands that only print: when their reader goes away (`| head`) they should end
    /// quietly, as other Unix tools do, instead of failing on every later write.
    fn only_prints(&self) -> bool {
        matches!(
            self,
            Command::Validate(_)
                | Command::Schema
                | Command::Plan(_)
                | Command::Retention(_)
                | Command::Snapshots(_)
                | Command::Runbook(_)
                | Command::Schedule(_)
                | Command::Completions(_)
                | Command::Man
        )
    }
}

fn restore_sigpipe() {
    // SAFETY: called once at start-up before any thread exists; SIG_DFL is always valid.
    unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
        .ok();
    }
}

/// How diagnostics are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Plan files to check.
    #[arg(required = true)]
    pub plans: Vec<PathBuf>,
    /// `human` (default) or `json`: one JSON object for all the plans, `{valid, files}`,
    /// each file with its verdict, counts and diagnostics (for editors and CI).
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// The same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

/// `--var NAME=VALUE`, overriding `vars.NAME`.
#[derive(Clone, Debug)]
pub struct VarOverride {
    pub name: String,
    pub value: String,
}

fn parse_var(text: &str) -> Result<VarOverride, String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=VALUE"))?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "`{name}` is not a variable name (letters, digits and _)"
        ));
    }
    Ok(VarOverride {
        name: name.to_owned(),
        value: value.to_owned(),
    })
}

/// The plan a command reads, and the `--var` overrides it is rendered with.
#[derive(Debug, Args)]
pub struct PlanInput {
    /// The plan file.
    pub plan: PathBuf,
    /// Override a plan variable: `--var backups=/mnt/b` (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<VarOverride>,
}

/// `--json` for commands that print one JSON document instead of text.
#[derive(Debug, Args)]
pub struct JsonOutput {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `--storage NAME` for commands that read every storage unless told one.
#[derive(Debug, Args)]
pub struct OneStorage {
    /// Only this storage (default: every storage of the plan).
    #[arg(long)]
    pub storage: Option<String>,
}

/// `--state-dir`, where run records, logs and locks live.
#[derive(Debug, Args)]
pub struct StateDirArg {
    /// Where run records, logs and locks live (default: $XDG_STATE_HOME/planrun,
    /// ~/.local/state/planrun, or /var/lib/planrun for root).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub input: PlanInput,
    #[command(flatten)]
    pub output: JsonOutput,
}

#[derive(Debug, Args)]
pub struct ExecuteArgs {
    #[command(flatten)]
    pub input: PlanInput,
    /// Print what would run and check the lock; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run only these steps (repeatable); their `needs` outside the selection count as done.
    #[arg(long = "only", value_name = "ID")]
    pub only: Vec<String>,
    #[command(flatten)]
    pub state: StateDirArg,
    /// How many steps may run at once (default: the number of CPUs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: Option<u16>,
    /// Print one JSON event per line on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write Prometheus metrics to DIR/planrun-<plan>.prom after the run (node_exporter's
    /// textfile collector folder); overrides the plan's `metrics.textfile_dir`.
    #[arg(long, value_name = "DIR")]
    pub metrics_dir: Option<PathBuf>,
    /// Run even though an open incident froze the plan's backups.
    #[arg(long)]
    pub during_incident: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only runs of this plan.
    #[arg(long, value_name = "NAME")]
    pub plan: Option<String>,
    /// Print the run records as a JSON array.
    #[arg(long)]
    pub json: bool,
    /// List incidents and rehearsals instead of runs.
    #[arg(long)]
    pub incidents: bool,
    /// List past drills (from their reports) instead of runs.
    #[arg(long)]
    pub drills: bool,
    #[command(flatten)]
    pub state: StateDirArg,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    #[command(flatten)]
    pub input: PlanInput,
    /// A set id or `latest` (default: the newest restorable set holding every drilled source).
    #[arg(long, value_name = "ID")]
    pub set: Option<String>,
    /// The storage to read from (default: `drill.storage`).
    #[arg(long, value_name = "NAME")]
    pub storage: Option<String>,
    /// Leave the scratch database and folder, and print how to reach and remove them.
    #[arg(long)]
    pub keep: bool,
    /// Also write report.md and report.json into DIR.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Print the report as JSON on stdout instead of the summary table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateDirArg,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub input: PlanInput,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateDirArg,
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub input: PlanInput,
    #[command(flatten)]
    pub storage: OneStorage,
    #[command(flatten)]
    pub output: JsonOutput,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub input: PlanInput,
    /// A set id or `latest` (default: the newest set with a manifest).
    #[arg(conflicts_with = "all")]
    pub set: Option<String>,
    /// Verify every set that has a manifest.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub storage: OneStorage,
    #[command(flatten)]
    pub output: JsonOutput,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["to", "in_place"])))]
pub struct RestoreArgs {
    #[command(flatten)]
    pub input: PlanInput,
    /// The source (from the plan's `sources`) to restore.
    #[arg(long)]
    pub source: String,
    /// A set id or `latest`: the newest complete set.
    #[arg(long, default_value = "latest")]
    pub set: String,
    /// Where to restore: a database name for postgres sources, else a path (for files
    /// sources, a folder that receives the files in their recorded layout).
    #[arg(long)]
    pub to: Option<String>,
    /// Put a files or directory source back where it came from (files: each at its
    /// recorded path, if the plan still lists it).
    #[arg(long)]
    pub in_place: bool,
    /// Replace a target that exists and holds data (or has connections).
    #[arg(long)]
    pub force: bool,
    /// The storage to read from (default: the plan's first local storage).
    #[arg(long)]
    pub storage: Option<String>,
    #[command(flatten)]
    pub state: StateDirArg,
    #[command(flatten)]
    pub output: JsonOutput,
}

/// Parses the command line. Help, the version and usage errors are printed here; their exit
/// code comes back as the error.
pub fn parse() -> Result<(Command, Verbosity), i32> {
    let cli = Cli::try_parse().map_err(|error| {
        let code = if error.use_stderr() {
            exit_code::INVALID
        } else {
            exit_code::SUCCESS
        };
        error.print().ok();
        code
    })?;
    if cli.command.only_prints() {
        restore_sigpipe();
    }
    Ok((cli.command, cli.verbosity))
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Read RFC 3339 timestamps (one per line) and print what a policy keeps, and why.
    Simulate(SimulateArgs),
}

/// The retention flags mirror the plan's `retention:` keys.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Read timestamps from this file instead of stdin.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// Keep the newest N sets (N or `unlimited`).
    #[arg(long, value_name = "N")]
    pub keep_last: Option<crate::plan::Keep>,
    /// Keep the newest set of each of the last N hours.
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<crate::plan::Keep>,
    /// Keep the newest set of each of the last N days.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<crate::plan::Keep>,
    /// Keep the newest set of each of the last N ISO weeks.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<crate::plan::Keep>,
    /// Keep the newest set of each of the last N months.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<crate::plan::Keep>,
    /// Keep the newest set of each of the last N years.
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<crate::plan::Keep>,
    /// Keep every set within this span of the newest one (`30d`, `2y6mo`; months are `mo`).
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<crate::duration::CalendarSpan>,
    /// IANA time zone in which periods are counted (default UTC).
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,
    /// Print one JSON array, one object per input timestamp.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub input: PlanInput,
    /// Only this storage (repeatable; default: every storage of the plan).
    #[arg(long = "storage", value_name = "NAME")]
    pub storage: Vec<String>,
    /// Print the decisions, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub state: StateDirArg,
    #[command(flatten)]
    pub output: JsonOutput,
}

/// What `planrun runbook` writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RunbookFormat {
    #[default]
    Markdown,
    /// One self-contained file with a print stylesheet.
    Html,
}

#[derive(Debug, Args)]
pub struct RunbookArgs {
    /// The recovery level: 1 data corruption, 2 hardware failure, 3 site disaster, 4 regional disaster.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=4))]
    pub level: u8,
    /// The plan file (default: $PLANRUN_PLAN_FILE, /etc/planrun/planrun.yaml, planrun.yaml,
    /// plans/planrun.yaml).
    pub plan: Option<PathBuf>,
    /// `markdown` (default) or `html`.
    #[arg(long, value_enum, default_value_t)]
    pub format: RunbookFormat,
    /// Write to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateDirArg,
}

/// What `planrun schedule` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    /// One crontab line per schedule (for `crontab -e`).
    Cron,
    /// A `.service` and `.timer` pair per schedule.
    Systemd,
    /// A ConfigMap, a PersistentVolumeClaim and a CronJob per schedule.
    Kubernetes,
}

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// The plan file (its `schedule:` and `drill.schedule:` are read).
    pub plan: PathBuf,
    /// What to print.
    #[arg(long, value_enum)]
    pub emit: Emit,
    /// The container image that holds planrun and the tools the plan runs (kubernetes).
    #[arg(long, value_name = "IMAGE", required_if_eq("emit", "kubernetes"))]
    pub image: Option<String>,
    /// The planrun binary the job runs (default: this one; `planrun` for kubernetes).
    #[arg(long, value_name = "PATH")]
    pub bin: Option<PathBuf>,
    /// The environment file the job reads secrets from (default: /etc/planrun/PLAN.env).
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// The state directory the job uses (default: /var/lib/planrun).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Write the systemd units into this folder instead of printing them (never overwrites).
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the plan (refused if it exists).
    #[arg(default_value = "planrun.yaml")]
    pub plan: PathBuf,
    /// The plan's name (default: from the file name).
    #[arg(long)]
    pub name: Option<String>,
    /// A PostgreSQL database: a name, or a `postgres://user@host:port/db` URL (a password in
    /// it is not written: it goes to `secrets:` as an environment variable).
    #[arg(long, value_name = "URL_OR_NAME")]
    pub postgres: Option<String>,
    /// A SQLite database file.
    #[arg(long, value_name = "PATH")]
    pub sqlite: Option<PathBuf>,
    /// A directory tree (e.g. uploads).
    #[arg(long, value_name = "PATH")]
    pub dir: Vec<PathBuf>,
    /// Single files, e.g. config (several allowed).
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// A Git repository.
    #[arg(long, value_name = "PATH")]
    pub git: Option<PathBuf>,
    /// The local folder backup sets go to.
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// An off-site copy: `s3://bucket/prefix` (keys are read from the environment).
    #[arg(long, value_name = "URL")]
    pub s3: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// The shells `planrun completions` writes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// The recovery level: 1 data corruption, 2 hardware failure, 3 site, 4 region.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=4))]
    pub level: u8,
    /// The plan file.
    pub plan: Option<PathBuf>,
    /// Restore from this set (an id, or `latest`) instead of each step's own choice.
    #[arg(long, value_name = "ID")]
    pub set: Option<String>,
    /// Restore from this storage only (no fallback).
    #[arg(long, value_name = "NAME")]
    pub storage: Option<String>,
    /// Confirm every step that asks (needed without a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Confirm this step (repeatable; `ID.older-set` accepts an older set for step ID).
    #[arg(long = "confirm", value_name = "ID")]
    pub confirm: Vec<String>,
    /// Continue an unfinished incident (default: the newest) after its last completed step.
    #[arg(long, value_name = "INCIDENT", num_args = 0..=1, default_missing_value = "")]
    pub resume: Option<String>,
    /// A training run: restores go to scratch targets, nothing live changes.
    #[arg(long, conflicts_with = "resume")]
    pub rehearse: bool,
    /// Override a plan variable: `--var backups=/mnt/b` (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<VarOverride>,
    #[command(flatten)]
    pub state: StateDirArg,
    /// Print the incident record as JSON on stdout at the end (the screen goes to stderr).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Append a note (lessons learned) to an incident's record and report.
    Note(IncidentNoteArgs),
    /// Mark an incident closed: the plan's backups run again.
    Close(IncidentCloseArgs),
}

#[derive(Debug, Args)]
pub struct IncidentNoteArgs {
    /// The incident id.
    pub id: String,
    /// The note.
    pub text: String,
    #[command(flatten)]
    pub state: StateDirArg,
}

#[derive(Debug, Args)]
pub struct IncidentCloseArgs {
    /// The incident id.
    pub id: String,
    #[command(flatten)]
    pub state: StateDirArg,
}
