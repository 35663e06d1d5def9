//! The stages chained in one place: load (with includes) → schema → typed plan → meaning and
//! templates → advice, and then render into the `ExecPlan` the executor runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::diagnostic::{Diagnostic, Layer, key_path};
use crate::duration::Duration;
use crate::exec_plan::{Action, ExecPlan, ExecStep, Monitoring};
use crate::loader::{self, LoadedValue};
use crate::plan::{Plan, SecretSource, Step, StepKind};
use crate::redact::Redactor;
use crate::run_outcome::RunOutcome;
use crate::secret::Secret;
use crate::shell_script;
use crate::template::Renderer;
use crate::trusted_file::{self, FileRole, ReadError};
use crate::{advice, analyzer, schema};

/// A plan that passed every validation layer, with its advice.
#[derive(Debug)]
pub struct Loaded {
    pub path: PathBuf,
    pub plan: Plan,
    pub digest: String,
    /// Advice: warnings that do not stop anything.
    pub warnings: Vec<Diagnostic>,
    pub value: LoadedValue,
    /// True for a shared file meant to be included (only `sources`, `storage`, `roles`,
    /// `vars`, `secrets`): it validates on its own but cannot run.
    pub fragment: bool,
}

/// Why a plan cannot be used: every diagnostic found, errors and warnings.
#[derive(Debug)]
pub struct Failure {
    pub path: PathBuf,
    pub diagnostics: Vec<Diagnostic>,
}

impl Failure {
    fn new(path: &Path, diagnostics: Vec<Diagnostic>) -> Self {
        Failure {
            path: path.to_owned(),
            diagnostics,
        }
    }

    /// The diagnostics as people read them.
    pub fn render(&self) -> String {
        self.diagnostics
            .iter()
            .map(|d| d.render(&self.path))
            .collect()
    }
}

/// Loads and validates a plan: YAML, includes, schema, meaning, templates, then advice.
pub fn load(path: &Path) -> Result<Loaded, Failure> {
    let mut value = loader::load(path).map_err(|d| Failure::new(path, d))?;
    let fragment = is_fragment(&value.value);
    if fragment {
        // Checked as a plan with a stand-in header, so every other layer applies unchanged.
        if let Some(map) = value.value.as_object_mut() {
            map.insert("version".into(), json!(1));
            map.insert("name".into(), json!("include-fragment"));
        }
    }
    let schema_errors = schema::check(&value);
    if !schema_errors.is_empty() {
        return Err(Failure::new(path, schema_errors));
    }
    let plan: Plan = match serde_json::from_value(value.value.clone()) {
        Ok(plan) => plan,
        Err(error) => {
            // The schema accepts only what the types accept, so this is a planrun bug; still
            // say something a person can act on.
            let d = Diagnostic::error(
                Layer::Schema,
                format!("the plan does not fit planrun's types: {error}"),
            );
            return Err(Failure::new(path, vec![d]));
        }
    };
    let mut diagnostics = analyzer::check(&plan, &value);
    diagnostics.extend(secret_file_problems(&plan, &value));
    let mut warnings = analyzer::deprecations(&plan, &value);
    if !fragment {
        warnings.extend(advice::check(&plan, &value));
    }
    // Advice waits until the plan is valid: errors come first.
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(Failure::new(path, diagnostics));
    }
    Ok(Loaded {
        path: path.to_owned(),
        digest: value.digest.clone(),
        plan,
        warnings,
        value,
        fragment,
    })
}

/// A file that holds only shared sections and no `version`, `name` or steps.
fn is_fragment(value: &Value) -> bool {
    value.as_object().is_some_and(|map| {
        !map.is_empty()
            && map
                .keys()
                .all(|k| k == "include" || loader::SHARED_SECTIONS.contains(&k.as_str()))
    })
}

