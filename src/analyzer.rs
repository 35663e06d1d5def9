//! Meaning checks on a schema-valid plan: step ids, references, cycles, levels, cron
//! expressions, time zones, retention, drills and templates. Advice lives in `advice`.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::diagnostic::{Diagnostic, Layer, Location, did_you_mean, key_path};
use crate::loader::LoadedValue;
use crate::plan::{Plan, STEP_KINDS, SetKey, Source, Step, StepKind, Storage};
use crate::template;

/// Old spellings that still work, as warnings that give the new one: `from:` in a restore
/// step (now `set:`) and months written `m` in a calendar span (now `mo`). Kept apart from
/// the checks and the advice because `plan` and `execute` print these too.
pub fn deprecations(plan: &Plan, loaded: &LoadedValue) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut warn = |pointer: &str, message: String, help: &str| {
        let d = Diagnostic::warning(Layer::Deprecation, message)
            .path(key_path(pointer))
            .help(help);
        let location = loaded.locate(pointer);
        out.push(loaded.place(d, location));
    };
    let mut steps = execute_steps(plan);
    if let Some(recovery) = &plan.recovery {
        for (level, runbook) in &recovery.levels {
            let level = level.replace('~', "~0").replace('/', "~1");
            for (i, step) in runbook.steps.iter().enumerate() {
                push_with_rollbacks(
                    format!("/recovery/levels/{level}/steps/{i}"),
                    step,
                    &mut steps,
                );
            }
        }
    }
    for placed in &steps {
        if let StepKind::Restore(restore) = placed.step.kind()
            && restore.set_key() == SetKey::From
        {
            let set = restore.set().unwrap_or("latest");
            warn(
                &format!("{}/restore/from", placed.pointer),
                format!("`from` in a restore step is deprecated: write `set: {set}`"),
                "`from` names a storage in `copy`; a restore step names its set with `set`",
            );
        }
    }
    let mut spans = Vec::new();
    let retentions = plan.retention.iter().map(|r| ("/retention".to_owned(), r));
    let per_storage = plan.storage.iter().filter_map(|(name, storage)| {
        let name = name.replace('~', "~0").replace('/', "~1");
        let pointer = format!("/storage/{name}/{}/retention", storage.kind_name());
        storage.retention().map(|r| (pointer, r))
    });
    for (pointer, retention) in retentions.chain(per_storage) {
        if let Some(span) = retention.keep_within {
            spans.push((format!("{pointer}/keep_within"), span));
        }
    }
    if let Some(recovery) = &plan.recovery {
        if let Some(review) = &recovery.review {
            spans.push(("/recovery/review/every".to_owned(), review.every));
        }
        if let Some(training) = &recovery.training {
            spans.push(("/recovery/training/every".to_owned(), training.every));
        }
    }
    for (pointer, span) in spans {
        let written = loaded.value.pointer(&pointer).and_then(Value::as_str);
        if let (true, Some(written)) = (span.months_as_m, written)
            && let Some(respelled) = crate::duration::respell_months(written)
        {
            warn(
                &pointer,
                crate::duration::months_as_m_warning(written, &respelled),
                "`m` is minutes in a duration; months are written `mo`",
            );
        }
    }
    out.sort_by_key(|d| {
        d.location
            .as_ref()
            .map(|l| (l.file.clone(), l.line, l.column))
    });
    out
}

/// A step with the JSON pointer it was written at.
pub struct PlacedStep<'a> {
    pub pointer: String,
    pub step: &'a Step,
}

/// The storage backups are written to: the one named `local`, else the only local storage.
/// The rule itself lives in [`crate::storage::choice::backup_storage_name`].
pub fn backup_storage(plan: &Plan) -> Option<&str> {
    crate::storage::choice::backup_storage_name(
        plan.storage.iter().map(|(name, s)| (name.as_str(), s)),
    )
}

/// Every step of the execute graph (`steps`, their rollbacks, `on_failure`, `always`).
pub fn execute_steps(plan: &Plan) -> Vec<PlacedStep<'_>> {
    let mut out = Vec::new();
    for (section, list) in [
        ("steps", &plan.steps),
        ("on_failure", &plan.on_failure),
        ("always", &plan.always),
    ] {
        for (i, step) in list.iter().enumerate() {
            push_with_rollbacks(format!("/{section}/{i}"), step, &mut out);
        }
    }
    out
}

fn push_with_rollbacks<'a>(pointer: String, step: &'a Step, out: &mut Vec<PlacedStep<'a>>) {
    let rollbacks: Vec<(String, &Step)> = step
        .rollback
        .iter()
        .enumerate()
        .map(|(j, r)| (format!("{pointer}/rollback/{j}"), r))
        .collect();
    out.push(PlacedStep { pointer, step });
    for (pointer, rollback) in rollbacks {
        push_with_rollbacks(pointer, rollback, out);
    }
}

/// Runs the meaning and template layers.
pub fn check(plan: &Plan, loaded: &LoadedValue) -> Vec<Diagnostic> {
    let mut a = Analyzer {
        plan,
        loaded,
        out: Vec::new(),
    };
    a.check_steps();
    a.check_recovery();
    a.check_recovery_upkeep(chrono::Utc::now());
    a.check_schedules_and_zones();
    a.check_retention();
    a.check_incomplete_after();
    a.check_drill();
    a.check_templates();
    a.check_run_time_refusals();
    a.out.sort_by_key(|d| {
        d.location
            .as_ref()
            .map(|l| (l.file.clone(), l.line, l.column))
    });
    a.out
}

