//! Old spellings that still work, driven through the real binary: a restore step's `from:`
//! does what `set:` does, and `execute` and `plan` warn about it on stderr and exit 0.

mod support;

use std::path::Path;

use support::Env;
use support::run::{stderr, stdout};

/// The plans' sources and storage, ending at `steps:`.
const HEADER: &str = r#"
version: 1
name: crm
sources:
  media: { directory: { path: "{{plan.dir}}/media" } }
storage:
  local: { local: { path: "{{plan.dir}}/backups" } }
steps:
"#;

/// Back up a folder and restore it, naming the set with `KEY: SET`.
const BACKUP_AND_RESTORE: &str = r#"  - { id: media, backup: media }
  - { id: back, restore: { source: media, KEY: SET, path: "{{plan.dir}}/restored" }, needs: [media] }
"#;

/// Only restore the set named `KEY: SET`.
const RESTORE_ONLY: &str = r#"  - { id: again, restore: { source: media, KEY: SET, path: "{{plan.dir}}/again" } }
"#;

/// The plan made of [`HEADER`] and `steps`, with the set named `key: set`.
fn plan_text(steps: &str, key: &str, set: &str) -> String {
    format!("{HEADER}{steps}")
        .replace("KEY", key)
        .replace("SET", set)
}

const WARNING_LINE: &str = "plan.yaml:10:49: warning: steps[1].restore.from: `from` in a restore step is deprecated: write `set: latest`\n";

fn make_media(dir: &Path) {
    std::fs::create_dir_all(dir.join("avatars")).unwrap();
    std::fs::write(dir.join("avatars/a.png"), b"not really a png\n").unwrap();
    std::fs::write(dir.join("invoice-1.pdf"), b"invoice one\n").unwrap();
}

/// Every file under `dir` with its content, sorted.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                out.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// What one plan's runs printed and restored.
struct Runs {
    /// `execute` with the backup and a restore of `latest`: stderr then stdout, filtered.
    first: String,
    restored: Vec<(String, Vec<u8>)>,
    /// `execute` of a plan that restores that run's set by its id.
    second: String,
    again: Vec<(String, Vec<u8>)>,
}

/// Runs the plans with `key` naming the set.
fn run_with(key: &str) -> Runs {
    let env = Env::new();
    make_media(&env.path("media"));
    let plan = env.plan(&plan_text(BACKUP_AND_RESTORE, key, "latest"));
    let output = env.execute(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let first = rates(&env.filter(&(stderr(&output) + &stdout(&output))));
    let restored = tree(&env.path("restored"));

    let id = env.snapshots(&plan, "local")[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.plan(&plan_text(RESTORE_ONLY, key, &id));
    let output = env.execute(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let second = rates(&env.filter(&(stderr(&output) + &stdout(&output))));
    Runs {
        first,
        restored,
        second,
        again: tree(&env.path("again")),
    }
}

/// `text` without throughputs (`6.8 KiB/s`, the end of a step's line): they vary from run to
/// run, and a step too quick to measure has none.
fn rates(text: &str) -> String {
    text.lines()
        .map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            let kept = match words.iter().position(|w| w.ends_with("B/s")) {
                Some(i) => words[..i - 1].join(" "),
                None => line.to_owned(),
            };
            kept.trim_end().to_owned() + "\n"
        })
        .collect()
}

/// `text` with every digit as `#`: an archive's compressed size differs by a byte or two
/// between two runs over the same files (timestamps inside it), and is not what is compared.
fn digits(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect()
}

/// `text` without its first diagnostic (the message line up to and including its help line).
fn without_first_diagnostic(text: &str) -> &str {
    let after_help = text.split_once("  = help: ").unwrap().1;
    after_help.split_once('\n').unwrap().1
}

#[test]
fn a_restore_step_with_from_does_what_set_does_and_execute_warns() {
    let new = run_with("set");
    let old = run_with("from");
    assert_eq!(
        new.restored
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        ["avatars/a.png", "invoice-1.pdf"]
    );
    assert_eq!(old.restored, new.restored);
    assert_eq!(old.again, new.again);
    assert!(!new.first.contains("deprecated"), "{}", new.first);
    assert!(!new.second.contains("deprecated"), "{}", new.second);
    assert!(
        old.first.starts_with(&format!("DIR/{WARNING_LINE}")),
        "{}",
        old.first
    );
    assert!(
        old.second.starts_with(
            "DIR/plan.yaml:9:50: warning: steps[0].restore.from: `from` in a restore step is deprecated: write `set: RUN`\n"
        ),
        "{}",
        old.second
    );
    // Apart from the warning, the runs said the same.
    assert_eq!(
        digits(without_first_diagnostic(&old.first)),
        digits(&new.first)
    );
    assert_eq!(
        digits(without_first_diagnostic(&old.second)),
        digits(&new.second)
    );
    assert!(
        new.second
            .contains("again | restored `media` from set RUN into DIR/again"),
        "{}",
        new.second
    );
}

#[test]
fn plan_renders_from_as_set_and_warns() {
    let env = Env::new();
    env.plan(&plan_text(BACKUP_AND_RESTORE, "set", "latest"));
    let new = env.planrun(["plan", "plan.yaml"]).output();
    env.plan(&plan_text(BACKUP_AND_RESTORE, "from", "latest"));
    let old = env.planrun(["plan", "plan.yaml"]).output();
    assert_eq!(new.status.code(), Some(0), "{}", stderr(&new));
    assert_eq!(old.status.code(), Some(0), "{}", stderr(&old));
    assert!(
        stdout(&new).contains("restore `media` from latest on `local`"),
        "{}",
        stdout(&new)
    );
    // The same rendered steps; only the digest of the plan's text differs.
    let steps =
        |output: &std::process::Output| stdout(output).split_once('\n').unwrap().1.to_owned();
    assert_eq!(steps(&old), steps(&new));
    assert_eq!(stderr(&new), "");
    assert_eq!(
        stderr(&old),
        format!(
            "plan.yaml:10:49: warning: steps[1].restore.from: `from` in a restore step is deprecated: write `set: latest`\n\
             \x20  |\n\
             10 |   - {{ id: back, restore: {{ source: media, from: latest, path: \"{{{{plan.dir}}}}/restored\" }}, needs: [media] }}\n\
             \x20  |                                                 ^\n\
             \x20 = help: `from` names a storage in `copy`; a restore step names its set with `set`\n"
        )
    );
    // `--quiet` promises silence on success: the warning is `validate`'s and `plan`'s to give.
    let quiet = env.planrun(["--quiet", "plan", "plan.yaml"]).output();
    assert_eq!(stderr(&quiet), "");
}
