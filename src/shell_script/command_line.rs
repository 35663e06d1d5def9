//! One reading of a command line, shared by a `run:` step's argv and by every simple command
//! of a `shell:` script: which word is the program (through wrappers such as `env`, `sudo`,
//! `unshare`, `find -exec`, `env -S`), and whether a value stands where that program takes
//! a command line, where it would be the program itself, or where an expansion names it.
//!
//! The lists of programs here are a second line of defence. The first is the design: a value
//! is never a command name, a script that takes a value names every program literally, and a
//! value that starts with `-` never reaches a program's option parser unless the author wrote
//! `--` before it.

use super::{SHELLS, basename, code_context, command_option};

/// One word of a command line.
#[derive(Clone, Debug)]
pub(crate) struct Word {
    /// The word as written (for a script: quotes removed, a value shown as `\u{1}`).
    pub text: String,
    /// A value stands in it.
    pub templated: bool,
    /// A shell expansion (`$X`, `"${X}"`, `$(…)`) stands in it: only in scripts.
    pub expanded: bool,
    /// Its index in the line the caller gave (words split out of `env -S` keep the index of
    /// the word they came from).
    pub at: usize,
}

/// What is wrong with a command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    /// A value stands where the program takes a command line, a command or a hook.
    Code(usize, &'static str),
    /// A value would be the program (or a wrapper's program).
    ValueAsProgram(usize),
    /// An expansion names the program: it may be a shell or `eval`, which no reader sees.
    ExpandedProgram(usize),
}

/// Programs that run the rest of their arguments as a command (argv, no shell). For each:
/// its short options that take the next word as their argument, its long options that do
/// (matched by any unambiguous prefix, as getopt does), and how many operands stand before
/// the command (`timeout 5 CMD`, `chroot DIR CMD`, `taskset MASK CMD`).
const WRAPPERS: [(&str, &str, &[&str], usize); 41] = [
    // Found by the seventh attack pass: each ran a value as the program.
    ("setarch", "", &[], 1),
    ("linux64", "", &[], 0),
    ("linux32", "", &[], 0),
    ("valgrind", "", &[], 0),
    (
        "ld-linux-x86-64.so.2",
        "",
        &["library-path", "preload", "argv0"],
        0,
    ),
    ("ld.so", "", &["library-path", "preload", "argv0"], 0),
    ("eatmydata", "", &[], 0),
    ("chronic", "", &[], 0),
    ("unbuffer", "", &[], 0),
    (
        "numactl",
        "CNmpiP",
        &[
            "cpunodebind",
            "physcpubind",
            "membind",
            "preferred",
            "interleave",
        ],
        0,
    ),
    ("cgexec", "g", &[], 0),
    ("command", "", &[], 0),
    ("builtin", "", &[], 0),
    ("exec", "a", &[], 0),
    ("nohup", "", &[], 0),
    ("time", "fo", &["format", "output"], 0),
    (
        "sudo",
        "ugCDhprtUTR",
        &[
            "user",
            "group",
            "close-from",
            "chdir",
            "host",
            "prompt",
            "role",
            "type",
            "other-user",
            "command-timeout",
            "chroot",
        ],
        0,
    ),
    ("doas", "uC", &[], 0),
    ("nice", "n", &["adjustment"], 0),
    ("timeout", "sk", &["signal", "kill-after"], 1),
    ("setsid", "", &[], 0),
    ("stdbuf", "ioe", &["input", "output", "error"], 0),
    (
        "xargs",
        "adEILnPs",
        &[
            "arg-file",
            "delimiter",
            "max-lines",
            "max-args",
            "max-procs",
            "max-chars",
            "process-slot-var",
        ],
        0,
    ),
    ("chroot", "", &["userspec", "groups"], 1),
    (
        "ionice",
        "cnpPu",
        &["class", "classdata", "pid", "pgid", "uid"],
        0,
    ),
    ("taskset", "", &[], 1),
    (
        "chrt",
        "TPD",
        &["sched-runtime", "sched-period", "sched-deadline"],
        1,
    ),
    (
        "unshare",
        "SGRwl",
        &[
            "setuid",
            "setgid",
            "root",
            "wd",
            "map-user",
            "map-group",
            "load-interp",
        ],
        0,
    ),
    (
        "nsenter",
        "tSGrwT",
        &["target", "setuid", "setgid", "root", "wd", "env"],
        0,
    ),
    (
        "setpriv",
        "",
        &[
            "reuid",
            "regid",
            "ruid",
            "rgid",
            "euid",
            "egid",
            "groups",
            "inh-caps",
            "ambient-caps",
            "bounding-set",
            "securebits",
            "pdeathsig",
            "selinux-label",
            "apparmor-profile",
            "landlock-access",
            "landlock-rule",
        ],
        0,
    ),
    (
        "strace",
        "abeEIoOpPsSuUX",
        &[
            "output",
            "signal",
            "trace",
            "status",
            "user",
            "env",
            "string-limit",
        ],
        0,
    ),
    ("ltrace", "aAeEfFlnopsSuxD", &["output", "library"], 0),
    ("prlimit", "p", &["pid"], 0),
    (
        "systemd-run",
        "pEuMHCG",
        &[
            "property",
            "setenv",
            "unit",
            "machine",
            "host",
            "uid",
            "gid",
            "nice",
            "working-directory",
            "description",
            "slice",
            "on-active",
            "on-calendar",
        ],
        0,
    ),
    ("busybox", "", &[], 0),
    ("flock", "wEn", &["timeout", "conflict-exit-code"], 1),
    (
        "runuser",
        "ugGw",
        &["user", "group", "supp-group", "whitelist-environment"],
        0,
    ),
    ("fakeroot", "is", &["lib", "faked"], 0),
    ("faketime", "f", &[], 1),
    ("chpst", "ugUenlLmdofcprt", &[], 0),
    ("dbus-run-session", "", &["config-file", "dbus-daemon"], 0),
];