/// What a render needs beyond the plan.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    /// `--var NAME=VALUE` overrides.
    pub vars: Vec<(String, String)>,
    /// The run id, also the backup set id.
    pub run_id: String,
    pub started: DateTime<Utc>,
    /// The run's private scratch folder.
    pub scratch: PathBuf,
    /// Read secrets from their env/file. Off for previews (`plan`, `--dry-run`), where every
    /// secret shows as `***` and need not be available.
    pub resolve_secrets: bool,
    /// The environment templates see as `env.*`.
    pub env: BTreeMap<String, String>,
    /// `incident.*` for a recovery level's steps (`recover`); `None` everywhere else, where
    /// `validate` already refuses the names.
    pub incident: Option<IncidentVars>,
}

/// What `planrun recover` tells a runbook's steps about the incident.
#[derive(Clone, Debug)]
pub struct IncidentVars {
    pub id: String,
    pub level: u8,
    /// The age of the oldest set the restores use, when the incident started (`14h05m`);
    /// `unknown` until the sets are chosen.
    pub data_loss_window: String,
}

impl RenderOptions {
    /// Options for a run starting now, with the process environment.
    pub fn for_now(vars: Vec<(String, String)>, resolve_secrets: bool) -> Self {
        let started = Utc::now();
        let run_id = new_run_id(started);
        let scratch = std::env::temp_dir().join(format!("planrun-{run_id}"));
        RenderOptions {
            vars,
            run_id,
            started,
            scratch,
            resolve_secrets,
            env: std::env::vars().collect(),
            incident: None,
        }
    }
}

/// A sortable UTC time plus a suffix (milliseconds, then random): the run's set takes this id,
/// so it sorts in the order runs started even within one second.
pub fn new_run_id(now: DateTime<Utc>) -> String {
    crate::storage::SetId::new(now).to_string()
}

/// Renders a validated plan into what the executor runs. Errors name the key path, and show
/// what a value holds with every secret masked (a refused `{{env.VAR}}` may be one).
pub fn render(loaded: &Loaded, options: &RenderOptions) -> Result<ExecPlan, Failure> {
    render_with(loaded, options, None).map(|(plan, _)| plan)
}

/// A recovery level rendered for `recover`: its steps. Levels render only when asked for, so a template in a level-3
/// step (an environment variable only the recovery site has) never fails a nightly.
#[derive(Debug)]
pub struct RenderedLevel {
    pub steps: Vec<ExecStep>,
}

/// [`render`], plus the steps of recovery level `level` (which must exist).
pub fn render_level(
    loaded: &Loaded,
    options: &RenderOptions,
    level: &str,
) -> Result<(ExecPlan, RenderedLevel), Failure> {
    render_with(loaded, options, Some(level)).map(|(plan, level)| {
        let level = level.unwrap_or(RenderedLevel { steps: Vec::new() });
        (plan, level)
    })
}

fn render_with(
    loaded: &Loaded,
    options: &RenderOptions,
    level: Option<&str>,
) -> Result<(ExecPlan, Option<RenderedLevel>), Failure> {
    let mut secrets = Vec::new();
    render_unmasked(loaded, options, level, &mut secrets).map_err(|mut failure| {
        let redactor = Redactor::for_secrets(&secrets);
        for d in &mut failure.diagnostics {
            d.message = redactor.redact_owned(std::mem::take(&mut d.message));
            d.help = d.help.take().map(|h| redactor.redact_owned(h));
        }
        failure
    })
}

