//! The printable runbook of one recovery level: built from the validated plan (and the
//! rehearsals in the state directory) into a [`Runbook`] of plain text and code, which
//! `markdown` and `html` render. Nothing here opens a storage, a database or the network, and
//! no secret is ever resolved: credentials are described by where they come from.

mod html;
mod markdown;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::Utc;
use serde_json::{Value, json};

use crate::exit_code;
use crate::plan::{CheckStep, Plan, RestoreStep, Source, Step, StepKind, Storage};
use crate::recovery_health::{Rehearsal, plan_zone};
use crate::template::Renderer;

pub use html::render as html;
pub use markdown::render as markdown;

/// Why no runbook could be printed.
#[derive(Debug, thiserror::Error)]
pub enum RunbookError {
    #[error("plan `{plan}` has no `recovery:` section, so it has no runbooks")]
    NoRecovery { plan: String },
    #[error("plan `{plan}` has no recovery level {level} (it has: {known})")]
    NoLevel {
        plan: String,
        level: u8,
        known: String,
    },
    #[error("cannot write the runbook to {}: {error}", path.display())]
    Write {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
}

impl RunbookError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunbookError::NoRecovery { .. } | RunbookError::NoLevel { .. } => exit_code::INVALID,
            RunbookError::Write { .. } => exit_code::FAILURE,
        }
    }
}

/// A piece of running text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inline {
    Text(String),
    /// A name, path or command, shown as code.
    Code(String),
    Strong(String),
}

/// A line of running text.
pub type Line = Vec<Inline>;

/// A block inside a step or section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Block {
    Para(Line),
    /// Preformatted text: a script, a command.
    Code(String),
    /// A bulleted list.
    Items(Vec<Line>),
}

/// One row of the contacts table.
#[derive(Clone, Debug)]
pub struct Contact {
    pub title: String,
    pub role: String,
    pub contact: String,
    pub deputy: String,
    pub responsibility: String,
    /// The numbers of the steps this role owns, `2, 5`, or empty.
    pub steps: String,
}

/// One numbered step.
#[derive(Clone, Debug)]
pub struct StepView {
    pub number: usize,
    pub id: String,
    pub name: Option<String>,
    /// Who carries it out, how it runs, whether it asks.
    pub about: Line,
    pub body: Vec<Block>,
}

/// A titled section of blocks.
#[derive(Clone, Debug)]
pub struct Section {
    pub title: Line,
    pub body: Vec<Block>,
}

/// Everything the runbook says, in the order it says it.
#[derive(Clone, Debug)]
pub struct Runbook {
    /// `crm, level 2: Hardware failure`
    pub title: String,
    pub level_description: Option<String>,
    /// The exact `planrun recover` command.
    pub command: String,
    pub contacts: Vec<Contact>,
    pub objectives: Vec<Line>,
    pub steps: Vec<StepView>,
    /// One section per storage.
    pub storages: Vec<Section>,
    pub credentials: Option<String>,
    /// The plan, its review and the last rehearsal.
    pub upkeep: Vec<Line>,
}

/// What the runbook is built from.
pub struct Input<'a> {
    pub plan: &'a Plan,
    /// The plan file, absolute, as the recover command must name it.
    pub file: &'a Path,
    pub digest: &'a str,
    pub level: u8,
    /// Rehearsals of this plan, newest first.
    pub rehearsals: &'a [Rehearsal],
}