/// Programs that join their arguments into a command line and hand it to a shell, so a value
/// anywhere after them is code: `watch` runs `sh -c "ARGS"`, `parallel` substitutes its
/// arguments into a command line, `tmux` runs its command through the shell.
const JOINS_INTO_A_SHELL: [&str; 5] = ["watch", "parallel", "tmux", "at", "batch"];

/// The first problem of a command line, reading through wrappers to the program.
pub(crate) fn problem(words: &[Word]) -> Option<Problem> {
    // Options anywhere in the line that hand a program its command line (`rsync -e`,
    // `tar --to-command`, `git -c core.sshCommand`, `scp -o ProxyCommand`): read per
    // program, wherever it stands.
    for (at, program) in words.iter().enumerate() {
        let program = basename(&program.text);
        if let Some(w) = words[at + 1..].iter().enumerate().find_map(|(k, w)| {
            let prev = &words[at + k];
            (w.templated
                && (command_option(program, &w.text)
                    || (k > 0 && command_option(program, &prev.text))))
            .then_some(w)
        }) {
            return Some(Problem::Code(
                w.at,
                "the program runs this option's argument as a command",
            ));
        }
    }
    program_problem(words, 0)
}

/// The problem of the command starting at `words[k]`.
fn program_problem(words: &[Word], mut k: usize) -> Option<Problem> {
    // Assignments before the command (`A=1 cmd`, `env A=1 cmd`): they reach the program's
    // environment, so a value may not set a variable programs run (`LESSOPEN={{…}} less`).
    let mut assigned = None;
    while k < words.len() && is_assignment(&words[k].text) {
        let name = super::assignment_name(&words[k].text).unwrap_or_default();
        if words[k].templated && super::executed_variable(name) {
            assigned.get_or_insert(words[k].at);
        }
        k += 1;
    }
    let word = words.get(k)?;
    if let Some(at) = assigned {
        return Some(Problem::Code(
            at,
            "a program runs, loads code along or takes options from this variable",
        ));
    }
    if word.templated {
        return Some(Problem::ValueAsProgram(word.at));
    }
    if word.expanded {
        return Some(Problem::ExpandedProgram(word.at));
    }
    let name = basename(&word.text);
    let rest = &words[k + 1..];
    if name == "env" {
        return env_problem(words, k);
    }
    if name == "find" {
        return find_problem(words, k);
    }
    if name == "ssh" || SHELLS.contains(&name) {
        let texts: Vec<String> = words[k..].iter().map(|w| w.text.clone()).collect();
        if let Some(i) =
            (1..texts.len()).find(|&i| rest[i - 1].templated && code_context(&texts[..i]).is_some())
        {
            return Some(Problem::Code(
                words[k + i].at,
                if name == "ssh" {
                    "ssh sends its command to a remote shell, which runs it as commands"
                } else {
                    "a shell's `-c` argument is run as commands"
                },
            ));
        }
        if name == "ssh" || !["flock", "runuser"].contains(&name) {
            return None;
        }
    }
    if JOINS_INTO_A_SHELL.contains(&name) {
        return rest.iter().find(|w| w.templated || w.expanded).map(|w| {
            Problem::Code(
                w.at,
                "the program joins its arguments into a command line that a shell runs",
            )
        });
    }
    if name == "sudo" && sudo_runs_a_shell(rest) {
        return rest.iter().find(|w| w.templated || w.expanded).map(|w| {
            Problem::Code(
                w.at,
                "`sudo -s` and `sudo -i` hand their arguments to a shell as a command line",
            )
        });
    }
    let (_, short, long, operands) = WRAPPERS.iter().find(|(w, ..)| *w == name)?;
    let next = skip_options(words, k + 1, short, long, *operands)?;
    program_problem(words, next)
}

