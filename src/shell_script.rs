//! Putting template values into bash scripts safely. Rendering leaves a token where each
//! value goes; this module reads the script the way bash will (quotes, `$'…'`, here-documents)
//! and writes each value in the form that is one literal word in that place:
//! `'…'` outside quotes, backslash escapes inside `"…"`, closing and reopening single quotes,
//! and a variable reference in here-document bodies. Secrets always become variable
//! references, so their values travel in the environment and never in argv.

/// Where a token stands in the script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Context {
    Plain,
    Double,
    Single,
    AnsiC,
    Heredoc,
}

/// A value to place: its text, or the environment variable that carries a secret.
pub enum Value<'a> {
    Text(&'a str),
    Env(&'a str),
}

pub const TOKEN_PREFIX: &str = "__PLANRUN_";
const TOKEN_SUFFIX: &str = "__";

/// Replaces every `__PLANRUN_…__` token in `script` through `lookup`, quoted for where it stands.
/// Unknown tokens are left alone. Returns the script and the variables a here-document needs.
pub fn substitute<'a>(
    script: &str,
    lookup: &dyn Fn(&str) -> Option<Value<'a>>,
) -> (String, Vec<(String, String)>) {
    let mut out = String::with_capacity(script.len());
    let mut extra_env = Vec::new();
    let chars: Vec<char> = script.chars().collect();
    let mut i = 0;
    let mut context = Context::Plain;
    let mut at_word_start = true;
    // Here-documents whose bodies start at the next newline: (delimiter, strip leading tabs).
    let mut pending: Vec<(String, bool)> = Vec::new();
    let mut heredoc: Option<(String, bool)> = None;
    let mut line_start = true;

    while i < chars.len() {
        // A token can stand anywhere; recognise it before anything else.
        if chars[i] == '_' {
            let rest: String = chars[i..].iter().take(200).collect();
            if let Some(token) = read_token(&rest)
                && let Some(value) = lookup(&token)
            {
                let text = place(&value, context, &mut extra_env, &token);
                out.push_str(&text);
                i += token.chars().count();
                at_word_start = false;
                line_start = false;
                continue;
            }
        }
        let c = chars[i];
        if let Some((delimiter, strip_tabs)) = &heredoc {
            // Inside a here-document body: a whole line equal to the delimiter ends it.
            if line_start {
                let line: String = chars[i..].iter().take_while(|&&c| c != '\n').collect();
                let candidate = if *strip_tabs {
                    line.trim_start_matches('\t')
                } else {
                    line.as_str()
                };
                if candidate == delimiter {
                    out.push_str(&line);
                    i += line.chars().count();
                    heredoc = None;
                    context = Context::Plain;
                    continue;
                }
            }
            out.push(c);
            line_start = c == '\n';
            i += 1;
            continue;
        }
        match context {
            Context::Plain => match c {
                '\\' => {
                    out.push(c);
                    if let Some(&next) = chars.get(i + 1) {
                        out.push(next);
                        i += 1;
                    }
                }
                '\'' => context = Context::Single,
                '"' => context = Context::Double,
                '$' if chars.get(i + 1) == Some(&'\'') => {
                    out.push('$');
                    i += 1;
                    context = Context::AnsiC;
                    out.push('\'');
                    i += 1;
                    line_start = false;
                    at_word_start = false;
                    continue;
                }
                '#' if at_word_start => {
                    // A comment runs to the end of the line; copy it as it is.
                    while i < chars.len() && chars[i] != '\n' {
                        out.push(chars[i]);
                        i += 1;
                    }
                    continue;
                }
                '<' if chars.get(i + 1) == Some(&'<') && chars.get(i + 2) != Some(&'<') => {
                    let (consumed, delimiter, strip_tabs) = read_heredoc_operator(&chars[i..]);
                    if let Some(delimiter) = delimiter {
                        pending.push((delimiter, strip_tabs));
                    }
                    out.extend(&chars[i..i + consumed]);
                    i += consumed;
                    at_word_start = true;
                    line_start = false;
                    continue;
                }
                '\n' if !pending.is_empty() => {
                    heredoc = Some(pending.remove(0));
                    context = Context::Heredoc;
                }
                _ => {}
            },
            Context::Double => match c {
                '\\' => {
                    out.push(c);
                    if let Some(&next) = chars.get(i + 1) {
                        out.push(next);
                        i += 1;
                    }
                }
                '"' => context = Context::Plain,
                _ => {}
            },
            Context::Single => {
                if c == '\'' {
                    context = Context::Plain;
                }
            }
            Context::AnsiC => match c {
                '\\' => {
                    out.push(c);
                    if let Some(&next) = chars.get(i + 1) {
                        out.push(next);
                        i += 1;
                    }
                }
                '\'' => context = Context::Plain,
                _ => {}
            },
            Context::Heredoc => {}
        }
        out.push(c);
        at_word_start = c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | ')');
        line_start = c == '\n';
        if c == '\n' && context == Context::Heredoc && heredoc.is_none() {
            context = Context::Plain;
        }
        i += 1;
    }
    (out, extra_env)
}

fn read_token(rest: &str) -> Option<String> {
    let body = rest.strip_prefix(TOKEN_PREFIX)?;
    let end = body.find(TOKEN_SUFFIX)?;
    let name = &body[..end];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some(format!("{TOKEN_PREFIX}{name}{TOKEN_SUFFIX}"))
}