/// [`render_with`], noting in `known` each secret value as soon as it is known.
fn render_unmasked(
    loaded: &Loaded,
    options: &RenderOptions,
    level: Option<&str>,
    known: &mut Vec<Secret>,
) -> Result<(ExecPlan, Option<RenderedLevel>), Failure> {
    if loaded.fragment {
        let d = Diagnostic::error(
            Layer::Schema,
            "this file only holds shared definitions; include it from a plan with `version`, `name` and `steps`",
        );
        return Err(Failure::new(&loaded.path, vec![d]));
    }
    let plan = &loaded.plan;
    let fail = |pointer: &str, message: String| {
        let mut location = loaded.value.locate(pointer);
        // A refused value in a script points at its `{{…}}` in the file, as `validate` does.
        if let (Some((line, column)), Some(start), Some(script)) = (
            crate::template::refusal_position(&message),
            location.clone(),
            loaded.value.value.pointer(pointer).and_then(|v| v.as_str()),
        ) {
            location = Some(analyzer::script_position(
                &loaded.value,
                script,
                start,
                line,
                column,
            ));
        }
        let d = Diagnostic::error(Layer::Template, message).path(key_path(pointer));
        Failure::new(&loaded.path, vec![loaded.value.place(d, location)])
    };

    let mut vars = plan.vars.clone();
    for (name, value) in &options.vars {
        if !vars.contains_key(name) {
            let known: Vec<&str> = plan.vars.keys().map(String::as_str).collect();
            let hint = crate::diagnostic::did_you_mean(name, known.iter().copied())
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            return Err(Failure::new(
                &loaded.path,
                vec![Diagnostic::error(
                    Layer::Template,
                    format!("--var {name}: the plan has no variable `{name}`{hint}"),
                )],
            ));
        }
        vars.insert(name.clone(), Value::String(value.clone()));
    }

    let mut secrets = serde_json::Map::new();
    let mut secret_values = Vec::new();
    for (name, source) in &plan.secrets {
        let value = if options.resolve_secrets {
            let value = resolve_secret(name, source, &options.env)
                .map_err(|m| fail(&format!("/secrets/{name}"), m))?;
            let text = value.expose().to_owned();
            secret_values.push(value);
            text
        } else {
            // Not read for a preview, but `{{env.VAR}}` still shows the variable a secret
            // comes from: it is masked like the secret it is.
            if let SecretSource::Env(var) = source
                && let Some(value) = options.env.get(var)
            {
                secret_values.push(Secret::new(value.as_str()));
            }
            crate::redact::MASK.to_owned()
        };
        secrets.insert(name.clone(), Value::String(value));
    }

    let timezone = plan
        .timezone
        .as_deref()
        .and_then(|z| z.parse().ok())
        .unwrap_or(chrono_tz::Tz::UTC);
    let renderer = Renderer::new(options.started, timezone, options.env.clone());
    // Absolute, so a plan run from cron (another working directory) finds the same files.
    let plan_file = std::path::absolute(&loaded.path).unwrap_or_else(|_| loaded.path.clone());
    // Symbolic links resolved, so that a `..` right after `{{plan.dir}}` means the folder
    // above it and can be written out of paths people read (see `tidy_after`).
    let plan_dir = plan_file
        .parent()
        .map(|dir| dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()))
        .unwrap_or_default();
    let mut context = json!({
        "vars": vars,
        "secrets": secrets,
        "env": options.env,
        "plan": {
            "name": plan.name,
            "file": plan_file.display().to_string(),
            "dir": plan_dir.display().to_string(),
            "description": plan.description.clone().unwrap_or_default(),
        },
        "run": {
            "id": options.run_id,
            "started": options.started.to_rfc3339_opts(SecondsFormat::Secs, true),
            "scratch": options.scratch.display().to_string(),
        },
        "set": { "id": options.run_id, "path": "" },
    });
    if let Some(incident) = &options.incident {
        context["incident"] = json!({
            "id": incident.id,
            "level": incident.level,
            "data_loss_window": incident.data_loss_window,
        });
    }
    // The outcome keys hold a run that has not started; `on_failure` and `always` are
    // rendered again with the real outcome before they run (see `CleanupTemplates`).
    if let Some(run) = context["run"].as_object_mut() {
        run.extend(RunOutcome::not_started().template_keys(options.started));
    }
    let healthchecks = match &plan.monitor {
        Some(monitor) => Some(
            renderer
                .render(&monitor.healthchecks, &context)
                .map_err(|m| fail("/monitor/healthchecks", m))?,
        )
        .filter(|url| !url.trim().is_empty()),
        None => None,
    };
    // A check's URL is its token: masked like a secret wherever it could show.
    secret_values.extend(healthchecks.as_deref().map(Secret::new));
    known.extend(secret_values.iter().cloned());
    // The one redactor of this plan: everything rendered from here on may hold a secret.
    let redactor = Arc::new(Redactor::for_secrets(&secret_values));

    // Storage and sources render as whole values: every string in them is a template.
    let mut storage = render_section(&renderer, &context, "storage", &plan.storage)
        .map_err(|(p, m)| fail(&p, m))?;
    for (_, s) in &mut storage {
        if let crate::plan::Storage::Local(local) = s {
            local.path = tidy_after(&local.path, &plan_dir);
        }
    }
    if let Some(local) = analyzer::backup_storage(plan)
        && let Some((_, crate::plan::Storage::Local(l))) = storage.iter().find(|(n, _)| n == local)
    {
        context["set"]["path"] = Value::String(
            Path::new(&l.path)
                .join(&plan.name)
                .join(&options.run_id)
                .display()
                .to_string(),
        );
    }
    let sources = render_section(&renderer, &context, "sources", &plan.sources)
        .map_err(|(p, m)| fail(&p, m))?;
    let refuse = |pointer: &str, message: String, help: String| {
        let d = Diagnostic::error(Layer::Template, message)
            .path(key_path(pointer))
            .help(help);
        let location = loaded.value.locate(pointer);
        Failure::new(&loaded.path, vec![loaded.value.place(d, location)])
    };
    for (name, source) in &sources {
        // A secret's value reached a field the analyzer could not see it in (`--var`, an
        // environment variable): refused before any tool gets it in argv or a manifest.
        if let Some((pointer, message, help)) =
            analyzer::rendered_source_problem(name, source, &redactor)
        {
            return Err(refuse(&pointer, message, help));
        }
        // A templated `files` entry is plain only now; the analyzer checked the others.
        let crate::plan::Source::Files(files) = source else {
            continue;
        };
        for (i, file) in files.iter().enumerate() {
            if let Some((message, help)) = analyzer::files_entry_problem(file) {
                return Err(refuse(&format!("/sources/{name}/files/{i}"), message, help));
            }
        }
    }

    let r = StepRenderer {
        renderer: &renderer,
        context: &context,
        redactor: &redactor,
    };
    let list = |section: &str, steps: &[Step]| -> Result<Vec<ExecStep>, Failure> {
        r.section(section, steps).map_err(|(p, m)| fail(&p, m))
    };
    let steps = list("steps", &plan.steps)?;
    let on_failure = list("on_failure", &plan.on_failure)?;
    let always = list("always", &plan.always)?;
    let level = match level {
        Some(level) => {
            let runbook = plan
                .recovery
                .as_ref()
                .and_then(|r| r.levels.get(level))
                .map(|l| l.steps.as_slice())
                .unwrap_or_default();
            let steps = list(&format!("recovery/levels/{level}/steps"), runbook)?;
            Some(RenderedLevel { steps })
        }
        None => None,
    };
    let drill = match &plan.drill {
        Some(drill) => {
            let raw = serde_json::to_value(drill).map_err(|e| fail("/drill", e.to_string()))?;
            let rendered =
                render_value(&renderer, &raw, &context, "/drill").map_err(|(p, m)| fail(&p, m))?;
            Some(serde_json::from_value(rendered).map_err(|e| fail("/drill", e.to_string()))?)
        }
        None => None,
    };
    let monitoring = Monitoring {
        healthchecks,
        textfile_dir: match &plan.metrics {
            Some(metrics) => Some(PathBuf::from(
                r.text(&metrics.textfile_dir, "/metrics/textfile_dir")
                    .map_err(|(p, m)| fail(&p, m))?,
            )),
            None => None,
        },
        rpo: plan
            .recovery
            .as_ref()
            .and_then(|r| r.objectives.as_ref())
            .and_then(|o| o.rpo)
            .map(Duration::as_std),
    };
    let cleanup_templates = (!plan.on_failure.is_empty() || !plan.always.is_empty()).then(|| {
        let cleanup: Vec<&Step> = plan.on_failure.iter().chain(&plan.always).collect();
        let text = serde_json::to_string(&cleanup).unwrap_or_default();
        let needs_offsite = text.contains("data_loss_window")
            || text.contains("offsite_set")
            || cleanup
                .iter()
                .any(|s| matches!(s.kind(), StepKind::Notify(_)));
        Arc::new(CleanupTemplates {
            renderer,
            context,
            redactor: Arc::clone(&redactor),
            on_failure: plan.on_failure.clone(),
            always: plan.always.clone(),
            needs_offsite,
        })
    });

    let plan = ExecPlan {
        name: plan.name.clone(),
        file: loaded.path.clone(),
        digest: loaded.digest.clone(),
        run_id: options.run_id.clone(),
        scratch: options.scratch.clone(),
        steps,
        on_failure,
        always,
        kill_grace: plan.kill_grace.unwrap_or(Duration::from_secs(10)).as_std(),
        redactor,
        sources,
        storage,
        backup_storage: analyzer::backup_storage(plan).map(str::to_owned),
        retention: plan.retention.clone().map(|mut r| {
            r.timezone = r.timezone.or_else(|| plan.timezone.clone());
            r
        }),
        timezone: plan.timezone.clone(),
        monitoring,
        cleanup_templates,
        drill,
        objectives: plan.recovery.as_ref().and_then(|r| r.objectives.clone()),
    };
    Ok((plan, level))
}