/// Where the wrapped command starts: after the options (and the words their arguments take)
/// and `operands` operands. An expansion or a value among the operands is refused as the
/// program, since a wrong count would make it one.
fn skip_options(
    words: &[Word],
    mut k: usize,
    short: &str,
    long: &[&str],
    operands: usize,
) -> Option<usize> {
    while let Some(w) = words.get(k) {
        let text = w.text.as_str();
        if text == "--" {
            k += 1;
            break;
        }
        if let Some(name) = text.strip_prefix("--") {
            let takes_next =
                !name.contains('=') && long.iter().any(|l| !name.is_empty() && l.starts_with(name));
            k += if takes_next { 2 } else { 1 };
            continue;
        }
        if let Some(cluster) = text.strip_prefix('-').filter(|c| !c.is_empty()) {
            // `-n10` carries its argument; `-n 10` takes the next word.
            let takes_next = cluster
                .char_indices()
                .find(|(_, c)| short.contains(*c))
                .is_some_and(|(i, c)| i + c.len_utf8() == cluster.len());
            k += if takes_next { 2 } else { 1 };
            continue;
        }
        break;
    }
    for _ in 0..operands {
        let w = words.get(k)?;
        if w.templated || w.expanded {
            return Some(k);
        }
        k += 1;
    }
    Some(k)
}

/// `env`: its options, `-S STRING` (any spelling: `-SSTRING`, `-iS STRING`,
/// `--split-string=STRING`, `--split-s STRING`), whose words are read as the command line
/// they become, then assignments and the program.
fn env_problem(words: &[Word], env_at: usize) -> Option<Problem> {
    let mut k = env_at + 1;
    while let Some(w) = words.get(k) {
        let text = w.text.as_str();
        if text == "--" {
            k += 1;
            break;
        }
        let split = if let Some(name) = text.strip_prefix("--") {
            let (name, joined) = match name.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (name, None),
            };
            let matches = |full: &str| !name.is_empty() && full.starts_with(name);
            if matches("split-string") {
                Some(joined.map(|j| (j.to_owned(), k + 1)))
            } else {
                let takes_next = joined.is_none() && (matches("unset") || matches("chdir"));
                k += if takes_next { 2 } else { 1 };
                None
            }
        } else if let Some(cluster) = text.strip_prefix('-').filter(|c| !c.is_empty()) {
            let mut split = None;
            let mut takes_next = false;
            for (i, c) in cluster.char_indices() {
                let after = &cluster[i + c.len_utf8()..];
                if c == 'S' {
                    split = Some((!after.is_empty()).then(|| (after.to_owned(), k + 1)));
                    break;
                }
                if "uC".contains(c) {
                    takes_next = after.is_empty();
                    break;
                }
            }
            if split.is_none() {
                k += if takes_next { 2 } else { 1 };
            }
            split
        } else {
            break;
        };
        if let Some(split) = split {
            // The string is either joined to the option or the next word.
            let (string, from, source) = match split {
                Some((string, from)) => (string, from, w),
                None => {
                    let next = words.get(k + 1)?;
                    (next.text.clone(), k + 2, next)
                }
            };
            if source.templated || source.expanded || w.templated {
                return Some(Problem::Code(
                    source.at,
                    "`env -S` splits this text into a command line and runs it",
                ));
            }
            let mut line: Vec<Word> = string
                .split_whitespace()
                .map(|t| Word {
                    text: t.to_owned(),
                    templated: false,
                    expanded: false,
                    at: source.at,
                })
                .collect();
            line.extend(words[from..].iter().cloned());
            return program_problem(&line, 0);
        }
    }
    program_problem(words, k)
}

/// `find … -exec CMD … ;` (and `-execdir`, `-ok`, `-okdir`): each command is read as one.
fn find_problem(words: &[Word], find_at: usize) -> Option<Problem> {
    let mut k = find_at + 1;
    while k < words.len() {
        if ["-exec", "-execdir", "-ok", "-okdir"].contains(&words[k].text.as_str()) {
            let end = words[k + 1..]
                .iter()
                .position(|w| w.text == ";" || w.text == "+")
                .map_or(words.len(), |p| k + 1 + p);
            if let Some(problem) = program_problem(&words[..end], k + 1) {
                return Some(problem);
            }
            k = end;
        }
        k += 1;
    }
    None
}