struct Analyzer<'a> {
    plan: &'a Plan,
    loaded: &'a LoadedValue,
    out: Vec<Diagnostic>,
}

impl Analyzer<'_> {
    fn error(&mut self, pointer: &str, message: impl Into<String>, help: Option<String>) {
        let mut d = Diagnostic::error(Layer::Meaning, message).path(key_path(pointer));
        if let Some(help) = help {
            d = d.help(help);
        }
        let location = self.loaded.locate(pointer);
        self.out.push(self.loaded.place(d, location));
    }

    fn reference(&mut self, pointer: &str, what: &str, name: &str, known: Vec<&str>) {
        if known.contains(&name) {
            return;
        }
        let help = match did_you_mean(name, known.iter().copied()) {
            Some(close) => Some(format!("did you mean `{close}`?")),
            None if known.is_empty() => Some(format!("the plan defines no {what}")),
            None => Some(format!(
                "defined: {}",
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
        self.error(pointer, format!("unknown {what} `{name}`"), help);
    }

    fn check_steps(&mut self) {
        let placed = execute_steps(self.plan);
        let mut seen: HashMap<String, String> = HashMap::new();
        for p in &placed {
            self.check_one_step(
                &p.pointer,
                p.step,
                p.pointer.starts_with("/steps/") && !p.pointer.contains("/rollback/"),
            );
            if p.pointer.starts_with("/always/")
                && let StepKind::Backup(source) = p.step.kind()
            {
                // `always` runs after the graph, once the run's set is committed or thrown
                // away, and after failures too: a backup there is not the night's backup of
                // the source, and coverage does not count it.
                self.error(
                    &format!("{}/backup", p.pointer),
                    format!(
                        "a `backup` step belongs in `steps`: `always` runs after the run's set is committed or abandoned, and after failures too, so `backup: {source}` there is no night's backup of `{source}`"
                    ),
                    Some(format!(
                        "move `- {{ id: {source}, backup: {source} }}` to `steps`"
                    )),
                );
            }
            if let Some(id) = &p.step.id {
                self.unique_id(&mut seen, id, &p.pointer);
            }
            self.check_values_reaching_shells(&p.pointer, p.step);
        }
        // `needs` only makes sense among the graph's own steps.
        let ids: Vec<&str> = self
            .plan
            .steps
            .iter()
            .filter_map(|s| s.id.as_deref())
            .collect();
        for p in &placed {
            let top_level = p.pointer.starts_with("/steps/") && !p.pointer.contains("/rollback/");
            for (k, need) in p.step.needs.iter().enumerate() {
                let pointer = format!("{}/needs/{k}", p.pointer);
                if !top_level {
                    self.error(
                        &pointer,
                        "`needs` applies only to steps in `steps`",
                        Some("rollback, on_failure and always steps run in a fixed order".into()),
                    );
                    break;
                }
                self.reference(&pointer, "step", need, ids.clone());
            }
        }
        let graph: Vec<(String, Vec<String>)> = self
            .plan
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    s.id.clone().unwrap_or_else(|| format!("#{i}")),
                    s.needs.clone(),
                )
            })
            .collect();
        if let Some(cycle) = crate::graph::find_cycle(&graph) {
            let first = self
                .plan
                .steps
                .iter()
                .position(|s| s.id.as_deref() == Some(&cycle[0]))
                .unwrap_or(0);
            self.error(
                &format!("/steps/{first}/needs"),
                format!("dependency cycle: {}", cycle.join(" → ")),
                Some("remove one of these `needs`".into()),
            );
        }
    }

    fn unique_id(&mut self, seen: &mut HashMap<String, String>, id: &str, pointer: &str) {
        match seen.get(id) {
            Some(first) => {
                let first_at = self
                    .loaded
                    .locate(first)
                    .map(|l| format!("{}:{}", l.file.display(), l.line))
                    .unwrap_or_else(|| key_path(first));
                self.error(
                    &format!("{pointer}/id"),
                    format!("duplicate step id `{id}`, first used at {first_at}"),
                    Some("step ids must be unique".into()),
                );
            }
            None => {
                seen.insert(id.to_owned(), pointer.to_owned());
            }
        }
    }

    fn check_one_step(&mut self, pointer: &str, step: &Step, needs_id: bool) {
        let kinds = step.kinds();
        match kinds.len() {
            0 => self.error(
                pointer,
                format!(
                    "step{} has no kind",
                    step.id
                        .as_deref()
                        .map(|id| format!(" `{id}`"))
                        .unwrap_or_default()
                ),
                Some(format!(
                    "add one of {}",
                    STEP_KINDS.map(|k| format!("`{k}`")).join(", ")
                )),
            ),
            1 => {}
            _ => self.error(
                pointer,
                format!(
                    "step has more than one kind: {}",
                    kinds
                        .iter()
                        .map(|k| format!("`{}`", k.name()))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
                Some("a step does one thing; split it into several steps".into()),
            ),
        }
        if needs_id && step.id.is_none() {
            self.error(
                pointer,
                "step needs an `id`",
                Some("ids name steps in `needs`, `--only`, logs and run records".into()),
            );
        }
        if step.timeout.is_some_and(|t| t.0.is_zero()) {
            self.error(
                &format!("{pointer}/timeout"),
                "a timeout of 0 would stop the step at once",
                None,
            );
        }
        if let Some(role) = &step.role {
            let known: Vec<&str> = self.plan.roles.keys().map(String::as_str).collect();
            self.reference(&format!("{pointer}/role"), "role", role, known);
        }
        let sources: Vec<&str> = self.plan.sources.keys().map(String::as_str).collect();
        let storage: Vec<&str> = self.plan.storage.keys().map(String::as_str).collect();
        let Some(kind) = kinds.first() else { return };
        match *kind {
            StepKind::Run(argv) => {
                if argv.first().is_some_and(|p| p.trim().is_empty()) {
                    self.error(
                        &format!("{pointer}/run/0"),
                        "the program name is empty",
                        None,
                    );
                }
            }
            StepKind::Backup(source) => {
                self.reference(&format!("{pointer}/backup"), "source", source, sources);
                if backup_storage(self.plan).is_none() {
                    let locals = self
                        .plan
                        .storage
                        .values()
                        .filter(|s| matches!(s, Storage::Local(_)))
                        .count();
                    let help = if locals == 0 {
                        "add a storage such as `local: { local: { path: /var/backups/crm } }`"
                    } else {
                        "with several local storages, name the one backups are written to `local`"
                    };
                    self.error(
                        &format!("{pointer}/backup"),
                        "a backup step needs a local storage to write to",
                        Some(help.into()),
                    );
                }
            }
            StepKind::Copy(copy) => {
                self.reference(
                    &format!("{pointer}/copy/to"),
                    "storage",
                    &copy.to,
                    storage.clone(),
                );
                if let Some(from) = &copy.from {
                    self.reference(&format!("{pointer}/copy/from"), "storage", from, storage);
                }
            }
            StepKind::Prune(names) => {
                for (i, name) in names.iter().enumerate() {
                    self.reference(
                        &format!("{pointer}/prune/{i}"),
                        "storage",
                        name,
                        storage.clone(),
                    );
                }
                self.check_prune_has_policy(pointer, names);
            }
            StepKind::Verify(verify) => {
                self.reference(
                    &format!("{pointer}/verify/storage"),
                    "storage",
                    &verify.storage,
                    storage,
                );
            }
            StepKind::Restore(restore) => {
                self.reference(
                    &format!("{pointer}/restore/source"),
                    "source",
                    &restore.source,
                    sources,
                );
                self.check_original_path(pointer, restore);
                if restore.set_key() == SetKey::Both {
                    self.error(
                        &format!("{pointer}/restore/from"),
                        "a restore step names its set with `set`, and `from` is its old spelling: write one, not both",
                        Some("remove `from`".into()),
                    );
                }
                if let Some(name) = &restore.storage {
                    self.reference(
                        &format!("{pointer}/restore/storage"),
                        "storage",
                        name,
                        storage,
                    );
                }
            }
            StepKind::Check(check) => self.check_check(&format!("{pointer}/check"), check),
            StepKind::Shell(_) | StepKind::Manual(_) | StepKind::Notify(_) => {}
        }
    }

    /// A prune step whose storage has no retention policy (its own or the plan's) would fail
    /// every night at run time; say so now, at the storage name.
    fn check_prune_has_policy(&mut self, pointer: &str, names: &[String]) {
        if self.plan.retention.is_some() {
            return;
        }
        for (i, name) in names.iter().enumerate() {
            let Some(storage) = self.plan.storage.get(name) else {
                continue;
            };
            if storage.retention().is_none() {
                self.error(
                    &format!("{pointer}/prune/{i}"),
                    format!("prune `{name}` has no retention policy to apply"),
                    Some(format!(
                        "add `retention:` to the plan, or to storage `{name}`, e.g. `retention: {{ keep_daily: 7, keep_weekly: 4, keep_monthly: 12 }}`"
                    )),
                );
            }
        }
    }

    /// `path: original` means where a files or directory source's files came from; other
    /// sources have no such place (a database) or one `path` already defaults to.
    fn check_original_path(&mut self, pointer: &str, restore: &crate::plan::RestoreStep) {
        if restore.path.as_deref() != Some(crate::plan::ORIGINAL_PATH) {
            return;
        }
        let Some(source) = self.plan.sources.get(&restore.source) else {
            return;
        };
        let help = match source {
            Source::Files(_) | Source::Directory(_) => return,
            Source::Postgres(_) => "name the database with `database:`",
            Source::Sqlite(_) | Source::Git(_) => {
                "leave `path` out to restore to the source's own path, or name a path"
            }
        };
        self.error(
            &format!("{pointer}/restore/path"),
            format!(
                "`path: original` puts a files or directory source back where it came from, but `{}` is a {} source",
                restore.source,
                source.kind_name()
            ),
            Some(help.into()),
        );
    }

    fn check_check(&mut self, pointer: &str, check: &crate::plan::CheckStep) {
        self.check_check_rules(pointer, check);
    }

    fn check_recovery(&mut self) {
        let Some(recovery) = &self.plan.recovery else {
            return;
        };
        for (level, runbook) in &recovery.levels {
            let pointer = format!(
                "/recovery/levels/{}",
                level.replace('~', "~0").replace('/', "~1")
            );
            if !matches!(level.as_str(), "1" | "2" | "3" | "4") {
                let d = Diagnostic::error(
                    Layer::Meaning,
                    format!("recovery level `{level}` does not exist: levels are 1 to 4"),
                )
                .path(key_path(&pointer))
                .help(
                    "1 data corruption, 2 hardware failure, 3 site disaster, 4 regional disaster",
                );
                let location = self.loaded.locate_key(&pointer);
                self.out.push(self.loaded.place(d, location));
            }
            let mut seen = HashMap::new();
            for (i, step) in runbook.steps.iter().enumerate() {
                let step_pointer = format!("{pointer}/steps/{i}");
                self.check_one_step(&step_pointer, step, true);
                if let Some(id) = &step.id {
                    self.unique_id(&mut seen, id, &step_pointer);
                }
                for (j, rollback) in step.rollback.iter().enumerate() {
                    self.check_one_step(&format!("{step_pointer}/rollback/{j}"), rollback, false);
                }
            }
        }
    }

    /// `recovery.review` and `recovery.training`: a real day that has already come (in the
    /// plan's time zone), and spans that are not zero. Only the clock is read, no host state.
    fn check_recovery_upkeep(&mut self, now: chrono::DateTime<chrono::Utc>) {
        let Some(recovery) = &self.plan.recovery else {
            return;
        };
        let today = now
            .with_timezone(&crate::recovery_health::plan_zone(self.plan))
            .date_naive();
        let mut spans = Vec::new();
        if let Some(review) = &recovery.review {
            spans.push(("/recovery/review/every", review.every));
            match review.last.date() {
                Err(message) => self.error("/recovery/review/last", message, None),
                Ok(last) if last > today => self.error(
                    "/recovery/review/last",
                    format!("`{last}` is in the future: the last review cannot have happened yet"),
                    Some("write the day the recovery plan was last reviewed".into()),
                ),
                Ok(_) => {}
            }
        }
        if let Some(training) = &recovery.training {
            spans.push(("/recovery/training/every", training.every));
        }
        for (pointer, span) in spans {
            if span.is_zero() {
                self.error(
                    pointer,
                    format!("`{span}` is no interval: it would always be due"),
                    Some("write how often, as a calendar span such as `6mo` or `1y`".into()),
                );
            }
        }
    }

    fn check_schedules_and_zones(&mut self) {
        let mut crons = Vec::new();
        if let Some(s) = &self.plan.schedule {
            crons.push(("/schedule".to_owned(), s));
        }
        if let Some(s) = self.plan.drill.as_ref().and_then(|d| d.schedule.as_ref()) {
            crons.push(("/drill/schedule".to_owned(), s));
        }
        for (pointer, schedule) in crons {
            if let Err(error) = croner::parser::CronParser::builder()
                .seconds(croner::parser::Seconds::Disallowed)
                .build()
                .parse(&schedule.cron)
            {
                self.error(
                    &format!("{pointer}/cron"),
                    format!(
                        "`{}` is not a cron expression: {}",
                        schedule.cron,
                        error.to_string().to_lowercase()
                    ),
                    Some(
                        "five fields: minute hour day-of-month month day-of-week, e.g. `0 2 * * *`"
                            .into(),
                    ),
                );
            }
            if let Some(zone) = &schedule.timezone {
                self.check_zone(&format!("{pointer}/timezone"), zone);
            }
        }
        if let Some(zone) = &self.plan.timezone {
            self.check_zone("/timezone", zone);
        }
    }

    fn check_zone(&mut self, pointer: &str, zone: &str) {
        if zone.parse::<chrono_tz::Tz>().is_err() {
            let names = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name());
            let help = did_you_mean(zone, names)
                .map(|close| format!("did you mean `{close}`?"))
                .unwrap_or_else(|| {
                    "use an IANA name such as `UTC`, `Europe/Berlin` or `America/Sao_Paulo`".into()
                });
            self.error(pointer, format!("unknown time zone `{zone}`"), Some(help));
        }
    }

    fn check_retention(&mut self) {
        let mut policies = Vec::new();
        if let Some(r) = &self.plan.retention {
            policies.push(("/retention".to_owned(), r));
        }
        for (name, storage) in &self.plan.storage {
            if let Some(r) = storage.retention() {
                policies.push((
                    format!("/storage/{name}/{}/retention", storage.kind_name()),
                    r,
                ));
            }
        }
        for (pointer, policy) in policies {
            if policy.keeps_nothing() {
                self.error(
                    &pointer,
                    "retention keeps nothing",
                    Some("set at least one `keep_*` rule above 0, e.g. `keep_daily: 7`".into()),
                );
            }
            if let Some(zone) = &policy.timezone {
                self.check_zone(&format!("{pointer}/timezone"), zone);
            }
        }
    }

    /// An `incomplete_after` under an hour would let prune remove a set that a run is still
    /// writing (its manifest comes last).
    fn check_incomplete_after(&mut self) {
        let mut policies = Vec::new();
        if let Some(r) = &self.plan.retention {
            policies.push(("/retention".to_owned(), r));
        }
        for (name, storage) in &self.plan.storage {
            if let Some(r) = storage.retention() {
                policies.push((
                    format!("/storage/{name}/{}/retention", storage.kind_name()),
                    r,
                ));
            }
        }
        for (pointer, policy) in policies {
            if policy.incomplete_after_too_short() {
                self.error(
                    &format!("{pointer}/incomplete_after"),
                    "incomplete_after is shorter than 1h: a backup still being written could be removed",
                    Some("use at least `1h`; the default is `24h`".into()),
                );
            }
        }
    }

    fn check_drill(&mut self) {
        self.check_drill_rules();
    }

    /// Values that would reach a shell as code: `env:` keys bash imports as functions or
    /// reads at startup, `env:` values of a shape a later evaluation could run (with the
    /// plan's own values), and a template where a `run:` shell takes its commands.
    fn check_values_reaching_shells(&mut self, pointer: &str, step: &Step) {
        let secrets: Vec<&str> = self.plan.secrets.keys().map(String::as_str).collect();
        let secret_envs = secret_envs(self.plan);
        for (name, value) in &step.env {
            let at = format!(
                "{pointer}/env/{}",
                name.replace('~', "~0").replace('/', "~1")
            );
            let problem = crate::shell_script::env_key_problem(name, value.contains("{{"))
                .or_else(|| template::check_env(value, &self.plan.vars, &secrets, &secret_envs));
            if let Some((message, help)) = problem {
                self.error(&at, format!("env `{name}`: {message}"), Some(help));
            }
        }
        if let StepKind::Run(argv) = step.kind() {
            let argv: Vec<String> = argv.to_vec();
            if let Some((i, message, help)) =
                crate::shell_script::run_argv_problem(&argv, |i| argv[i].contains("{{"))
            {
                self.error(&format!("{pointer}/run/{i}"), message, Some(help));
            } else if let Some((i, word)) =
                crate::shell_script::run_script_runner(&argv, |i| argv[i].contains("{{"))
            {
                // `[bash, -c, 'eval "$1"', _, "{{vars.x}}"]`: the script is literal, but it
                // runs text, and the value reaches it as `$1`.
                let (message, help) = runner_refusal(word, "an argument after it");
                self.error(&format!("{pointer}/run/{i}"), message, Some(help));
            }
        }
        // A value in `env:` reaches the step's script as `$NAME`: a script that runs text or
        // sets what a command runs takes no value that way either (`eval "$X"`).
        let script = match step.kind() {
            StepKind::Shell(script) => Some(script.to_owned()),
            StepKind::Run(argv) => crate::shell_script::run_script(argv),
            _ => None,
        };
        if let Some(word) = script.as_deref().and_then(crate::shell_script::text_runner)
            && let Some((name, _)) = step.env.iter().find(|(_, v)| v.contains("{{"))
        {
            let at = format!(
                "{pointer}/env/{}",
                name.replace('~', "~0").replace('/', "~1")
            );
            let (message, help) = runner_refusal(word, &format!("`${name}`"));
            self.error(&at, format!("env `{name}`: {message}"), Some(help));
        }
    }

    /// Every string holding `{{` is a template: it must parse and name only what exists.
    fn check_templates(&mut self) {
        let mut found = Vec::new();
        collect_strings(&self.loaded.value, String::new(), &mut found);
        let secrets: Vec<&str> = self.plan.secrets.keys().map(String::as_str).collect();
        let secret_envs = secret_envs(self.plan);
        for (pointer, text) in found {
            let scope = template::Scope {
                vars: &self.plan.vars,
                secrets: secrets.clone(),
                secret_envs: secret_envs.clone(),
                secrets_refused: secret_refusal(&pointer),
                incident: pointer.starts_with("/recovery/levels/"),
                outcome_known: pointer.starts_with("/on_failure/")
                    || pointer.starts_with("/always/"),
            };
            let mut problems = template::check(&text, &scope);
            let mut location = self.loaded.locate(&pointer);
            if problems.is_empty() && pointer.ends_with("/shell") {
                // A value bash would run as code refuses the plan before any night runs it,
                // pointing at the refused `{{…}}` in the file where it can be found.
                if let Some(refusal) =
                    template::check_shell(&text, &self.plan.vars, &secrets, &secret_envs)
                {
                    location = location.map(|start| {
                        script_position(self.loaded, &text, start, refusal.line, refusal.column)
                    });
                    problems.push(template::Problem {
                        message: refusal.message,
                        help: Some(refusal.help),
                    });
                }
            }
            for problem in problems {
                let mut d =
                    Diagnostic::error(Layer::Template, problem.message).path(key_path(&pointer));
                if let Some(help) = problem.help {
                    d = d.help(help);
                }
                self.out.push(self.loaded.place(d, location.clone()));
            }
        }
    }
}

