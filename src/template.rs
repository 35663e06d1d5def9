//! Templates: Handlebars in strict mode with HTML escaping off, planrun's helpers, shell
//! quoting for `shell:` steps, and a static check that every name a template uses exists.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use handlebars::template::{Parameter, TemplateElement};
use handlebars::{
    Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, RenderErrorReason,
    ScopedJson, Template,
};
use serde_json::Value;

use crate::diagnostic::did_you_mean;
use crate::shell_script::{Refusal, Slot};

/// The roots a template path may start with.
pub const ROOTS: [&str; 6] = ["vars", "secrets", "env", "plan", "run", "set"];
const PLAN_KEYS: [&str; 4] = ["name", "file", "dir", "description"];
const RUN_KEYS: [&str; 3] = ["id", "started", "scratch"];
const SET_KEYS: [&str; 2] = ["id", "path"];
/// What `planrun recover` fills in for a runbook's steps (`{{incident.data_loss_window}}`).
pub const INCIDENT_KEYS: [&str; 3] = ["id", "level", "data_loss_window"];
use crate::run_outcome::{SET_KEYS as OUTCOME_SET_KEYS, TEMPLATE_KEYS as OUTCOME_KEYS};
/// planrun's helpers plus the Handlebars built-ins that make sense in plans.
const HELPERS: [&str; 16] = [
    "now", "env", "quote", "if", "unless", "each", "with", "lookup", "eq", "ne", "gt", "gte", "lt",
    "lte", "and", "or",
];
const MORE_HELPERS: [&str; 3] = ["not", "len", "raw"];
const BLOCK_SCOPES: [&str; 2] = ["each", "with"];

/// What a template may refer to, for the static check.
pub struct Scope<'a> {
    pub vars: &'a BTreeMap<String, Value>,
    pub secrets: Vec<&'a str>,
    /// `(variable, secret)` for each secret read from an environment variable: `{{env.VAR}}`
    /// is that secret, reached another way, and is refused wherever the secret is.
    pub secret_envs: Vec<(&'a str, &'a str)>,
    /// Why a secret may not stand here, and what to do instead (`run:` arguments, which
    /// every user sees in `ps`; source fields, which reach argv and manifests); `None` where
    /// secrets are fine.
    pub secrets_refused: Option<(String, String)>,
    /// True in a recovery level's steps, where `incident.*` exists.
    pub incident: bool,
    /// True in `on_failure` and `always`, which run once the outcome is known: there
    /// `run.status`, `run.failed_steps`, … exist (see `run_outcome::TEMPLATE_KEYS`).
    pub outcome_known: bool,
}

/// What is wrong with one template.
#[derive(Debug, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub help: Option<String>,
}

fn is_helper(name: &str) -> bool {
    HELPERS.contains(&name) || MORE_HELPERS.contains(&name)
}

/// Parses a template and checks every variable and helper it names.
pub fn check(text: &str, scope: &Scope<'_>) -> Vec<Problem> {
    if !text.contains("{{") {
        return Vec::new();
    }
    let template = match Template::compile(text) {
        Ok(template) => template,
        Err(error) => {
            let reason = if text.matches("{{").count() != text.matches("}}").count() {
                "every `{{` needs a matching `}}`".to_owned()
            } else {
                error.reason().to_string()
            };
            return vec![Problem {
                message: format!("template does not parse: {}", lower(&reason)),
                help: Some(
                    "templates use Handlebars: `{{vars.name}}`, `{{now \"%Y%m%d\"}}`".into(),
                ),
            }];
        }
    };
    let mut problems = Vec::new();
    check_elements(&template.elements, scope, false, &mut problems);
    problems
}