/// Builds the runbook of `input.level`.
pub fn build(input: &Input<'_>) -> Result<Runbook, RunbookError> {
    let plan = input.plan;
    let recovery = plan
        .recovery
        .as_ref()
        .ok_or_else(|| RunbookError::NoRecovery {
            plan: plan.name.clone(),
        })?;
    let level = recovery
        .levels
        .get(&input.level.to_string())
        .ok_or_else(|| RunbookError::NoLevel {
            plan: plan.name.clone(),
            level: input.level,
            known: recovery
                .levels
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let text = Display::new(plan, input.file, input.level);
    let file = input.file.display().to_string();
    let command = format!(
        "planrun recover --level {} {}",
        input.level,
        crate::template::display_quote(&file)
    );

    let steps: Vec<StepView> = level
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| step_view(plan, &text, i + 1, step))
        .collect();

    Ok(Runbook {
        title: format!("{}, level {}: {}", plan.name, input.level, level.name),
        level_description: level.description.clone(),
        contacts: contacts(plan, &level.steps),
        objectives: objectives(recovery.objectives.as_ref()),
        steps,
        storages: storages(plan, &text, &file),
        credentials: recovery.credentials.clone(),
        upkeep: upkeep(input, &file),
        command,
    })
}

/// Every role of the plan: those that own steps of this level first, in the order their
/// first step comes, then the others by name (a coordinator may own no step and still be the
/// one to call).
fn contacts(plan: &Plan, steps: &[Step]) -> Vec<Contact> {
    let mut owned: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let Some(role) = step.role.as_deref() else {
            continue;
        };
        match owned.iter_mut().find(|(r, _)| *r == role) {
            Some((_, numbers)) => numbers.push(i + 1),
            None => owned.push((role, vec![i + 1])),
        }
    }
    for name in plan.roles.keys() {
        if !owned.iter().any(|(r, _)| r == name) {
            owned.push((name, Vec::new()));
        }
    }
    owned
        .into_iter()
        .filter_map(|(name, numbers)| {
            let role = plan.roles.get(name)?;
            let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "not set".into());
            Some(Contact {
                title: role.title.clone(),
                role: name.to_owned(),
                contact: or_none(&role.contact),
                deputy: or_none(&role.deputy),
                responsibility: role.responsibility.clone().unwrap_or_default(),
                steps: numbers
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        })
        .collect()
}

fn objectives(objectives: Option<&crate::plan::Objectives>) -> Vec<Line> {
    let at_most = |label: &str, value: Option<crate::duration::Duration>| match value {
        Some(d) => vec![
            Inline::Text(format!("{label}: at most ")),
            Inline::Strong(d.to_string()),
        ],
        None => vec![Inline::Text(format!("{label}: not set"))],
    };
    vec![
        at_most("Data loss (RPO)", objectives.and_then(|o| o.rpo)),
        at_most("Time to recovery (RTO)", objectives.and_then(|o| o.rto)),
    ]
}

fn step_view(plan: &Plan, text: &Display, number: usize, step: &Step) -> StepView {
    let kind = step.kind();
    let mut about = vec![Inline::Text("Owner: ".into())];
    match step.role.as_deref() {
        Some(role) => {
            let title = plan.roles.get(role).map(|r| r.title.as_str());
            about.push(Inline::Strong(title.unwrap_or(role).to_owned()));
            about.push(Inline::Text(" (".into()));
            about.push(Inline::Code(role.to_owned()));
            about.push(Inline::Text(")".into()));
        }
        None => about.push(Inline::Strong("not assigned".into())),
    }
    let how = match kind {
        StepKind::Manual(_) => "done by hand, then acknowledged",
        _ => "planrun runs it",
    };
    about.push(Inline::Text(format!(" · {} · {how}", kind.name())));
    if step.confirm {
        about.push(Inline::Text(" · ".into()));
        about.push(Inline::Strong("asks for confirmation first".into()));
    }
    StepView {
        number,
        id: step.id.clone().unwrap_or_else(|| format!("step {number}")),
        name: step.name.clone(),
        about,
        body: what_it_does(plan, text, kind),
    }
}

/// What a step does, in words a person checks against the screen of `planrun recover`.
fn what_it_does(plan: &Plan, text: &Display, kind: StepKind<'_>) -> Vec<Block> {
    match kind {
        StepKind::Manual(instruction) => paragraphs(&text.render(instruction)),
        StepKind::Restore(restore) => vec![Block::Para(restore_words(plan, text, restore))],
        StepKind::Check(check) => vec![Block::Para(check_words(plan, text, check))],
        StepKind::Run(argv) => {
            let argv: Vec<String> = argv.iter().map(|a| text.render(a)).collect();
            let shown = argv
                .iter()
                .map(|a| crate::template::display_quote(a))
                .collect::<Vec<_>>()
                .join(" ");
            vec![Block::Para(vec![words("Runs "), code(&shown), words(".")])]
        }
        StepKind::Shell(script) => vec![
            Block::Para(vec![words("Runs this bash script:")]),
            Block::Code(script.trim_end().to_owned()),
        ],
        StepKind::Verify(verify) => vec![Block::Para(vec![
            words("Re-reads set "),
            code(verify.set.as_deref().unwrap_or("latest")),
            words(" on storage "),
            code(&verify.storage),
            words(" and checks every artifact's sha256 against its manifest."),
        ])],
        StepKind::Notify(notify) => {
            // The webhook is often a secret URL: it is not printed.
            let mut line = vec![words("Sends a notification")];
            if let Some(message) = &notify.message {
                line.push(words(": "));
                line.push(words(text.render(message)));
            }
            line.push(words(" (a failed notification does not stop the runbook)."));
            vec![Block::Para(line)]
        }
        StepKind::Backup(source) => vec![Block::Para(vec![
            words("Backs up source "),
            code(source),
            words("."),
        ])],
        StepKind::Copy(copy) => vec![Block::Para(vec![
            words("Copies set "),
            code(copy.set.as_deref().unwrap_or("latest")),
            words(" to storage "),
            code(&copy.to),
            words(", verified."),
        ])],
        StepKind::Prune(storages) => vec![Block::Para(vec![
            words("Applies retention to "),
            code(storages.join(", ")),
            words("."),
        ])],
    }
}

fn code(text: impl Into<String>) -> Inline {
    Inline::Code(text.into())
}

fn words(text: impl Into<String>) -> Inline {
    Inline::Text(text.into())
}

/// Text split into paragraphs at blank lines.
fn paragraphs(text: &str) -> Vec<Block> {
    text.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| Block::Para(vec![Inline::Text(p.to_owned())]))
        .collect()
}