/// Where line `line`, column `column` of a script (a scalar whose text is `script` and which
/// starts at `start`) stands in its file. A block scalar (`|`) keeps the script's lines one to
/// one, and a one-line scalar holds its only line; the line is found in the file by its text,
/// so a folded or escaped scalar, whose lines differ from the file's, keeps the scalar's own
/// position rather than pointing somewhere wrong.
pub fn script_position(
    loaded: &LoadedValue,
    script: &str,
    start: Location,
    line: usize,
    column: usize,
) -> Location {
    let Some(script_line) = script.lines().nth(line.saturating_sub(1)) else {
        return start;
    };
    let Some(file_line) = loaded
        .texts
        .get(&start.file)
        .and_then(|text| text.lines().nth(start.line + line.max(1) - 2))
    else {
        return start;
    };
    // On the scalar's first line, only text after its start belongs to it.
    let skip = if line == 1 {
        start.column.saturating_sub(1)
    } else {
        0
    };
    let tail: String = file_line.chars().skip(skip).collect();
    match tail
        .find(script_line)
        .filter(|_| !script_line.trim().is_empty())
    {
        Some(at) => Location {
            line: start.line + line - 1,
            column: skip + tail[..at].chars().count() + column,
            file: start.file,
        },
        None => start,
    }
}

