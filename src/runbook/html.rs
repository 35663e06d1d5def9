//! The runbook as one self-contained HTML file: inline CSS, no script, no external link, a
//! print stylesheet that keeps the command and the contacts on the first page. Every text
//! from the plan goes through Handlebars' HTML escaper (`<`, `>`, `&`, quotes, `` ` ``, `=`).

use std::fmt::Write;

use handlebars::html_escape as esc;

use super::{Block, Inline, Line, Runbook};

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;\
max-width:52em;margin:2em auto;padding:0 1em;color:#111;line-height:1.45}\
h1{font-size:1.6em;margin:0 0 .3em}h2{font-size:1.25em;border-bottom:2px solid #333;\
margin-top:1.6em}h3{font-size:1.05em;margin:1.2em 0 .3em}\
code,pre{font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace;font-size:.92em}\
pre{background:#f3f3f3;border:1px solid #ccc;padding:.6em;white-space:pre-wrap;\
overflow-wrap:anywhere}\
.command{font-size:1.1em;font-weight:bold;border:2px solid #111;background:#fff}\
table{border-collapse:collapse;width:100%}th,td{border:1px solid #888;padding:.3em .45em;\
text-align:left;vertical-align:top}th{background:#e8e8e8}\
.reach{white-space:nowrap}.tick{color:#444}\
.box{display:inline-block;width:.9em;height:.9em;border:1.5px solid #111;vertical-align:-.1em}.about{color:#333}.step{break-inside:avoid;page-break-inside:avoid}\
@page{size:A4;margin:14mm}\
@media print{body{margin:0;max-width:none;font-size:10.5pt}\
.first{break-after:page;page-break-after:always}\
table,pre{break-inside:avoid;page-break-inside:avoid}\
h2,h3{break-after:avoid;page-break-after:avoid}}";

/// The whole runbook as an HTML document.
pub fn render(book: &Runbook) -> String {
    let mut out = String::new();
    let title = esc(&format!("Recovery runbook: {}", book.title));
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    );
    // The first printed page: what this is, the command, and whom to call.
    let _ = writeln!(out, "<section class=\"first\">\n<h1>{title}</h1>");
    if let Some(description) = &book.level_description {
        paragraphs(&mut out, description);
    }
    let _ = writeln!(
        out,
        "<p>Start the recovery with:</p>\n<pre class=\"command\">{}</pre>\n<p>It shows each step, \
         asks before anything that replaces live data, keeps what it replaces as \
         <code>&lt;name&gt;_before_&lt;incident&gt;</code>, and continues after a reboot with \
         <code>--resume</code>.</p>",
        esc(&book.command)
    );
    let _ = writeln!(
        out,
        "<h2>Contacts</h2>\n<table>\n<thead><tr><th>Role</th><th>Contact</th><th>Deputy</th>\
         <th>Responsible for</th><th>Steps</th></tr></thead>\n<tbody>"
    );
    for c in &book.contacts {
        let _ = writeln!(
            out,
            "<tr><td>{} (<code>{}</code>)</td><td class=\"reach\">{}</td><td class=\"reach\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.title),
            esc(&c.role),
            reach(&c.contact),
            reach(&c.deputy),
            esc(&c.responsibility),
            esc(&c.steps),
        );
    }
    let _ = writeln!(out, "</tbody>\n</table>\n<h2>Objectives</h2>\n<ul>");
    for line in &book.objectives {
        let _ = writeln!(out, "<li>{}</li>", inline(line));
    }
    let _ = writeln!(out, "</ul>\n</section>");

    let _ = writeln!(out, "<h2>Steps</h2>");
    if book.steps.is_empty() {
        let _ = writeln!(out, "<p>This level has no steps.</p>");
    }
    for step in &book.steps {
        let name = step
            .name
            .as_deref()
            .map(|n| format!(": {}", esc(n)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<section class=\"step\">\n<h3>{}. <code>{}</code>{name}</h3>\n<p class=\"about\">{}</p>",
            step.number,
            esc(&step.id),
            inline(&step.about)
        );
        blocks(&mut out, &step.body);
        // On paper, the place to note what `planrun recover` recorded.
        let _ = writeln!(
            out,
            "<p class=\"tick\"><span class=\"box\"></span> done at ________ by ________________</p>\n</section>"
        );
    }

    let _ = writeln!(out, "<h2>Where the backups are</h2>");
    for section in &book.storages {
        let _ = writeln!(out, "<h3>{}</h3>", inline(&section.title));
        blocks(&mut out, &section.body);
    }
    if let Some(credentials) = &book.credentials {
        let _ = writeln!(out, "<h2>Credentials</h2>");
        paragraphs(&mut out, credentials);
    }
    let _ = writeln!(out, "<h2>Upkeep</h2>\n<ul>");
    for line in &book.upkeep {
        let _ = writeln!(out, "<li>{}</li>", inline(line));
    }
    let _ = writeln!(out, "</ul>\n</body>\n</html>");
    out
}

/// A contact: each comma-separated part (name, e-mail, phone) on a line of its own that
/// never breaks, so `it-coord@example.com` is not split at its hyphen on paper.
fn reach(text: &str) -> String {
    text.split(',')
        .map(|part| esc(part.trim()))
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("<br>")
}

fn paragraphs(out: &mut String, text: &str) {
    for paragraph in text.split("\n\n").map(str::trim) {
        if !paragraph.is_empty() {
            let _ = writeln!(out, "<p>{}</p>", lines(paragraph));
        }
    }
}

/// Escaped text whose line breaks stay line breaks.
fn lines(text: &str) -> String {
    text.split('\n').map(esc).collect::<Vec<_>>().join("<br>\n")
}

fn blocks(out: &mut String, blocks: &[Block]) {
    for block in blocks {
        match block {
            Block::Para(line) => {
                let _ = writeln!(out, "<p>{}</p>", inline(line));
            }
            Block::Code(body) => {
                let _ = writeln!(out, "<pre>{}</pre>", esc(body));
            }
            Block::Items(items) => {
                let _ = writeln!(out, "<ul>");
                for item in items {
                    let _ = writeln!(out, "<li>{}</li>", inline(item));
                }
                let _ = writeln!(out, "</ul>");
            }
        }
    }
}

fn inline(line: &Line) -> String {
    line.iter()
        .map(|piece| match piece {
            Inline::Text(t) => lines(t),
            Inline::Code(c) => format!("<code>{}</code>", esc(c)),
            Inline::Strong(s) => format!("<strong>{}</strong>", esc(s)),
        })
        .collect()
}