/// The plan's `on_failure` and `always` steps as written, with what rendered them, so that
/// they can be rendered again once the run's outcome is known: their templates see
/// `run.status`, `run.failed_steps`, `run.duration`, `run.set` and `run.data_loss_window`.
pub struct CleanupTemplates {
    renderer: Renderer,
    /// The render context; it holds secret values, so it is never shown.
    context: Value,
    redactor: Arc<Redactor>,
    on_failure: Vec<Step>,
    always: Vec<Step>,
    /// A cleanup step names the data-loss window or sends a summary, so the engine lists the
    /// off-site storages before cleanup; otherwise that listing is skipped.
    pub needs_offsite: bool,
}

impl std::fmt::Debug for CleanupTemplates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CleanupTemplates").finish_non_exhaustive()
    }
}

impl CleanupTemplates {
    /// `on_failure` and `always`, rendered with the run's outcome. The same templates
    /// rendered before the run with an outcome of the same shape, so an error here is rare;
    /// it names the key path.
    pub fn render(
        &self,
        outcome: &RunOutcome,
        now: DateTime<Utc>,
    ) -> Result<(Vec<ExecStep>, Vec<ExecStep>), String> {
        let mut context = self.context.clone();
        if let Some(run) = context["run"].as_object_mut() {
            run.extend(outcome.template_keys(now));
        }
        let r = StepRenderer {
            renderer: &self.renderer,
            context: &context,
            redactor: &self.redactor,
        };
        let list = |section: &str, steps: &[Step]| -> Result<Vec<ExecStep>, String> {
            r.section(section, steps)
                .map_err(|(p, m)| format!("{}: {m}", key_path(&p)))
        };
        Ok((
            list("on_failure", &self.on_failure)?,
            list("always", &self.always)?,
        ))
    }
}