/// The message and fix for a template that reaches, as `via`, a script naming `word`.
fn runner_refusal(word: &str, via: &str) -> (String, String) {
    (
        format!(
            "a templated value reaches the step's script as {via}, and the script names `{word}`, which starts a shell, runs text as commands or sets what a later command runs"
        ),
        "move the value to a step whose script names none of these, or write it literally in the plan".into(),
    )
}

/// The `stall_timeout` an S3 storage may have: a second at least, as the copy enforces, and
/// an hour at most, since it is the longest a frozen server may hold a night's run.
pub const STALL_TIMEOUT_RANGE: std::ops::RangeInclusive<std::time::Duration> =
    std::time::Duration::from_secs(1)..=std::time::Duration::from_secs(3600);

/// Why a `files` entry would be refused by the backup, if it would: `..` below a symbolic
/// link is not the folder above, so the recorded layout could name a place the file never
/// was. `(message, help)`, shared by validation (plain paths) and rendering (templated ones).
pub fn files_entry_problem(path: &str) -> Option<(String, String)> {
    Path::new(path)
        .components()
        .any(|c| c == std::path::Component::ParentDir)
        .then(|| {
            (
                format!(
                    "`{path}` contains `..`, which the backup refuses: below a symbolic link `..` is not the folder above"
                ),
                format!(
                    "write the real path, as `realpath -m {}` prints it",
                    shlex::try_quote(path).unwrap_or(path.into())
                ),
            )
        })
}