fn restore_words(plan: &Plan, text: &Display, restore: &RestoreStep) -> Line {
    let mut line = vec![words("Restores source "), code(&restore.source)];
    let source = plan.sources.get(&restore.source);
    if let Some(source) = source {
        line.push(words(" ("));
        line.extend(source_words(text, source));
        line.push(words(")"));
    }
    match restore.set() {
        None | Some("latest") => line.push(words(" from the newest restorable set holding it")),
        Some(id) => {
            line.push(words(" from set "));
            line.push(code(id));
        }
    }
    match restore.storage.as_deref() {
        Some(storage) => {
            line.push(words(" on storage "));
            line.push(code(storage));
            line.push(words(" (this storage only)"));
        }
        None => {
            let first = restore_storage(plan);
            line.push(words(" on "));
            match first {
                Some(first) => {
                    line.push(words("the restore storage "));
                    line.push(code(first));
                    let others: Vec<&str> = plan
                        .storage
                        .keys()
                        .map(String::as_str)
                        .filter(|s| *s != first)
                        .collect();
                    if !others.is_empty() {
                        line.push(words(", or, if it is unreachable or empty, on "));
                        line.push(code(others.join(", ")));
                    }
                }
                None => line.push(words("the plan's storage")),
            }
        }
    }
    line.push(words(", into "));
    line.extend(target_words(text, source, restore));
    line.push(words("."));
    line
}

/// The storage a restore step without `storage:` reads first: the backup storage, else the
/// only storage (the rule of `storage::choice`).
fn restore_storage(plan: &Plan) -> Option<&str> {
    crate::analyzer::backup_storage(plan).or_else(|| match plan.storage.keys().next() {
        Some(only) if plan.storage.len() == 1 => Some(only.as_str()),
        _ => None,
    })
}