/// `sudo -s`, `sudo -i`, `sudo --shell`, `sudo --login`, in any cluster of short options.
fn sudo_runs_a_shell(rest: &[Word]) -> bool {
    const WITH_ARG: &str = "ugCDhprtUTR";
    let mut k = 0;
    while let Some(w) = rest.get(k) {
        let text = w.text.as_str();
        if text == "--" || !text.starts_with('-') {
            return false;
        }
        if let Some(name) = text.strip_prefix("--") {
            if !name.is_empty() && ("shell".starts_with(name) || "login".starts_with(name)) {
                return true;
            }
            k += 1;
            continue;
        }
        let cluster = &text[1..];
        for (i, c) in cluster.char_indices() {
            if c == 's' || c == 'i' {
                return true;
            }
            if WITH_ARG.contains(c) {
                // `-u x`: the next word is the argument; `-ux`: it is joined.
                if i + c.len_utf8() == cluster.len() {
                    k += 1;
                }
                break;
            }
        }
        k += 1;
    }
    false
}

/// `NAME=…` as a word: an assignment before the command.
fn is_assignment(text: &str) -> bool {
    super::assignment_name(text).is_some() && text.contains('=')
}

/// The index of the program a command line finally runs, through wrappers, if it can be
/// told: options after it belong to it.
pub(crate) fn program_index(words: &[Word]) -> Option<usize> {
    let mut k = 0;
    loop {
        while k < words.len() && is_assignment(&words[k].text) {
            k += 1;
        }
        let name = basename(&words.get(k)?.text);
        if name == "find" {
            // The program of the last `-exec` the line has reached.
            let exec = words[k..]
                .iter()
                .rposition(|w| ["-exec", "-execdir", "-ok", "-okdir"].contains(&w.text.as_str()));
            match exec {
                Some(e) if k + e + 1 < words.len() => k = k + e + 1,
                _ => return Some(k),
            }
            continue;
        }
        let Some((_, short, long, operands)) = WRAPPERS
            .iter()
            .find(|(w, ..)| *w == name && name != "env")
            .copied()
            .or_else(|| (name == "env").then_some(("env", "uC", &["unset", "chdir"][..], 0)))
        else {
            return Some(k);
        };
        k = skip_options(words, k + 1, short, long, operands)?;
        if k >= words.len() {
            return None;
        }
    }
}