fn resolve_secret(
    name: &str,
    source: &SecretSource,
    env: &BTreeMap<String, String>,
) -> Result<Secret, String> {
    match source {
        SecretSource::Env(var) => match env.get(var) {
            Some(value) if !value.is_empty() => Ok(Secret::new(value.as_str())),
            _ => Err(format!(
                "secret `{name}`: environment variable `{var}` is not set"
            )),
        },
        SecretSource::File(file) => match trusted_file::read(Path::new(file), FileRole::Secret) {
            Ok(bytes) => {
                let Ok(text) = String::from_utf8(bytes) else {
                    return Err(format!("secret `{name}`: {file} is not UTF-8 text"));
                };
                let value = text.strip_suffix('\n').unwrap_or(&text);
                let value = value.strip_suffix('\r').unwrap_or(value);
                if value.is_empty() {
                    Err(format!("secret `{name}`: {file} is empty"))
                } else {
                    Ok(Secret::new(value))
                }
            }
            Err(ReadError::Io(error)) => Err(format!(
                "secret `{name}`: cannot read {file}: {}",
                loader::io_reason(&error)
            )),
            Err(ReadError::Untrusted { message, fix }) => {
                Err(format!("secret `{name}`: {message}; {fix}"))
            }
            Err(
                error @ (ReadError::TooLarge { .. }
                | ReadError::NotAFile { .. }
                | ReadError::TimedOut { .. }),
            ) => Err(format!("secret `{name}`: {error}")),
        },
    }
}