impl Analyzer<'_> {
    /// Values that would pass validation and then fail every night, refused here instead:
    /// an S3 `stall_timeout` outside [`STALL_TIMEOUT_RANGE`] and a `files` entry with `..`.
    /// A templated `files` entry is checked once rendered (`pipeline::render`).
    fn check_run_time_refusals(&mut self) {
        for (name, storage) in &self.plan.storage {
            let Storage::S3(s3) = storage else { continue };
            let Some(stall) = s3.stall_timeout else {
                continue;
            };
            if !STALL_TIMEOUT_RANGE.contains(&stall.as_std()) {
                self.error(
                    &format!("/storage/{name}/s3/stall_timeout"),
                    "stall_timeout must be from 1s to 1h",
                    Some(
                        "it is how long a frozen server may hold a copy; remove it for the default, 2m"
                            .into(),
                    ),
                );
            }
        }
        for (name, source) in &self.plan.sources {
            if let Source::Postgres(pg) = source
                && !pg.database.contains("{{")
                && let Some((message, help)) =
                    crate::source::postgres::database_password_problem(&pg.database)
            {
                self.error(
                    &format!("/sources/{name}/postgres/database"),
                    message,
                    Some(help),
                );
            }
            let Source::Files(files) = source else {
                continue;
            };
            for (i, file) in files.iter().enumerate() {
                if file.contains("{{") {
                    continue;
                }
                if let Some((message, help)) = files_entry_problem(file) {
                    self.error(&format!("/sources/{name}/files/{i}"), message, Some(help));
                }
            }
        }
    }
}