fn check_elements(
    elements: &[TemplateElement],
    scope: &Scope<'_>,
    relative_ok: bool,
    out: &mut Vec<Problem>,
) {
    for element in elements {
        match element {
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                let name = parameter_name(&h.name);
                if h.params.is_empty() && h.hash.is_empty() && !is_helper(&name) {
                    check_path(&name, scope, relative_ok, out);
                } else {
                    check_helper(&name, out);
                    check_parameters(&h.params, h.hash.values(), scope, relative_ok, out);
                    if name == "now" {
                        check_now_format(&h.params, out);
                    }
                    if name == "env"
                        && let Some(Parameter::Literal(Value::String(var))) = h.params.first()
                    {
                        check_secret_env(var, scope, out);
                    }
                }
            }
            TemplateElement::HelperBlock(h) => {
                let name = parameter_name(&h.name);
                check_helper(&name, out);
                check_parameters(&h.params, h.hash.values(), scope, relative_ok, out);
                let inner_relative = relative_ok || BLOCK_SCOPES.contains(&name.as_str());
                if let Some(t) = &h.template {
                    check_elements(&t.elements, scope, inner_relative, out);
                }
                if let Some(t) = &h.inverse {
                    check_elements(&t.elements, scope, relative_ok, out);
                }
            }
            TemplateElement::DecoratorExpression(_)
            | TemplateElement::DecoratorBlock(_)
            | TemplateElement::PartialExpression(_)
            | TemplateElement::PartialBlock(_) => out.push(Problem {
                message: "partials and decorators are not supported in plans".into(),
                help: None,
            }),
            _ => {}
        }
    }
}

fn parameter_name(parameter: &Parameter) -> String {
    match parameter {
        Parameter::Name(name) => name.clone(),
        Parameter::Path(path) => path_raw(path),
        Parameter::Literal(value) => value.to_string(),
        Parameter::Subexpression(sub) => sub.name().to_owned(),
        _ => String::new(),
    }
}

fn path_raw(path: &handlebars::Path) -> String {
    match path {
        handlebars::Path::Relative((_, raw)) => raw.clone(),
        handlebars::Path::Local((_, _, raw)) => raw.clone(),
    }
}

fn check_parameters<'p>(
    params: &'p [Parameter],
    hash: impl Iterator<Item = &'p Parameter>,
    scope: &Scope<'_>,
    relative_ok: bool,
    out: &mut Vec<Problem>,
) {
    for parameter in params.iter().chain(hash) {
        match parameter {
            Parameter::Path(path) => check_path(&path_raw(path), scope, relative_ok, out),
            Parameter::Name(name) => check_path(name, scope, relative_ok, out),
            Parameter::Subexpression(sub) => {
                check_helper(sub.name(), out);
                let params = sub.params().cloned().unwrap_or_default();
                let hash: Vec<Parameter> = sub
                    .hash()
                    .map(|h| h.values().cloned().collect())
                    .unwrap_or_default();
                check_parameters(&params, hash.iter(), scope, relative_ok, out);
            }
            _ => {}
        }
    }
}

fn check_helper(name: &str, out: &mut Vec<Problem>) {
    if !is_helper(name) {
        let all: Vec<&str> = HELPERS.iter().chain(MORE_HELPERS.iter()).copied().collect();
        out.push(Problem {
            message: format!("unknown helper `{name}`"),
            help: Some(match did_you_mean(name, all.iter().copied()) {
                Some(close) => format!("did you mean `{close}`?"),
                None => "helpers are `now`, `env`, `quote` and Handlebars' `if`, `unless`, `each`, `with`, `eq`, …".into(),
            }),
        });
    }
}

fn check_now_format(params: &[Parameter], out: &mut Vec<Problem>) {
    if let Some(Parameter::Literal(Value::String(format))) = params.first()
        && let Err(message) = validate_strftime(format)
    {
        out.push(Problem {
            message,
            help: None,
        });
    }
}

/// chrono panics inside `Display` on a bad pattern, so patterns are checked before use.
pub fn validate_strftime(format: &str) -> Result<(), String> {
    if StrftimeItems::new(format).any(|item| matches!(item, Item::Error)) {
        Err(format!(
            "`{format}` is not a valid date format (see chrono's strftime: %Y%m%d, %H%M)"
        ))
    } else {
        Ok(())
    }
}