/// For a `run:` argv, after rendering: the first templated argument whose value starts with
/// `-` although the author did not write the `-`, with no `--` written by the author between
/// the program and it. A program would read it as an option, and options run commands
/// (`git ls-remote --upload-pack=CMD`, `tar --to-command=CMD`, `perl -e CODE`).
pub(crate) fn option_value(template: &[String], rendered: &[String]) -> Option<usize> {
    let words: Vec<Word> = template
        .iter()
        .enumerate()
        .map(|(at, t)| Word {
            text: t.clone(),
            templated: t.contains("{{"),
            expanded: false,
            at,
        })
        .collect();
    let program = program_index(&words).unwrap_or(0);
    // `[bash, -c, SCRIPT, NAME, ARGS…]`: after the script the words are positional
    // parameters, never options.
    let positional_from = SHELLS
        .contains(&basename(&template[program]))
        .then(|| {
            let options = template[program + 1..]
                .iter()
                .take_while(|w| w.starts_with('-') && *w != "--")
                .count();
            let with_c = template[program + 1..program + 1 + options]
                .iter()
                .any(|w| !w.starts_with("--") && w.contains('c'));
            with_c.then_some(program + options + 2)
        })
        .flatten()
        .unwrap_or(usize::MAX);
    let mut options_done = false;
    for (i, (t, r)) in template.iter().zip(rendered).enumerate() {
        if (i > program && t == "--") || i >= positional_from {
            options_done = true;
        }
        if t.contains("{{") && !t.starts_with('-') && r.starts_with('-') && !options_done {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(words: &[&str]) -> Vec<Word> {
        words
            .iter()
            .enumerate()
            .map(|(at, w)| Word {
                text: (*w).to_owned(),
                templated: w.contains("{{"),
                expanded: w.starts_with('$'),
                at,
            })
            .collect()
    }

    #[test]
    fn wrappers_are_read_through_to_the_program() {
        for words in [
            &["unshare", "$BASH", "-c", "{{v}}"][..],
            &["ionice", "-c3", "$BASH", "-c", "{{v}}"],
            &["ionice", "-c", "3", "$BASH"],
            &["chrt", "-o", "0", "$BASH", "-c", "{{v}}"],
            &["taskset", "1", "$BASH"],
            &["strace", "-o", "/dev/null", "$BASH"],
            &["prlimit", "--nofile=99", "$BASH"],
            &["setpriv", "--reuid=0", "$BASH"],
            &["setpriv", "--reuid", "0", "$BASH"],
            &["env", "-u", "X", "$BASH"],
            &[
                "find",
                ".",
                "-maxdepth",
                "0",
                "-exec",
                "$BASH",
                "-c",
                "x",
                ";",
            ],
            &["find", ".", "-execdir", "$BASH", ";"],
            &["timeout", "$T", "pg_dump"],
        ] {
            assert!(
                matches!(problem(&line(words)), Some(Problem::ExpandedProgram(_))),
                "{words:?}"
            );
        }
        assert_eq!(problem(&line(&["nice", "-n", "$N", "pg_dump"])), None);
        assert_eq!(
            problem(&line(&["sudo", "-u", "$U", "tar", "-cf", "$OUT"])),
            None
        );
    }

    #[test]
    fn env_split_strings_are_read_as_the_command_line_they_become() {
        for words in [
            &["env", "-Ssh -c", "{{v}}"][..],
            &["env", "--split-string=sh -c", "{{v}}"],
            &["env", "--split-s=sh -c", "{{v}}"],
            &["env", "--split-s", "sh -c", "{{v}}"],
            &["env", "-S", "FOO=1 sh -c", "{{v}}"],
            &["env", "-S", "nice sh -c", "{{v}}"],
            &["env", "-iS", "sh -c", "{{v}}"],
            &["env", "-S{{v}}"],
            &["env", "-S", "{{v}}"],
        ] {
            let found = problem(&line(words));
            assert!(
                matches!(found, Some(Problem::Code(i, _)) if i == words.len() - 1),
                "{words:?}: {found:?}"
            );
        }
        assert_eq!(problem(&line(&["env", "-S", "tar -cf", "{{v}}"])), None);
    }

    #[test]
    fn values_are_never_programs_and_joined_command_lines_take_none() {
        for words in [
            &["{{tool}}", "x"][..],
            &["env", "{{tool}}"],
            &["sudo", "-u", "x", "{{tool}}"],
            &["timeout", "5", "{{tool}}"],
            &["find", ".", "-exec", "{{tool}}", ";"],
            &["xargs", "-0", "{{tool}}"],
        ] {
            assert!(
                matches!(problem(&line(words)), Some(Problem::ValueAsProgram(_))),
                "{words:?}"
            );
        }
        for words in [
            &["watch", "-g", "-n1", "{{v}}"][..],
            &["sudo", "-u", "x", "-s", "{{v}}"],
            &["scp", "-o", "ProxyCommand={{v}}", "a", "b"],
            &["sftp", "-o", "{{v}}", "a"],
        ] {
            assert!(
                matches!(problem(&line(words)), Some(Problem::Code(..))),
                "{words:?}"
            );
        }
    }

    #[test]
    fn a_value_starting_with_a_dash_needs_the_authors_double_dash() {
        let s = |w: &[&str]| w.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let t = s(&["git", "ls-remote", "{{v}}", "/tmp"]);
        assert_eq!(
            option_value(&t, &s(&["git", "ls-remote", "--upload-pack=x", "/tmp"])),
            Some(2)
        );
        assert_eq!(
            option_value(&t, &s(&["git", "ls-remote", "origin", "/tmp"])),
            None
        );
        let t = s(&["git", "ls-remote", "--", "{{v}}"]);
        assert_eq!(
            option_value(&t, &s(&["git", "ls-remote", "--", "-x"])),
            None
        );
        // `--` of a wrapper does not end the program's options.
        let t = s(&["sudo", "--", "tar", "-xf", "a.tar", "{{v}}"]);
        assert_eq!(
            option_value(
                &t,
                &s(&["sudo", "--", "tar", "-xf", "a.tar", "--to-command=x"])
            ),
            Some(5)
        );
        // A shell's positional parameters are never its options.
        let t = s(&["bash", "-c", "x \"$1\"", "_", "{{v}}"]);
        assert_eq!(
            option_value(&t, &s(&["bash", "-c", "x \"$1\"", "_", "-x"])),
            None
        );
        let t = s(&["bash", "{{v}}"]);
        assert_eq!(option_value(&t, &s(&["bash", "-x"])), Some(1));
        // An option the author wrote is the author's.
        let t = s(&["pg_dump", "--file={{v}}"]);
        assert_eq!(option_value(&t, &s(&["pg_dump", "--file=-x"])), None);
    }
}