/// Why a rendered source would put a secret where it is written in plain text (a tool's argv,
/// `manifest.json`, reports), if it would: a field other than a postgres `password` holding a
/// secret's value, however it got there (`{{env.VAR}}`, `--var`), or a password written into a
/// postgres connection string. `(pointer, message, help)`, checked when the plan is rendered.
pub fn rendered_source_problem(
    name: &str,
    source: &Source,
    redactor: &crate::redact::Redactor,
) -> Option<(String, String, String)> {
    if let Source::Postgres(pg) = source
        && let Some((message, help)) =
            crate::source::postgres::database_password_problem(&pg.database)
    {
        return Some((format!("/sources/{name}/postgres/database"), message, help));
    }
    let mut value = serde_json::to_value(source).ok()?;
    if let Some(pg) = value.get_mut("postgres").and_then(Value::as_object_mut) {
        pg.remove("password");
    }
    let mut strings = Vec::new();
    collect_all_strings(&value, format!("/sources/{name}"), &mut strings);
    let (pointer, _) = strings
        .into_iter()
        .find(|(_, text)| redactor.holds_secret(text))?;
    let (why, help) = secret_refusal(&pointer)?;
    Some((pointer, format!("the value of a secret {why}"), help))
}

fn collect_all_strings(value: &Value, pointer: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::String(s) => out.push((pointer, s.clone())),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_all_strings(item, format!("{pointer}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                collect_all_strings(v, format!("{pointer}/{k}"), out);
            }
        }
        _ => {}
    }
}

/// The paths a source reads on this machine (none for postgres): what a drill target must
/// stay out of.
pub(crate) fn source_paths(source: &Source) -> Vec<&str> {
    match source {
        Source::Sqlite(s) => vec![s.path.as_str()],
        Source::Directory(d) => vec![d.path.as_str()],
        Source::Git(g) => vec![g.repo.as_str()],
        Source::Files(files) => files.iter().map(String::as_str).collect(),
        Source::Postgres(_) => Vec::new(),
    }
}

/// True when two paths are the same or one contains the other (textually, after trimming).
pub(crate) fn overlaps(a: &str, b: &str) -> bool {
    let a = Path::new(a.trim_end_matches('/'));
    let b = Path::new(b.trim_end_matches('/'));
    a.starts_with(b) || b.starts_with(a)
}