fn check_path(raw: &str, scope: &Scope<'_>, relative_ok: bool, out: &mut Vec<Problem>) {
    let segments: Vec<&str> = raw.split(['.', '/']).filter(|s| !s.is_empty()).collect();
    let Some(&root) = segments.first() else {
        return;
    };
    if root.starts_with('@') || root == "this" || root == ".." {
        if !relative_ok {
            out.push(Problem {
                message: format!("`{raw}` can only be used inside `#each` or `#with`"),
                help: None,
            });
        }
        return;
    }
    let rest = &segments[1..];
    let missing = |what: String, known: Vec<String>, out: &mut Vec<Problem>| {
        let help = did_you_mean(
            rest.last().copied().unwrap_or(""),
            known.iter().map(String::as_str),
        )
        .map(|close| format!("did you mean `{}`?", replace_last(raw, close)))
        .or_else(|| (!known.is_empty()).then(|| format!("defined: {}", known.join(", "))));
        out.push(Problem {
            message: what,
            help,
        });
    };
    match root {
        "vars" => {
            let mut node: Option<&Value> = None;
            let mut keys: Vec<String> = scope.vars.keys().cloned().collect();
            for (depth, segment) in rest.iter().enumerate() {
                let found = match node {
                    None => scope.vars.get(*segment),
                    Some(Value::Object(map)) => map.get(*segment),
                    Some(_) => None,
                };
                match found {
                    Some(value) => {
                        node = Some(value);
                        keys = match value {
                            Value::Object(map) => map.keys().cloned().collect(),
                            _ => Vec::new(),
                        };
                    }
                    None => {
                        let shown = segments[..depth + 2].join(".");
                        missing(format!("undefined variable `{shown}`"), keys, out);
                        return;
                    }
                }
            }
            if rest.is_empty() {
                out.push(Problem {
                    message: "`vars` needs a name: `{{vars.NAME}}`".into(),
                    help: None,
                });
            }
        }
        "secrets" => {
            if let Some((why, help)) = &scope.secrets_refused {
                out.push(Problem {
                    message: format!("`{raw}` {why}"),
                    help: Some(help.clone()),
                });
                return;
            }
            match rest.first() {
                Some(name) if scope.secrets.contains(name) && rest.len() == 1 => {}
                _ => missing(
                    format!("undefined secret `{raw}`"),
                    scope.secrets.iter().map(|s| s.to_string()).collect(),
                    out,
                ),
            }
        }
        "env" => {
            if rest.len() != 1 {
                out.push(Problem {
                    message: format!("`{raw}`: use `{{{{env.NAME}}}}`"),
                    help: None,
                });
            } else {
                check_secret_env(rest[0], scope, out);
            }
        }
        "incident" if !scope.incident => out.push(Problem {
            message: format!("`{raw}` exists only in the steps of a recovery level"),
            help: Some(
                "`planrun recover` fills in `incident.*`; other steps have no incident".into(),
            ),
        }),
        "run" if rest.first().is_some_and(|k| OUTCOME_KEYS.contains(k)) => {
            check_outcome_path(raw, rest, scope, out);
        }
        "plan" | "run" | "set" | "incident" => {
            let keys: &[&str] = match root {
                "plan" => &PLAN_KEYS,
                "run" => &RUN_KEYS,
                "incident" => &INCIDENT_KEYS,
                _ => &SET_KEYS,
            };
            if rest.len() != 1 || !keys.contains(&rest[0]) {
                missing(
                    format!("unknown variable `{raw}`"),
                    keys.iter()
                        .map(|k| format!("{root}.{k}"))
                        .map(|k| k.trim_start_matches(&format!("{root}.")).to_owned())
                        .collect(),
                    out,
                );
            }
        }
        _ if relative_ok => {}
        _ => {
            let help = did_you_mean(root, ROOTS)
                .map(|close| format!("did you mean `{}`?", raw.replacen(root, close, 1)))
                .or_else(|| {
                    scope
                        .vars
                        .contains_key(root)
                        .then(|| format!("did you mean `vars.{raw}`?"))
                })
                .unwrap_or_else(|| {
                    "variables start with vars., secrets., env., plan., run. or set.".into()
                });
            out.push(Problem {
                message: format!("undefined variable `{raw}`"),
                help: Some(help),
            });
        }
    }
}

/// `{{env.VAR}}` or `{{env "VAR"}}` where `VAR` is the source of a secret: it is that secret,
/// so it is refused wherever the secret would be.
fn check_secret_env(var: &str, scope: &Scope<'_>, out: &mut Vec<Problem>) {
    let Some((why, help)) = &scope.secrets_refused else {
        return;
    };
    if let Some((_, secret)) = scope.secret_envs.iter().find(|(v, _)| *v == var) {
        out.push(Problem {
            message: format!(
                "`env.{var}` holds the secret `{secret}` (read from `{var}`): `secrets.{secret}` {why}"
            ),
            help: Some(help.clone()),
        });
    }
}