/// Secret files that exist but that other accounts could read or change: errors at validation
/// time, so the plan is fixed before the night it would be refused. A missing file is not
/// reported here: plans are often validated away from the machine that holds the secrets.
fn secret_file_problems(plan: &Plan, loaded: &LoadedValue) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, source) in &plan.secrets {
        let SecretSource::File(file) = source else {
            continue;
        };
        let d = match trusted_file::check(Path::new(file), FileRole::Secret) {
            Err(ReadError::Untrusted { message, fix }) => {
                Diagnostic::error(Layer::Permissions, message).help(fix)
            }
            Err(error @ ReadError::NotAFile { .. }) => {
                Diagnostic::error(Layer::Permissions, error.to_string())
            }
            _ => continue,
        };
        let pointer = format!("/secrets/{name}/file");
        out.push(loaded.place(d.path(key_path(&pointer)), loaded.locate(&pointer)));
    }
    out
}

type RenderError = (String, String);

/// Renders every string in each entry of a named section (`storage`, `sources`).
fn render_section<T: serde::Serialize + serde::de::DeserializeOwned>(
    renderer: &Renderer,
    context: &Value,
    section: &str,
    entries: &BTreeMap<String, T>,
) -> Result<Vec<(String, T)>, RenderError> {
    let mut out = Vec::new();
    for (name, value) in entries {
        let pointer = format!("/{section}/{name}");
        let raw = serde_json::to_value(value).map_err(|e| (pointer.clone(), e.to_string()))?;
        let rendered = render_value(renderer, &raw, context, &pointer)?;
        let typed =
            serde_json::from_value(rendered).map_err(|e| (pointer.clone(), e.to_string()))?;
        out.push((name.clone(), typed));
    }
    Ok(out)
}