/// `(variable, secret)` for each secret read from an environment variable: a template that
/// reads the variable reads the secret.
pub fn secret_envs(plan: &Plan) -> Vec<(&str, &str)> {
    plan.secrets
        .iter()
        .filter_map(|(name, source)| match source {
            crate::plan::SecretSource::Env(var) => Some((var.as_str(), name.as_str())),
            crate::plan::SecretSource::File(_) => None,
        })
        .collect()
}

/// Why a secret may not stand at `pointer`, and what to do instead; `None` where it may.
/// Secrets are for the places that keep them out of sight (a postgres source's `password`,
/// which reaches the tools through their environment; step `env:` and `shell:`, which pass
/// them as environment variables; storage credentials). Everything else that planrun hands
/// to a program's argv or records in plain text refuses them.
pub fn secret_refusal(pointer: &str) -> Option<(String, String)> {
    let segments: Vec<&str> = pointer.split('/').skip(1).collect();
    let key = segments
        .iter()
        .rev()
        .find(|s| s.parse::<usize>().is_err())
        .copied()
        .unwrap_or_default();
    if is_run_argument(pointer) {
        return Some((
            "in a `run:` argument would show the secret in `ps`".into(),
            "pass it through the step's `env:` and read the variable in the program, or use a `shell:` step".into(),
        ));
    }
    if let ["sources", name, kind, rest @ ..] = segments.as_slice() {
        return match (*kind, rest) {
            ("postgres", ["password"]) => None,
            ("postgres", ["database"]) => Some((
                format!("in source `{name}` (`database`) would be on the command line of pg_dump, pg_restore and psql (`--dbname=…`), visible in `ps`"),
                "put the password in the source's `password:`, which reaches the PostgreSQL tools only through their environment; a connection string is not a secret".into(),
            )),
            ("postgres", _) => Some((
                format!("in source `{name}` (`{key}`) would be recorded in plain text: of a postgres source, only `password` may hold a secret"),
                "put the password in the source's `password:`; names are not secrets".into(),
            )),
            _ => Some((
                format!("in source `{name}` (`{key}`) would be written in plain text to the backup's `manifest.json` and to reports: source paths are recorded"),
                "name the path without a secret: paths are not secrets".into(),
            )),
        };
    }
    if key == "sql" {
        return Some((
            "in a check's SQL would show the secret in `ps` (psql gets the query as `-c …`)".into(),
            "check with a query that needs no secret".into(),
        ));
    }
    if segments.contains(&"restore") {
        return Some((
            format!(
                "in a restore target (`{key}`) would be written in plain text to tools' command lines and reports"
            ),
            "restore targets are names and paths, not secrets: write them out".into(),
        ));
    }
    None
}

/// `/steps/3/run/1` and the like: an argument of a `run:` step, which must not carry secrets.
pub fn is_run_argument(pointer: &str) -> bool {
    let segments: Vec<&str> = pointer.split('/').collect();
    segments.len() >= 3
        && segments[segments.len() - 2] == "run"
        && segments[segments.len() - 1].parse::<usize>().is_ok()
}