/// Reads `<<WORD`, `<<-WORD`, `<<'WORD'`, `<<"WORD"`, `<<\WORD`; returns how many characters
/// the operator and word take, the delimiter, and whether leading tabs are stripped.
fn read_heredoc_operator(chars: &[char]) -> (usize, Option<String>, bool) {
    let mut i = 2;
    let strip_tabs = chars.get(i) == Some(&'-');
    if strip_tabs {
        i += 1;
    }
    while chars.get(i).is_some_and(|c| *c == ' ' || *c == '\t') {
        i += 1;
    }
    let mut word = String::new();
    while let Some(&c) = chars.get(i) {
        match c {
            '\'' | '"' => {
                let quote = c;
                i += 1;
                while let Some(&q) = chars.get(i) {
                    i += 1;
                    if q == quote {
                        break;
                    }
                    word.push(q);
                }
            }
            '\\' => {
                i += 1;
                if let Some(&q) = chars.get(i) {
                    word.push(q);
                    i += 1;
                }
            }
            c if c.is_whitespace() || matches!(c, ';' | '&' | '|' | '<' | '>' | '(' | ')') => break,
            c => {
                word.push(c);
                i += 1;
            }
        }
    }
    (i, (!word.is_empty()).then_some(word), strip_tabs)
}

fn place(
    value: &Value<'_>,
    context: Context,
    extra_env: &mut Vec<(String, String)>,
    token: &str,
) -> String {
    match value {
        Value::Env(var) => match context {
            Context::Plain => format!("\"${{{var}}}\""),
            Context::Double | Context::Heredoc => format!("${{{var}}}"),
            Context::Single => format!("'\"${{{var}}}\"'"),
            Context::AnsiC => format!("'\"${{{var}}}\"$'"),
        },
        Value::Text(text) => match context {
            Context::Plain => crate::template::shell_quote(text),
            Context::Double => escape_double(text),
            Context::Single => format!("'{}'", crate::template::shell_quote(text)),
            Context::AnsiC => format!("'{}$'", crate::template::shell_quote(text)),
            Context::Heredoc => {
                // A value could hold the delimiter line and end the here-document early, so
                // it is not written into the body: bash expands the variable instead.
                let var = format!(
                    "PLANRUN_VALUE_{}",
                    token
                        .trim_start_matches(TOKEN_PREFIX)
                        .trim_end_matches(TOKEN_SUFFIX)
                );
                extra_env.push((var.clone(), text.to_string()));
                format!("${{{var}}}")
            }
        },
    }
}

/// Inside double quotes only `\`, `"`, `$` and `` ` `` are special.
fn escape_double(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVIL: &str = "x\"; touch /tmp/pwned; \"'$(id)`id`";

    fn sub(script: &str) -> (String, Vec<(String, String)>) {
        substitute(script, &|token| match token {
            "__PLANRUN_V0__" => Some(Value::Text(EVIL)),
            "__PLANRUN_SECRET_TOKEN__" => Some(Value::Env("PLANRUN_SECRET_TOKEN")),
            _ => None,
        })
    }

    fn bash_echo(script: &str, env: &[(String, String)]) -> String {
        let output = std::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .envs(env.iter().cloned())
            .env("PLANRUN_SECRET_TOKEN", "s3cret")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    #[test]
    fn values_stay_one_literal_word_in_every_quoting_context() {
        for template in [
            "printf '%s\\n' __PLANRUN_V0__",
            "printf '%s\\n' \"__PLANRUN_V0__\"",
            "printf '%s\\n' '__PLANRUN_V0__'",
            "printf '%s\\n' $'__PLANRUN_V0__'",
            "printf '%s\\n' \"a b __PLANRUN_V0__ c\" | sed 's/^a b //; s/ c$//'",
        ] {
            let (script, env) = sub(template);
            assert_eq!(
                bash_echo(&script, &env),
                format!("{EVIL}\n"),
                "{template} became {script}"
            );
        }
    }

    #[test]
    fn heredoc_bodies_read_values_from_the_environment() {
        let (script, env) = sub("cat <<EOF\n__PLANRUN_V0__\nEOF\necho after");
        assert_eq!(script, "cat <<EOF\n${PLANRUN_VALUE_V0}\nEOF\necho after");
        assert_eq!(bash_echo(&script, &env), format!("{EVIL}\nafter\n"));
    }

    #[test]
    fn secrets_become_variable_references() {
        let (script, _) = sub("echo \"Bearer __PLANRUN_SECRET_TOKEN__\" __PLANRUN_SECRET_TOKEN__");
        assert_eq!(
            script,
            "echo \"Bearer ${PLANRUN_SECRET_TOKEN}\" \"${PLANRUN_SECRET_TOKEN}\""
        );
        assert_eq!(bash_echo(&script, &[]), "Bearer s3cret s3cret\n");
    }

    #[test]
    fn comments_and_escapes_do_not_confuse_the_reader() {
        let (script, env) = sub("# it's a comment\necho \\' \"__PLANRUN_V0__\"");
        assert_eq!(bash_echo(&script, &env), format!("' {EVIL}\n"));
    }
}
