//! A stand-in for the lead's `pipeline::load` + `pipeline::render` (issue 2) so `execute`
//! can be driven end to end before that lands: it parses the plan and maps it to an
//! `ExecPlan` with no templating, only `{{vars.NAME}}` substitution. Delete it once
//! `pipeline` is merged.

use std::path::Path;
use std::time::Duration;

use crate::cli::VarOverride;
use crate::exec_plan::{Action, ExecPlan, ExecStep};
use crate::plan::{Plan, SecretSource, Step, StepKind};

pub fn load(path: &Path, overrides: &[VarOverride]) -> Result<ExecPlan, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let document = crate::yaml::parse(&bytes)
        .map_err(|e| format!("{}:{}:{}: {}", path.display(), e.line, e.column, e.message))?;
    let plan: Plan =
        serde_json::from_value(document.value).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut vars: Vec<(String, String)> = plan
        .vars
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string()),
            )
        })
        .collect();
    for o in overrides {
        vars.retain(|(k, _)| k != &o.name);
        vars.push((o.name.clone(), o.value.clone()));
    }
    let mut secret_values = Vec::new();
    for (name, source) in &plan.secrets {
        let value = match source {
            SecretSource::Env(var) => {
                std::env::var(var).map_err(|_| format!("secret `{name}`: ${var} is not set"))?
            }
            SecretSource::File(file) => std::fs::read_to_string(file)
                .map_err(|e| format!("secret `{name}`: {e}"))?
                .trim_end_matches('\n')
                .to_owned(),
        };
        secret_values.push(value);
    }
    let render = |text: &str| {
        let mut out = text.to_owned();
        for (k, v) in &vars {
            out = out.replace(&format!("{{{{vars.{k}}}}}"), v);
        }
        out
    };
    let convert_all = |steps: &[Step], prefix: &str| -> Vec<ExecStep> {
        steps
            .iter()
            .enumerate()
            .map(|(i, s)| convert(s, &format!("{prefix}.{}", i + 1), &render))
            .collect()
    };
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let run_id = format!(
        "{}-{:08x}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        std::process::id()
    );
    Ok(ExecPlan {
        name: plan.name.clone(),
        file: path.to_path_buf(),
        digest,
        scratch: std::env::temp_dir().join(format!("planrun-{run_id}")),
        run_id,
        steps: convert_all(&plan.steps, "steps"),
        on_failure: convert_all(&plan.on_failure, "on_failure"),
        always: convert_all(&plan.always, "always"),
        kill_grace: plan
            .kill_grace
            .map(|d| d.as_std())
            .unwrap_or(Duration::from_secs(10)),
        secret_values,
        sources: Vec::new(),
        storage: Vec::new(),
    })
}

fn convert(step: &Step, fallback: &str, render: &dyn Fn(&str) -> String) -> ExecStep {
    let action = match step.kind() {
        StepKind::Run(argv) => Action::Run {
            program: render(&argv[0]),
            args: argv[1..].iter().map(|a| render(a)).collect(),
        },
        StepKind::Shell(script) => Action::Shell {
            script: render(script),
        },
        StepKind::Backup(source) => Action::Backup {
            source: source.to_owned(),
        },
        StepKind::Manual(text) => Action::Manual {
            text: text.to_owned(),
        },
        _ => Action::Manual {
            text: String::new(),
        },
    };
    let id = step.id.clone().unwrap_or_else(|| fallback.to_owned());
    ExecStep {
        rollback: step
            .rollback
            .iter()
            .enumerate()
            .map(|(i, s)| convert(s, &format!("{id}.rollback.{}", i + 1), render))
            .collect(),
        id,
        name: step.name.clone(),
        needs: step.needs.clone(),
        skip: None,
        timeout: step.timeout.map(|d| d.as_std()),
        retries: step.retries.unwrap_or(0),
        retry_delay: step
            .retry_delay
            .map(|d| d.as_std())
            .unwrap_or(Duration::from_secs(1)),
        on_failure: step.on_failure(),
        env: step
            .env
            .iter()
            .map(|(k, v)| (k.clone(), render(v)))
            .collect(),
        cwd: step.cwd.as_ref().map(|c| render(c).into()),
        action,
    }
}