fn collect_strings(value: &Value, pointer: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::String(s) if s.contains("{{") => out.push((pointer, s.clone())),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_strings(item, format!("{pointer}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                collect_strings(
                    v,
                    format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        _ => {}
    }
}

/// The rules of `check` steps and of the `drill:` section, kept together because a drill is
/// mostly checks: which forms a check takes, which sources it may read, and where a drill
/// may restore.
impl Analyzer<'_> {
    fn check_check_rules(&mut self, pointer: &str, check: &crate::plan::CheckStep) {
        use crate::plan::Expect;
        let sources: Vec<&str> = self.plan.sources.keys().map(String::as_str).collect();
        let forms = [
            check.sql.is_some(),
            check.files.is_some(),
            check.verify.is_some(),
            check.run.is_some(),
            check.http.is_some(),
        ];
        if forms.iter().filter(|f| **f).count() != 1 {
            self.error(
                pointer,
                "a check needs exactly one of `sql`, `files`, `verify`, `run` or `http`",
                None,
            );
            return;
        }
        if check.sql.is_some() && check.source.is_none() {
            self.error(
                pointer,
                "an `sql` check needs a `source` to run against",
                None,
            );
        }
        if check.source.is_some() && check.sql.is_none() {
            self.error(
                &format!("{pointer}/source"),
                "`source` belongs to `sql` checks",
                Some("a `files` check names its source in `files`".into()),
            );
        }
        for (key, name) in [("source", &check.source), ("files", &check.files)] {
            let Some(name) = name else { continue };
            let at = format!("{pointer}/{key}");
            let Some(source) = self.plan.sources.get(name) else {
                self.reference(&at, "source", name, sources.clone());
                continue;
            };
            let fits = match key {
                "source" => matches!(source, Source::Postgres(_) | Source::Sqlite(_)),
                _ => matches!(source, Source::Directory(_) | Source::Files(_)),
            };
            if !fits {
                let wanted = if key == "source" {
                    "an `sql` check reads a postgres or sqlite source"
                } else {
                    "a `files` check counts a directory or files source"
                };
                self.error(
                    &at,
                    format!("{wanted}; `{name}` is a {} source", source.kind_name()),
                    None,
                );
            }
        }
        if check.verify == Some(false) {
            self.error(
                &format!("{pointer}/verify"),
                "`verify: false` checks nothing",
                Some("write `verify: true`, or remove the check".into()),
            );
        }
        let needs_expect = check.sql.is_some() || check.files.is_some();
        match &check.expect {
            None if needs_expect => self.error(
                pointer,
                "this check needs `expect`: `matches_backup`, `{equals: VALUE}` or `{min: N, max: N}`",
                None,
            ),
            Some(_) if check.verify.is_some() || check.run.is_some() => self.error(
                &format!("{pointer}/expect"),
                "`verify` and `run` checks take no `expect`: they pass when every hash matches or the command exits 0",
                None,
            ),
            Some(Expect::MatchesBackup) if check.http.is_some() => self.error(
                &format!("{pointer}/expect"),
                "an `http` check has no fact recorded at backup time to match",
                Some("expect a status: `{equals: 200}` or `{min: 200, max: 399}`".into()),
            ),
            Some(Expect::Range {
                min: Some(min),
                max: Some(max),
            }) if min > max => self.error(
                &format!("{pointer}/expect"),
                format!("`min` ({min}) is greater than `max` ({max}): nothing can pass"),
                None,
            ),
            _ => {}
        }
        if check.count.is_some() {
            if check.files.is_none() {
                self.error(
                    &format!("{pointer}/count"),
                    "`count` belongs to `files` checks",
                    None,
                );
            } else if matches!(check.expect, Some(Expect::MatchesBackup)) {
                self.error(
                    &format!("{pointer}/count"),
                    "`matches_backup` compares every count the backup recorded; `count` picks one for `equals`, `min` or `max`",
                    Some("remove `count`".into()),
                );
            }
        }
    }

    fn check_drill_rules(&mut self) {
        let Some(drill) = &self.plan.drill else {
            return;
        };
        let storage: Vec<&str> = self.plan.storage.keys().map(String::as_str).collect();
        if let Some(name) = &drill.storage {
            self.reference("/drill/storage", "storage", name, storage);
        }
        if drill.restore.is_empty() {
            self.error(
                "/drill/restore",
                "a drill restores at least one source",
                None,
            );
        }
        let sources: Vec<&str> = self.plan.sources.keys().map(String::as_str).collect();
        for (name, target) in &drill.restore {
            let pointer = format!("/drill/restore/{name}");
            let Some(source) = self.plan.sources.get(name) else {
                self.reference(&pointer, "source", name, sources.clone());
                continue;
            };
            if let Source::Postgres(pg) = source {
                match &target.database {
                    None => self.error(
                        &pointer,
                        format!("the drill target for postgres source `{name}` needs a scratch `database`"),
                        Some("e.g. `database: \"planrun_drill_{{run.id}}\"`".into()),
                    ),
                    Some(db) if db == &pg.database && target.host.is_none() && target.port.is_none() => self.error(
                        &format!("{pointer}/database"),
                        format!("the drill would restore into `{db}`, the source database itself"),
                        Some("a drill restores into a scratch database, e.g. `planrun_drill_{{run.id}}`".into()),
                    ),
                    // The drill drops its database at the end: a name that carries the run
                    // id can only be one the drill created.
                    Some(db) if !db.replace(' ', "").contains("{{run.id}}") => self.error(
                        &format!("{pointer}/database"),
                        format!("the drill's scratch database `{db}` must carry `{{{{run.id}}}}`"),
                        Some("the drill drops it afterwards, so its name must be one no other database has: e.g. `planrun_drill_{{run.id}}`".into()),
                    ),
                    Some(_) => {}
                }
                if target.path.is_some() {
                    self.error(
                        &format!("{pointer}/path"),
                        format!("`{name}` is a postgres source: its drill target is a `database`"),
                        None,
                    );
                }
                continue;
            }
            for key in ["database", "host", "port"] {
                let set = match key {
                    "database" => target.database.is_some(),
                    "host" => target.host.is_some(),
                    _ => target.port.is_some(),
                };
                if set {
                    self.error(
                        &format!("{pointer}/{key}"),
                        format!(
                            "`{key}` is for postgres targets; `{name}` is a {} source: give a `path`",
                            source.kind_name()
                        ),
                        None,
                    );
                }
            }
            let source_paths = source_paths(source);
            match &target.path {
                None => self.error(
                    &pointer,
                    format!("the drill target for source `{name}` needs a scratch `path`"),
                    Some("e.g. `path: media` (inside the drill's scratch folder)".into()),
                ),
                Some(target_path) => {
                    if let Some(hit) = source_paths
                        .iter()
                        .find(|source_path| overlaps(target_path, source_path))
                    {
                        self.error(
                            &format!("{pointer}/path"),
                            format!("the drill would restore into `{target_path}`, which is the source `{name}` (`{hit}`) or overlaps it"),
                            Some("a drill restores into a scratch place: a relative path such as `media` is inside the drill's scratch folder".into()),
                        );
                    }
                }
            }
        }
        for (i, check) in drill.checks.iter().enumerate() {
            let pointer = format!("/drill/checks/{i}");
            self.check_check(&pointer, check);
            for (key, name) in [("source", &check.source), ("files", &check.files)] {
                if let Some(name) = name
                    && self.plan.sources.contains_key(name)
                    && !drill.restore.contains_key(name)
                {
                    self.error(
                        &format!("{pointer}/{key}"),
                        format!("the drill does not restore `{name}`, so nothing can be checked"),
                        Some(format!("add `{name}` to `drill.restore`")),
                    );
                }
            }
        }
    }
}