/// `run.status` and the other outcome keys: only where the outcome is known, and `run.set`
/// only through its own keys.
fn check_outcome_path(raw: &str, rest: &[&str], scope: &Scope<'_>, out: &mut Vec<Problem>) {
    if !scope.outcome_known {
        out.push(Problem {
            message: format!("`{raw}` is known only once the run has ended"),
            help: Some(
                "use it in `on_failure` or `always`, which run after the steps and see the run's outcome"
                    .into(),
            ),
        });
        return;
    }
    let fine = match rest {
        ["set", key] => OUTCOME_SET_KEYS.contains(key),
        ["set"] | ["set", ..] => false,
        [_] => true,
        _ => false,
    };
    if !fine {
        let help = if rest.first() == Some(&"set") {
            "`run.set` has `run.set.id`, `run.set.bytes` and `run.set.sources`".to_owned()
        } else {
            format!("`run.{}` has no keys of its own", rest[0])
        };
        out.push(Problem {
            message: format!("unknown variable `{raw}`"),
            help: Some(help),
        });
    }
}

fn replace_last(raw: &str, replacement: &str) -> String {
    match raw.rfind(['.', '/']) {
        Some(at) => format!("{}{replacement}", &raw[..=at]),
        None => replacement.to_owned(),
    }
}

