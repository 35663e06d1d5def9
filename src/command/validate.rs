//! `planrun validate PLAN...`: every layer's diagnostics, and exit 2 if any plan is invalid.

use serde_json::json;

use super::{CommandResult, Console};
use crate::cli::{Format, ValidateArgs};
use crate::diagnostic::Diagnostic;
use crate::exit_code;
use crate::pipeline;

/// Validation resolves no secrets, so there is nothing for the console to mask.
pub fn run(args: &ValidateArgs, console: &mut Console) -> CommandResult {
    let mut all_valid = true;
    let mut text = String::new();
    let mut files = Vec::new();
    let format = if args.json { Format::Json } else { args.format };
    let colour = crate::diagnostic::colour(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    for path in &args.plans {
        let (valid, fragment, diagnostics): (bool, bool, Vec<Diagnostic>) =
            match pipeline::load(path) {
                Ok(loaded) => (true, loaded.fragment, loaded.warnings),
                Err(failure) => (false, false, failure.diagnostics),
            };
        all_valid &= valid;
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        let warnings = diagnostics.len() - errors;
        match format {
            Format::Human => {
                for d in &diagnostics {
                    text.push_str(&if colour {
                        d.render_styled(path)
                    } else {
                        d.render(path)
                    });
                }
                let verdict = match (valid, fragment) {
                    (true, true) => "valid (shared definitions for `include`)",
                    (true, false) => "valid",
                    (false, _) => "invalid",
                };
                let mut counts = Vec::new();
                if errors > 0 {
                    counts.push(plural(errors, "error"));
                }
                if warnings > 0 {
                    counts.push(plural(warnings, "warning"));
                }
                let counts = if counts.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", counts.join(", "))
                };
                text.push_str(&format!("{}: {verdict}{counts}\n", path.display()));
            }
            Format::Json => files.push(json!({
                "file": path.display().to_string(),
                "valid": valid,
                "fragment": fragment,
                "errors": errors,
                "warnings": warnings,
                "diagnostics": diagnostics.iter().map(|d| d.to_json(path)).collect::<Vec<_>>(),
            })),
        }
    }
    match format {
        // `--quiet`: a valid plan is not news.
        Format::Human if console.quiet() && all_valid => {}
        Format::Human => console.out(&text),
        Format::Json => console.line(
            serde_json::to_string_pretty(&json!({ "valid": all_valid, "files": files }))
                .unwrap_or_default(),
        ),
    }
    Ok(if all_valid {
        exit_code::SUCCESS
    } else {
        exit_code::INVALID
    })
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}