fn source_words(text: &Display, source: &Source) -> Line {
    match source {
        Source::Postgres(pg) => {
            let mut line = vec![
                words("PostgreSQL database "),
                code(text.render(&pg.database)),
            ];
            if let Some(host) = &pg.host {
                let at = match pg.port {
                    Some(port) => format!("{}:{port}", text.render(host)),
                    None => text.render(host),
                };
                line.push(words(" on "));
                line.push(code(at));
            }
            line
        }
        Source::Sqlite(sqlite) => vec![words("SQLite database "), code(text.render(&sqlite.path))],
        Source::Directory(dir) => vec![words("folder "), code(text.render(&dir.path))],
        Source::Files(files) => {
            let mut line = vec![words("files ")];
            for (i, file) in files.iter().enumerate() {
                if i > 0 {
                    line.push(words(", "));
                }
                line.push(code(text.render(file)));
            }
            line
        }
        Source::Git(git) => vec![words("Git repository "), code(text.render(&git.repo))],
    }
}

fn target_words(text: &Display, source: Option<&Source>, restore: &RestoreStep) -> Line {
    let original = restore
        .path
        .as_deref()
        .is_none_or(|p| p == crate::plan::ORIGINAL_PATH);
    match source {
        Some(Source::Postgres(pg)) => {
            let database = restore.database.as_deref().unwrap_or(&pg.database);
            vec![words("database "), code(text.render(database))]
        }
        Some(Source::Files(_)) if original => vec![words("each file's own path")],
        Some(Source::Directory(dir)) if original => {
            vec![words("its own folder "), code(text.render(&dir.path))]
        }
        Some(Source::Sqlite(sqlite)) if restore.path.is_none() => {
            vec![words("its own file "), code(text.render(&sqlite.path))]
        }
        Some(Source::Git(git)) if restore.path.is_none() => {
            vec![words("its own folder "), code(text.render(&git.repo))]
        }
        _ => vec![code(text.render(restore.path.as_deref().unwrap_or("")))],
    }
}

fn check_words(plan: &Plan, text: &Display, check: &CheckStep) -> Line {
    use crate::plan::Expect;
    let mut line = Vec::new();
    if let Some(sql) = &check.sql {
        line.push(words("Runs "));
        line.push(code(text.render(sql)));
        if let Some(source) = &check.source {
            line.push(words(" on source "));
            line.push(code(source.clone()));
            if let Some(Source::Postgres(pg)) = plan.sources.get(source) {
                line.push(words(" (database "));
                line.push(code(text.render(&pg.database)));
                line.push(words(")"));
            }
        }
        line.push(words(" and expects "));
        line.push(expect_words(
            check.expect.as_ref(),
            "the value recorded when the backup was made",
            "",
        ));
    } else if let Some(files) = &check.files {
        line.push(words("Compares the restored files of "));
        line.push(code(files.clone()));
        line.push(words(" with "));
        line.push(expect_words(
            check.expect.as_ref(),
            "what the backup recorded",
            " files",
        ));
    } else if let Some(url) = &check.http {
        line.push(words("Requests "));
        line.push(code(text.render(url)));
        line.push(words(" and expects a 2xx answer"));
        if let Some(Expect::Equals(v)) = &check.expect {
            line.push(words(" of "));
            line.push(code(plain(v)));
        }
    }
    line.push(words("."));
    line
}