fn lower(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The renderers: one plain, one for bash scripts where every interpolated value becomes a
/// reference to an environment variable (see `shell_script`).
pub struct Renderer {
    plain: Handlebars<'static>,
    shell: Handlebars<'static>,
    /// The values of the shell render in progress: secrets first, then every `{{value}}` met,
    /// each standing in the text as the token `{token_prefix}{index}__`.
    shell_slots: Arc<Mutex<Vec<Slot>>>,
    /// Random per renderer, so neither plan text nor a value can forge a token.
    token_prefix: String,
}

/// A shell script ready for bash, and what each of its variables holds.
#[derive(Debug)]
pub struct ShellScript {
    pub script: String,
    /// Every variable the script refers to, with its value; the child's environment.
    pub env: Vec<(String, String)>,
}

impl Renderer {
    pub fn new(now: DateTime<Utc>, timezone: Tz, env: BTreeMap<String, String>) -> Self {
        let shell_slots: Arc<Mutex<Vec<Slot>>> = Arc::default();
        let mut random = [0u8; 8];
        // Without randomness the tokens are still unlikely in a plan; they would only ever
        // turn text into a reference, never a value into code.
        let _ = getrandom::fill(&mut random);
        let nonce: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let token_prefix = format!("__PLANRUN_{nonce}_");
        let build = |shell: bool| {
            let mut hb = Handlebars::new();
            hb.set_strict_mode(true);
            if shell {
                let slots = shell_slots.clone();
                let prefix = token_prefix.clone();
                hb.register_escape_fn(move |value: &str| {
                    let mut slots = slots.lock().unwrap_or_else(|e| e.into_inner());
                    // A secret renders as its own token; keep it so it becomes a reference.
                    let secret_token = (0..slots.len())
                        .filter(|&i| slots[i].secret)
                        .any(|i| value == format!("{prefix}{i}__"));
                    if secret_token {
                        return value.to_owned();
                    }
                    let index = slots.len();
                    let values = slots.iter().filter(|s| !s.secret).count();
                    slots.push(Slot {
                        var: format!("PLANRUN_V_{}", values + 1),
                        value: value.to_owned(),
                        secret: false,
                    });
                    format!("{prefix}{index}__")
                });
            } else {
                hb.register_escape_fn(handlebars::no_escape);
            }
            hb.register_helper("now", Box::new(NowHelper { now, timezone }));
            hb.register_helper("env", Box::new(EnvHelper { env: env.clone() }));
            hb.register_helper("quote", Box::new(QuoteHelper { shell }));
            hb
        };
        Renderer {
            plain: build(false),
            shell: build(true),
            shell_slots,
            token_prefix,
        }
    }

    /// Renders a template as text (no escaping).
    pub fn render(&self, text: &str, context: &Value) -> Result<String, String> {
        if !text.contains("{{") {
            return Ok(text.to_owned());
        }
        self.plain
            .render_template(text, context)
            .map_err(explain_render_error)
    }

    /// Renders a bash script: each `{{x}}` and each secret becomes a reference to an
    /// environment variable (`PLANRUN_V_<n>`, `PLANRUN_SECRET_<NAME>`), and `{{{x}}}` is
    /// inserted raw. A value where bash would run it as code refuses the script, naming the
    /// line and column in the script.
    pub fn render_shell(&self, text: &str, context: &Value) -> Result<ShellScript, String> {
        self.render_shell_checked(text, context)
            .map_err(|e| match e {
                ShellError::Render(m) => m,
                ShellError::Refused((m, help, _)) => format!("{m}; {help}"),
            })
    }

    fn render_shell_checked(&self, text: &str, context: &Value) -> Result<ShellScript, ShellError> {
        let (rendered, slots) = self.render_tokens(text, context)?;
        match crate::shell_script::place(&rendered, &self.token_prefix, &slots) {
            Ok(placed) => Ok(ShellScript {
                script: placed.script,
                env: placed.env,
            }),
            Err(refusal) => Err(ShellError::Refused(
                self.explain_refusal(text, &rendered, &refusal, &slots, true),
            )),
        }
    }

    /// Renders with every value and secret standing as a token; returns the text and the
    /// values the tokens stand for.
    fn render_tokens(
        &self,
        text: &str,
        context: &Value,
    ) -> Result<(String, Vec<Slot>), ShellError> {
        let mut masked = context.clone();
        let mut slots = Vec::new();
        if let Some(Value::Object(map)) = masked.get_mut("secrets") {
            for (name, value) in map.iter_mut() {
                slots.push(Slot {
                    var: secret_env_name(name),
                    value: value.as_str().unwrap_or_default().to_owned(),
                    secret: true,
                });
                *value = Value::String(format!("{}{}__", self.token_prefix, slots.len() - 1));
            }
        }
        *self.shell_slots.lock().unwrap_or_else(|e| e.into_inner()) = slots;
        let rendered = self
            .shell
            .render_template(text, &masked)
            .map_err(|e| ShellError::Render(explain_render_error(e)));
        let slots =
            std::mem::take(&mut *self.shell_slots.lock().unwrap_or_else(|e| e.into_inner()));
        Ok((rendered?, slots))
    }

    /// Says which value was refused, where it stands in the script as written, and why.
    fn explain_refusal(
        &self,
        template: &str,
        rendered: &str,
        refusal: &Refusal,
        slots: &[Slot],
        in_script: bool,
    ) -> (String, String, (usize, usize)) {
        // Lines match between the template and the rendering unless a value or a block
        // helper spans lines; the column is that of the same `{{` on the line when it can be
        // found.
        let line = rendered.lines().nth(refusal.line - 1).unwrap_or_default();
        let before: String = line.chars().take(refusal.column - 1).collect();
        let nth = before.matches(&self.token_prefix).count();
        let mut column = refusal.column;
        let mut expression = None;
        if let Some(source) = template.lines().nth(refusal.line - 1) {
            let mut starts = source
                .match_indices("{{")
                .map(|(i, _)| i)
                .filter(|&i| i == 0 || !source[..i].ends_with('{'));
            if let Some(at) = starts.nth(nth) {
                column = source[..at].chars().count() + 1;
                let end = source[at..].find("}}").map_or(source.len(), |e| at + e + 2);
                let end = if source[end..].starts_with('}') {
                    end + 1
                } else {
                    end
                };
                expression = Some(source[at..end].to_owned());
            }
        }
        let slot = &slots[refusal.slot];
        let what = match expression {
            Some(expr) => format!("`{expr}`"),
            None if slot.secret => "a secret".to_owned(),
            None => "a value".to_owned(),
        };
        let shown = if slot.secret {
            String::new()
        } else {
            format!(
                " (`{}`)",
                display_quote(&slot.value)
                    .chars()
                    .take(60)
                    .collect::<String>()
            )
        };
        let at = if in_script {
            format!("script line {}, column {column}: ", refusal.line)
        } else {
            String::new()
        };
        (
            format!("{at}{what}{shown}: {}", refusal.reason),
            refusal.help.clone(),
            (refusal.line, column),
        )
    }

    /// Renders a step's `env:` value. The variable reaches the step's program (often a shell,
    /// which may evaluate it later in arithmetic, `${!…}` or `${…@P}`), so every non-secret
    /// `{{value}}` in it must be of a shape no later evaluation can run (see
    /// `shell_script::code_shape`). `{{{value}}}` is the plan's explicit way around this.
    pub fn render_env(&self, text: &str, context: &Value) -> Result<String, String> {
        self.render_env_checked(text, context).map_err(|e| match e {
            ShellError::Render(m) => m,
            ShellError::Refused((m, help, _)) => format!("{m}; {help}"),
        })
    }

    fn render_env_checked(&self, text: &str, context: &Value) -> Result<String, ShellError> {
        if !text.contains("{{") {
            return Ok(text.to_owned());
        }
        // The check renders with tokens to see each value on its own; the text the step gets
        // is the plain rendering, so helpers such as `quote` behave as everywhere else.
        let (rendered, slots) = self.render_tokens(text, context)?;
        let mut line = 1;
        let mut column = 1;
        let mut k = 0;
        while k < rendered.len() {
            let rest = &rendered[k..];
            if let Some(after) = rest.strip_prefix(&self.token_prefix) {
                let digits = after.bytes().take_while(u8::is_ascii_digit).count();
                if let Some(slot) = after[..digits]
                    .parse::<usize>()
                    .ok()
                    .filter(|&s| s < slots.len() && after[digits..].starts_with("__"))
                    && !slots[slot].secret
                    && let Some(found) = crate::shell_script::code_shape(&slots[slot].value)
                {
                    let refusal = Refusal {
                        line,
                        column,
                        slot,
                        reason: crate::shell_script::shape_reason(found),
                        help: crate::shell_script::SHAPE_HELP.into(),
                    };
                    return Err(ShellError::Refused(
                        self.explain_refusal(text, &rendered, &refusal, &slots, false),
                    ));
                }
            }
            let c = rest.chars().next().unwrap_or_default();
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
            k += c.len_utf8();
        }
        self.render(text, context).map_err(ShellError::Render)
    }
}

enum ShellError {
    /// The template itself failed (a missing value): reported where the plan is rendered.
    Render(String),
    /// A value stands where bash would run it as code: the message, the fix, and the line
    /// and column of its `{{…}}` in the template.
    Refused((String, String, (usize, usize))),
}

/// For `validate`: renders a `shell:` script with the plan's own values (secrets unknown,
/// the current environment) and says why it would be refused, if it would. Rendering errors
/// are left to the render stage, which reports them with the real values.
pub fn check_shell(
    text: &str,
    vars: &BTreeMap<String, Value>,
    secrets: &[&str],
    secret_envs: &[(&str, &str)],
) -> Option<ShellRefusal> {
    let (renderer, context) = validation_context(vars, secrets, secret_envs);
    match renderer.render_shell_checked(text, &context) {
        Err(ShellError::Refused((message, help, (line, column)))) => Some(ShellRefusal {
            message,
            help,
            line,
            column,
        }),
        _ => None,
    }
}

/// The line and column of the refused `{{…}}` in the script as written, read back from a
/// refusal message of [`Renderer::render_shell`] (`script line 2, column 26: …`).
pub fn refusal_position(message: &str) -> Option<(usize, usize)> {
    let rest = message.strip_prefix("script line ")?;
    let (line, rest) = rest.split_once(", column ")?;
    let (column, _) = rest.split_once(':')?;
    Some((line.parse().ok()?, column.parse().ok()?))
}

/// Why `validate` refuses a `shell:` script, and where: `line` and `column` (1-based) of the
/// refused `{{…}}` in the script as written, so the plan's diagnostic can point at it.
pub struct ShellRefusal {
    pub message: String,
    pub help: String,
    pub line: usize,
    pub column: usize,
}

/// For `validate`: the same for a step's `env:` value, whose values must be of a shape no
/// later evaluation can run.
pub fn check_env(
    text: &str,
    vars: &BTreeMap<String, Value>,
    secrets: &[&str],
    secret_envs: &[(&str, &str)],
) -> Option<(String, String)> {
    let (renderer, context) = validation_context(vars, secrets, secret_envs);
    match renderer.render_env_checked(text, &context) {
        Err(ShellError::Refused((message, help, _))) => Some((message, help)),
        _ => None,
    }
}

/// The context `validate` renders with: secrets, and the environment variables they are read
/// from, stand as `***`, so a refusal that shows a value never shows a secret.
fn validation_context(
    vars: &BTreeMap<String, Value>,
    secrets: &[&str],
    secret_envs: &[(&str, &str)],
) -> (Renderer, Value) {
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    for (var, _) in secret_envs {
        if let Some(value) = env.get_mut(*var) {
            crate::redact::MASK.clone_into(value);
        }
    }
    let renderer = Renderer::new(Utc::now(), Tz::UTC, env.clone());
    let secrets: serde_json::Map<String, Value> = secrets
        .iter()
        .map(|s| (s.to_string(), Value::String("***".into())))
        .collect();
    let context = serde_json::json!({
        "vars": vars,
        "secrets": secrets,
        "env": env,
        "plan": {"name": "", "file": "", "dir": "", "description": ""},
        "run": {"id": "", "started": "", "scratch": ""},
        "set": {"id": "", "path": ""},
    });
    let mut context = context;
    if let Some(run) = context["run"].as_object_mut() {
        run.extend(crate::run_outcome::RunOutcome::not_started().template_keys(Utc::now()));
    }
    (renderer, context)
}

/// The environment variable a secret reaches a shell step through.
pub fn secret_env_name(secret: &str) -> String {
    format!("PLANRUN_SECRET_{}", name_token(secret))
}

fn name_token(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn explain_render_error(error: RenderError) -> String {
    match error.reason() {
        RenderErrorReason::MissingVariable(Some(path)) => {
            let path = path.trim_start_matches("[").trim_end_matches("]");
            match path.strip_prefix("env.") {
                Some(name) => format!("environment variable `{name}` is not set"),
                None => format!("`{path}` has no value"),
            }
        }
        _ => lower(&error.reason().to_string()),
    }
}

/// POSIX shell quoting: the value is one word, whatever it holds.
pub fn shell_quote(value: &str) -> String {
    if value.is_empty() {
        return "''".into();
    }
    if value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_-./=:,@%+".contains(&b))
    {
        return value.to_owned();
    }
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Quoting for showing a command to a person: like `shell_quote`, but control characters
/// (a newline in an argument) are written as `$'\n'` so the command stays on one line.
pub fn display_quote(value: &str) -> String {
    if !value.chars().any(char::is_control) {
        return shell_quote(value);
    }
    let mut out = String::from("$'");
    for c in value.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

struct NowHelper {
    now: DateTime<Utc>,
    timezone: Tz,
}

impl HelperDef for NowHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let format = match h.param(0) {
            Some(p) => p
                .value()
                .as_str()
                .unwrap_or("%Y-%m-%dT%H:%M:%SZ")
                .to_owned(),
            None => "%Y-%m-%dT%H:%M:%SZ".to_owned(),
        };
        validate_strftime(&format).map_err(|m| RenderError::from(RenderErrorReason::Other(m)))?;
        let text = self
            .now
            .with_timezone(&self.timezone)
            .format(&format)
            .to_string();
        Ok(ScopedJson::Derived(Value::String(text)))
    }
}

struct EnvHelper {
    env: BTreeMap<String, String>,
}

impl HelperDef for EnvHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let name = h.param(0).and_then(|p| p.value().as_str()).ok_or_else(|| {
            RenderErrorReason::Other("`env` needs a variable name: {{env \"NAME\"}}".into())
        })?;
        let value = match (self.env.get(name), h.hash_get("default")) {
            (Some(value), _) => value.clone(),
            (None, Some(default)) => default
                .value()
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| default.value().to_string()),
            (None, None) => {
                return Err(RenderErrorReason::Other(format!(
                    "environment variable `{name}` is not set (give a default: {{{{env \"{name}\" default=\"…\"}}}})"
                ))
                .into());
            }
        };
        Ok(ScopedJson::Derived(Value::String(value)))
    }
}