fn render_value(
    renderer: &Renderer,
    value: &Value,
    context: &Value,
    pointer: &str,
) -> Result<Value, RenderError> {
    Ok(match value {
        Value::String(text) => Value::String(
            renderer
                .render(text, context)
                .map_err(|m| (pointer.to_owned(), m))?,
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| render_value(renderer, item, context, &format!("{pointer}/{i}")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                out.insert(
                    k.clone(),
                    render_value(renderer, v, context, &format!("{pointer}/{k}"))?,
                );
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

struct StepRenderer<'a> {
    renderer: &'a Renderer,
    context: &'a Value,
    redactor: &'a Arc<Redactor>,
}

/// Values of `when` that mean "skip this step".
const FALSY: [&str; 5] = ["", "false", "0", "no", "off"];

impl StepRenderer<'_> {
    /// Every step of a list (`steps`, `on_failure`, `always`); unnamed ones get `always.1`, ….
    fn section(&self, section: &str, steps: &[Step]) -> Result<Vec<ExecStep>, RenderError> {
        steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let default_id = format!("{section}.{}", i + 1);
                self.step(step, &format!("/{section}/{i}"), &default_id)
            })
            .collect()
    }

    fn text(&self, text: &str, pointer: &str) -> Result<String, RenderError> {
        self.renderer
            .render(text, self.context)
            .map_err(|m| (pointer.to_owned(), m))
    }

    fn opt(&self, text: &Option<String>, pointer: &str) -> Result<Option<String>, RenderError> {
        text.as_ref().map(|t| self.text(t, pointer)).transpose()
    }

    fn step(&self, step: &Step, pointer: &str, default_id: &str) -> Result<ExecStep, RenderError> {
        let id = step.id.clone().unwrap_or_else(|| default_id.to_owned());
        let mut env = Vec::new();
        for (name, value) in &step.env {
            let at = format!("{pointer}/env/{name}");
            // `validate` reports these too; checked again here because nothing may run them.
            if let Some((message, help)) = shell_script::env_key_problem(name, value.contains("{{"))
            {
                return Err((at, format!("{message}; {help}")));
            }
            let rendered = self
                .renderer
                .render_env(value, self.context)
                .map_err(|m| (at.clone(), m))?;
            if let Some((message, help)) = shell_script::env_option_value(value, &rendered) {
                return Err((at, format!("{message}; {help}")));
            }
            env.push((name.clone(), rendered));
        }
        let skip = match &step.when {
            Some(when) => {
                let value = self.text(when, &format!("{pointer}/when"))?;
                FALSY
                    .contains(&value.trim().to_ascii_lowercase().as_str())
                    .then(|| format!("`when` rendered `{}`", value.trim()))
            }
            None => None,
        };
        let action = match step.kind() {
            StepKind::Run(argv) => {
                let mut rendered = Vec::new();
                for (i, arg) in argv.iter().enumerate() {
                    let at = format!("{pointer}/run/{i}");
                    let text = self.text(arg, &at)?;
                    // However a secret's value got here (`{{env.VAR}}`, `--var`), argv is
                    // visible to every user in `ps`.
                    if self.redactor.holds_secret(&text) {
                        return Err((
                            at,
                            "this `run:` argument holds the value of a secret, which would show in `ps`; pass it through the step's `env:` instead".into(),
                        ));
                    }
                    rendered.push(text);
                }
                // A value that starts with `-` where the author wrote none is an option; a
                // template where a program takes a command line (`bash -c "{{x}}"`), or as
                // the program itself, would run the value as code.
                if let Some((i, message, help)) = shell_script::run_option_value(argv, &rendered)
                    .or_else(|| {
                        shell_script::run_argv_problem(&rendered, |i| argv[i].contains("{{"))
                    })
                {
                    return Err((format!("{pointer}/run/{i}"), format!("{message}; {help}")));
                }
                let program = rendered.remove(0);
                Action::Run {
                    program,
                    args: rendered,
                }
            }
            StepKind::Shell(script) => {
                let rendered = self
                    .renderer
                    .render_shell(script, self.context)
                    .map_err(|m| (format!("{pointer}/shell"), m))?;
                env.extend(rendered.env);
                Action::Shell {
                    script: rendered.script,
                }
            }
            StepKind::Backup(source) => Action::Backup {
                source: source.to_owned(),
            },
            StepKind::Copy(copy) => Action::Copy {
                to: copy.to.clone(),
                from: copy.from.clone(),
                set: self.opt(&copy.set, &format!("{pointer}/copy/set"))?,
            },
            StepKind::Prune(storage) => Action::Prune {
                storage: storage.to_vec(),
            },
            StepKind::Verify(verify) => Action::Verify {
                storage: verify.storage.clone(),
                set: self.opt(&verify.set, &format!("{pointer}/verify/set"))?,
            },
            StepKind::Restore(restore) => Action::Restore {
                source: restore.source.clone(),
                set: restore
                    .set()
                    .map(|set| {
                        let key = match restore.set_key() {
                            crate::plan::SetKey::From => "from",
                            _ => "set",
                        };
                        self.text(set, &format!("{pointer}/restore/{key}"))
                    })
                    .transpose()?,
                storage: restore.storage.clone(),
                database: self.opt(&restore.database, &format!("{pointer}/restore/database"))?,
                path: self.opt(&restore.path, &format!("{pointer}/restore/path"))?,
                force: restore.force,
                keep_previous: None,
            },
            StepKind::Check(check) => {
                let mut check = check.clone();
                check.sql = self.opt(&check.sql, &format!("{pointer}/check/sql"))?;
                check.http = self.opt(&check.http, &format!("{pointer}/check/http"))?;
                Action::Check(check)
            }
            StepKind::Manual(text) => Action::Manual {
                text: self.text(text, &format!("{pointer}/manual"))?,
            },
            StepKind::Notify(notify) => Action::Notify {
                webhook: self.opt(&notify.webhook, &format!("{pointer}/notify/webhook"))?,
                message: self.opt(&notify.message, &format!("{pointer}/notify/message"))?,
                body: self.opt(&notify.body, &format!("{pointer}/notify/body"))?,
                format: notify.format.unwrap_or_default(),
            },
        };
        let mut rollback = Vec::new();
        for (j, r) in step.rollback.iter().enumerate() {
            rollback.push(self.step(
                r,
                &format!("{pointer}/rollback/{j}"),
                &format!("{id}.rollback.{}", j + 1),
            )?);
        }
        Ok(ExecStep {
            id,
            name: step.name.clone(),
            needs: step.needs.clone(),
            skip,
            timeout: step.timeout.map(Duration::as_std),
            retries: step.retries.unwrap_or(0),
            retry_delay: step.retry_delay.unwrap_or(Duration::from_secs(1)).as_std(),
            // A notification that fails is a warning: it never changes the run's outcome.
            on_failure: match action {
                Action::Notify { .. } => crate::plan::OnFailure::Ignore,
                _ => step.on_failure(),
            },
            rollback,
            env,
            cwd: self
                .opt(&step.cwd, &format!("{pointer}/cwd"))?
                .map(PathBuf::from),
            action,
            redactor: Arc::clone(self.redactor),
        })
    }
}

/// `path` with the `..` that follow the plan's folder written out: `/srv/plans/../target`
/// becomes `/srv/target`. Exact, because `plan_dir` has no symbolic links; a `..` after any
/// other component is kept, since that component may be a link.
fn tidy_after(path: &str, plan_dir: &Path) -> String {
    use std::path::Component;
    let Ok(rest) = Path::new(path).strip_prefix(plan_dir) else {
        return path.to_owned();
    };
    let mut base = plan_dir.to_path_buf();
    let mut parts = rest.components();
    loop {
        let before = parts.clone();
        match parts.next() {
            Some(Component::ParentDir) => {
                base.pop();
            }
            Some(Component::CurDir) => {}
            _ => return base.join(before.as_path()).display().to_string(),
        }
    }
}

#[cfg(test)]
mod tidy_tests {
    use super::tidy_after;
    use std::path::Path;

    #[test]
    fn dot_dots_after_the_plan_folder_are_written_out() {
        let dir = Path::new("/srv/app/plans");
        assert_eq!(
            tidy_after("/srv/app/plans/../target/b", dir),
            "/srv/app/target/b"
        );
        assert_eq!(tidy_after("/srv/app/plans/./../../x", dir), "/srv/x");
        // After another component a `..` stays: that component may be a link.
        assert_eq!(
            tidy_after("/srv/app/plans/link/../x", dir),
            "/srv/app/plans/link/../x"
        );
        assert_eq!(tidy_after("/elsewhere/../x", dir), "/elsewhere/../x");
    }
}