/// What a check expects, in words: `recorded` for the backup's fact (also when no
/// expectation is written, which means the same), bounds with their `unit`.
fn expect_words(expect: Option<&crate::plan::Expect>, recorded: &str, unit: &str) -> Inline {
    use crate::plan::Expect;
    match expect {
        None | Some(Expect::MatchesBackup) => words(recorded),
        Some(Expect::Equals(v)) => code(plain(v)),
        Some(Expect::Range { min, max }) => words(match (min, max) {
            (Some(min), Some(max)) => format!("between {min} and {max}{unit}"),
            (Some(min), None) => format!("at least {min}{unit}"),
            (None, Some(max)) => format!("at most {max}{unit}"),
            (None, None) => format!("any number{unit}"),
        }),
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The sections of "Where the backups are": each storage, where its sets are, what opens
/// it (credentials by their origin only) and how to list them with planrun or without it.
fn storages(plan: &Plan, text: &Display, file: &str) -> Vec<Section> {
    let restore_first = restore_storage(plan);
    let list = |name: &str| {
        format!(
            "planrun snapshots {} --storage {name}",
            crate::template::display_quote(file)
        )
    };
    let mut ordered: Vec<(&String, &Storage)> = plan.storage.iter().collect();
    // The storage a recovery reads first comes first.
    ordered.sort_by_key(|(name, _)| restore_first != Some(name.as_str()));
    ordered
        .into_iter()
        .map(|(name, storage)| {
            let mut title = vec![code(name.clone())];
            let mut items = Vec::new();
            match storage {
                Storage::Local(local) => {
                    let path = text.render(&local.path);
                    title.push(words(": a local folder"));
                    items.push(vec![
                        words("Each set is the folder "),
                        code(format!(
                            "{}/{}/<set-id>/",
                            path.trim_end_matches('/'),
                            plan.name
                        )),
                        words(", with its "),
                        code("manifest.json"),
                    ]);
                    items.push(vec![words("List the sets: "), code(list(name))]);
                }
                Storage::S3(s3) => {
                    let bucket = text.render(&s3.bucket);
                    let prefix = s3
                        .prefix
                        .as_deref()
                        .map(|p| text.render(p))
                        .unwrap_or_default();
                    let place = format!("s3://{bucket}/{prefix}{}/", plan.name);
                    title.push(words(": S3 bucket "));
                    title.push(code(bucket));
                    items.push(vec![
                        words("Each set is under "),
                        code(format!("{place}<set-id>/")),
                        words(", with its "),
                        code("manifest.json"),
                    ]);
                    let endpoint = s3.endpoint.as_deref().map(|e| text.render(e));
                    let mut reach = vec![words("Endpoint: ")];
                    match &endpoint {
                        Some(e) => reach.push(code(e.clone())),
                        None => reach.push(words("AWS S3")),
                    }
                    if let Some(region) = &s3.region {
                        reach.push(words(", region "));
                        reach.push(code(text.render(region)));
                    }
                    items.push(reach);
                    for (label, value, variable) in [
                        ("Access key id", &s3.access_key_id, "AWS_ACCESS_KEY_ID"),
                        (
                            "Secret access key",
                            &s3.secret_access_key,
                            "AWS_SECRET_ACCESS_KEY",
                        ),
                    ] {
                        let mut line = vec![words(format!("{label}: "))];
                        line.extend(credential_origin(plan, value.as_deref(), variable));
                        items.push(line);
                    }
                    items.push(vec![words("List the sets: "), code(list(name))]);
                    let endpoint_flag = endpoint
                        .map(|e| format!(" --endpoint-url {}", crate::template::display_quote(&e)))
                        .unwrap_or_default();
                    items.push(vec![
                        words("Without planrun: "),
                        code(format!(
                            "aws s3 ls {}{endpoint_flag}",
                            crate::template::display_quote(&place)
                        )),
                    ]);
                }
            }
            if restore_first == Some(name.as_str()) {
                title.push(words(
                    " (the restore storage: restore steps that name none read it first)",
                ));
            }
            Section {
                title,
                body: vec![Block::Items(items)],
            }
        })
        .collect()
}

/// Where a credential comes from, never its value: a secret by name and origin, an
/// environment variable by name; a value written in the plan is not shown.
fn credential_origin(plan: &Plan, value: Option<&str>, variable: &str) -> Line {
    let Some(value) = value else {
        return vec![
            words("not in the plan: the environment variable "),
            code(variable.to_owned()),
        ];
    };
    let reference = value
        .trim()
        .strip_prefix("{{")
        .and_then(|v| v.strip_suffix("}}"))
        .map(str::trim)
        .filter(|v| !v.contains(['{', '}', ' ']));
    if let Some(name) = reference.and_then(|r| r.strip_prefix("secrets.")) {
        let mut line = vec![words("secret "), code(name.to_owned())];
        match plan.secrets.get(name) {
            Some(crate::plan::SecretSource::Env(var)) => {
                line.push(words(", from the environment variable "));
                line.push(code(var.clone()));
            }
            Some(crate::plan::SecretSource::File(path)) => {
                line.push(words(", from the file "));
                line.push(code(path.clone()));
            }
            None => {}
        }
        return line;
    }
    if let Some(var) = reference.and_then(|r| r.strip_prefix("env.")) {
        return vec![words("the environment variable "), code(var.to_owned())];
    }
    vec![words("written in the plan (not shown here)")]
}

fn upkeep(input: &Input<'_>, file: &str) -> Vec<Line> {
    let plan = input.plan;
    let zone = plan_zone(plan);
    let digest: String = input.digest.chars().take(12).collect();
    let mut out = vec![vec![
        words("Plan "),
        code(plan.name.clone()),
        words(", file "),
        code(file.to_owned()),
        words(", digest "),
        code(digest),
        words(": if the plan changed since this was printed, print it again."),
    ]];
    let recovery = plan.recovery.as_ref();
    out.push(match recovery.and_then(|r| r.review.as_ref()) {
        Some(review) => {
            let last = review.last.0.clone();
            let mut line = vec![words("Last review: "), Inline::Strong(last)];
            line.push(words(format!(", every {}", review.every)));
            if let Some(due) = review.due() {
                line.push(words(format!(", next due {due}")));
            }
            line
        }
        None => vec![
            words("Last review: not recorded (set "),
            code("recovery.review"),
            words(")"),
        ],
    });
    let mut rehearsal = vec![words("Last rehearsal: ")];
    let this_level = input.level.to_string();
    let of_level = input
        .rehearsals
        .iter()
        .find(|r| r.level.as_deref() == Some(this_level.as_str()));
    match (of_level, input.rehearsals.first()) {
        (Some(r), _) => rehearsal.push(Inline::Strong(r.describe(zone))),
        (None, Some(other)) => {
            rehearsal.push(words(format!("none of level {this_level}; the newest is ")));
            rehearsal.push(Inline::Strong(other.describe(zone)));
        }
        (None, None) => rehearsal.push(Inline::Strong("no rehearsal recorded".into())),
    }
    if let Some(training) = recovery.and_then(|r| r.training.as_ref()) {
        rehearsal.push(words(format!("; training every {}", training.every)));
    }
    rehearsal.push(words(". Rehearse with "));
    rehearsal.push(code(format!(
        "planrun recover --level {} {} --rehearse",
        input.level,
        crate::template::display_quote(file)
    )));
    rehearsal.push(words("."));
    out.push(rehearsal);
    out
}

/// Renders the plan's templates for reading: variables and the plan's own names take their
/// values; what only exists during a run stays a visible placeholder (`[data-loss window]`);
/// secrets are never read and show as `[secret NAME]`; a template naming the environment
/// of the host that runs the recovery is shown as written.
struct Display {
    renderer: Renderer,
    context: Value,
}

impl Display {
    fn new(plan: &Plan, file: &Path, level: u8) -> Self {
        let secrets: serde_json::Map<String, Value> = plan
            .secrets
            .keys()
            .map(|name| (name.clone(), Value::String(format!("[secret {name}]"))))
            .collect();
        let context = json!({
            "vars": plan.vars,
            "secrets": secrets,
            "env": {},
            "plan": {
                "name": plan.name,
                "file": file.display().to_string(),
                "dir": file.parent().map(|d| d.display().to_string()).unwrap_or_default(),
                "description": plan.description.clone().unwrap_or_default(),
            },
            "run": {"id": "[run id]", "started": "[run start]", "scratch": "[scratch folder]"},
            "set": {"id": "[set id]", "path": "[set folder]"},
            "incident": {"id": "[incident id]", "level": level, "data_loss_window": "[data-loss window]"},
        });
        let zone = plan_zone(plan);
        Display {
            renderer: Renderer::new(Utc::now(), zone, BTreeMap::new()),
            context,
        }
    }

    fn render(&self, text: &str) -> String {
        self.renderer
            .render(text, &self.context)
            .unwrap_or_else(|_| text.to_owned())
    }
}