/// `{{quote x}}`: POSIX-quotes a value. In a shell step every value already becomes an
/// environment reference, so there it passes the value through to that mechanism.
struct QuoteHelper {
    shell: bool,
}

impl HelperDef for QuoteHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let value = h
            .param(0)
            .map(|p| match p.value() {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default();
        let text = if self.shell {
            value
        } else {
            shell_quote(&value)
        };
        Ok(ScopedJson::Derived(Value::String(text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(vars: &BTreeMap<String, Value>) -> Scope<'_> {
        Scope {
            vars,
            secrets: vec!["db_password"],
            secret_envs: vec![("DB_PW", "db_password")],
            secrets_refused: None,
            incident: false,
            outcome_known: false,
        }
    }

    #[test]
    fn finds_undefined_names_with_suggestions() {
        let mut vars = BTreeMap::new();
        vars.insert("app".to_string(), Value::String("/srv".into()));
        let problems = check("{{vars.ap}}/media", &scope(&vars));
        assert_eq!(problems[0].message, "undefined variable `vars.ap`");
        assert_eq!(
            problems[0].help.as_deref(),
            Some("did you mean `vars.app`?")
        );
        assert!(
            check("{{#if vars.missing}}x{{/if}}", &scope(&vars))[0]
                .message
                .contains("vars.missing")
        );
        assert!(
            check("{{nope \"x\"}}", &scope(&vars))[0]
                .message
                .contains("unknown helper")
        );
        assert!(
            check("{{now \"%Q\"}}", &scope(&vars))[0]
                .message
                .contains("not a valid date format")
        );
        assert!(
            check(
                "{{vars.app}} {{env.HOME}} {{run.id}} {{now \"%Y\"}}",
                &scope(&vars)
            )
            .is_empty()
        );
    }

    #[test]
    fn shell_values_and_secrets_become_environment_references() {
        let renderer = Renderer::new(Utc::now(), Tz::UTC, BTreeMap::new());
        let context = serde_json::json!({
            "vars": {"evil": "x\"; touch /tmp/pwned; \""},
            "secrets": {"db_password": "hunter2"},
        });
        let out = renderer
            .render_shell(
                "echo {{vars.evil}} \"{{vars.evil}}\" '{{quote vars.evil}}' {{secrets.db_password}}",
                &context,
            )
            .unwrap();
        assert_eq!(
            out.script,
            r#"echo "${PLANRUN_V_1}" "${PLANRUN_V_2}" ''"${PLANRUN_V_3}"'' "${PLANRUN_SECRET_DB_PASSWORD}""#
        );
        let evil = "x\"; touch /tmp/pwned; \"".to_owned();
        assert_eq!(
            out.env,
            vec![
                (
                    "PLANRUN_SECRET_DB_PASSWORD".to_owned(),
                    "hunter2".to_owned()
                ),
                ("PLANRUN_V_1".to_owned(), evil.clone()),
                ("PLANRUN_V_2".to_owned(), evil.clone()),
                ("PLANRUN_V_3".to_owned(), evil),
            ]
        );
        // Three braces are the one explicit way to insert text as code.
        let raw = renderer
            .render_shell("echo {{{vars.evil}}}", &context)
            .unwrap();
        assert_eq!(raw.script, "echo x\"; touch /tmp/pwned; \"");
        assert!(raw.env.is_empty());
    }

    #[test]
    fn a_value_that_looks_like_a_token_stays_a_value() {
        let renderer = Renderer::new(Utc::now(), Tz::UTC, BTreeMap::new());
        let forged = format!("{}0__", renderer.token_prefix);
        let context = serde_json::json!({"vars": {"v": forged}, "secrets": {}});
        let out = renderer.render_shell("echo {{vars.v}}", &context).unwrap();
        assert_eq!(out.script, "echo \"${PLANRUN_V_1}\"");
        assert_eq!(out.env, vec![("PLANRUN_V_1".to_owned(), forged)]);
    }

    #[test]
    fn refusals_name_the_expression_line_and_column_in_the_script() {
        let renderer = Renderer::new(Utc::now(), Tz::UTC, BTreeMap::new());
        let context =
            serde_json::json!({"vars": {"n": "1+x", "m": "2"}, "secrets": {"pw": "s3cr3t"}});
        let error = renderer
            .render_shell("echo start\necho {{vars.m}} $(( {{vars.n}} ))", &context)
            .unwrap_err();
        assert!(
            error.starts_with(
                "script line 2, column 21: `{{vars.n}}` (`1+x`): the value stands in bash arithmetic"
            ),
            "{error}"
        );
        // A secret is never shown, and never accepted where bash evaluates text.
        let error = renderer
            .render_shell("echo $(( {{secrets.pw}} ))", &context)
            .unwrap_err();
        assert!(
            error.starts_with("script line 1, column 10: `{{secrets.pw}}`: a secret stands"),
            "{error}"
        );
        assert!(!error.contains("s3cr3t"), "{error}");
    }

    #[test]
    fn plain_rendering_does_not_escape_html() {
        let renderer = Renderer::new(Utc::now(), Tz::UTC, BTreeMap::new());
        let out = renderer
            .render("{{vars.a}}", &serde_json::json!({"vars": {"a": "a&b<c>"}}))
            .unwrap();
        assert_eq!(out, "a&b<c>");
    }
}
