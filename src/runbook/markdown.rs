//! The runbook as Markdown (CommonMark with a GitHub table), for a wiki or a terminal. Text
//! from the plan is escaped so that it reads as written: no `*`, `|` or `<` in it can start
//! emphasis, end a table cell or become HTML.

use std::fmt::Write;

use super::{Block, Inline, Line, Runbook};

/// The whole runbook.
pub fn render(book: &Runbook) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Recovery runbook: {}\n", text(&book.title));
    if let Some(description) = &book.level_description {
        let _ = writeln!(out, "{}\n", text(description.trim()));
    }
    let _ = writeln!(out, "Start the recovery with:\n");
    let _ = writeln!(out, "{}", code_block(&book.command));
    let _ = writeln!(
        out,
        "It shows each step, asks before anything that replaces live data, keeps what it replaces \
         as `<name>_before_<incident>`, and continues after a reboot with `--resume`.\n"
    );

    let _ = writeln!(out, "## Contacts\n");
    let _ = writeln!(out, "| Role | Contact | Deputy | Responsible for | Steps |");
    let _ = writeln!(out, "| --- | --- | --- | --- | --- |");
    for c in &book.contacts {
        let _ = writeln!(
            out,
            "| {} ({}) | {} | {} | {} | {} |",
            cell(&c.title),
            code(&c.role),
            cell(&c.contact),
            cell(&c.deputy),
            cell(&c.responsibility),
            cell(&c.steps),
        );
    }
    out.push('\n');

    let _ = writeln!(out, "## Objectives\n");
    for line in &book.objectives {
        let _ = writeln!(out, "- {}", inline(line));
    }
    out.push('\n');

    let _ = writeln!(out, "## Steps\n");
    if book.steps.is_empty() {
        let _ = writeln!(out, "This level has no steps.\n");
    }
    for step in &book.steps {
        let name = step
            .name
            .as_deref()
            .map(|n| format!(": {}", text(n)))
            .unwrap_or_default();
        let _ = writeln!(out, "### {}. {}{name}\n", step.number, code(&step.id));
        let _ = writeln!(out, "{}\n", inline(&step.about));
        blocks(&mut out, &step.body);
    }

    let _ = writeln!(out, "## Where the backups are\n");
    for section in &book.storages {
        let _ = writeln!(out, "### {}\n", inline(&section.title));
        blocks(&mut out, &section.body);
    }

    if let Some(credentials) = &book.credentials {
        let _ = writeln!(out, "## Credentials\n");
        for paragraph in credentials.split("\n\n").map(str::trim) {
            if !paragraph.is_empty() {
                let _ = writeln!(out, "{}\n", text(paragraph));
            }
        }
    }

    let _ = writeln!(out, "## Upkeep\n");
    for line in &book.upkeep {
        let _ = writeln!(out, "- {}", inline(line));
    }
    out
}

fn blocks(out: &mut String, blocks: &[Block]) {
    for block in blocks {
        match block {
            Block::Para(line) => {
                let _ = writeln!(out, "{}\n", inline(line));
            }
            Block::Code(body) => {
                let _ = writeln!(out, "{}", code_block(body));
            }
            Block::Items(items) => {
                for item in items {
                    let _ = writeln!(out, "- {}", inline(item));
                }
                out.push('\n');
            }
        }
    }
}

fn inline(line: &Line) -> String {
    line.iter()
        .map(|piece| match piece {
            Inline::Text(t) => text(t),
            Inline::Code(c) => code(c),
            Inline::Strong(s) => format!("**{}**", text(s)),
        })
        .collect()
}

/// Plain text with every character Markdown could read as markup escaped. Line breaks inside
/// a paragraph stay line breaks (hard breaks), as an instruction's lines were written.
fn text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let last = raw.matches('\n').count();
    for (n, line) in raw.split('\n').enumerate() {
        // Spaces before a line break would make it a hard break; inside a line they stay.
        let line = if n < last { line.trim_end() } else { line };
        if n > 0 {
            // A backslash before the line break keeps it a break in the rendered text.
            out.push_str("\\\n");
        }
        let lead = line.chars().take_while(|c| c.is_whitespace()).count();
        for (i, c) in line.chars().enumerate() {
            let at_start = i == lead;
            if matches!(
                c,
                '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | '&'
            ) || (at_start && matches!(c, '-' | '+' | '='))
            {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// A table cell: text on one line.
fn cell(raw: &str) -> String {
    text(&raw.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// An inline code span that holds any text: the fence is longer than any run of backticks
/// inside, and `|` is escaped so that a table cell does not end inside it.
fn code(raw: &str) -> String {
    let flat = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    let fence = "`".repeat(longest_run(&flat, '`') + 1);
    let pad = if flat.starts_with('`') || flat.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{}{pad}{fence}", flat.replace('|', "\\|"))
}

/// A fenced code block whose fence no line inside can close.
fn code_block(body: &str) -> String {
    let fence = "`".repeat(longest_run(body, '`').max(2) + 1);
    format!("{fence}\n{body}\n{fence}\n")
}

fn longest_run(text: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for ch in text.chars() {
        run = if ch == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_plan_text_is_escaped() {
        assert_eq!(text("a *b* <i>|c"), r"a \*b\* \<i\>\|c");
        assert_eq!(
            text("- not a list\n# nor a heading"),
            "\\- not a list\\\n\\# nor a heading"
        );
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("a|b"), r"`a\|b`");
        assert_eq!(code_block("```\nx"), "````\n```\nx\n````\n");
    }
}
