//! Placing template values in bash scripts. Rendering leaves an unforgeable token where each
//! value goes; this module replaces every token with a reference to an environment variable
//! that holds the value (`"${PLANRUN_V_1}"`, quoted for where it stands), so a value reaches
//! bash as data and never as script text. Bash does not re-read an expanded variable as code,
//! so a context this reader gets wrong costs at worst a wrongly split word.
//!
//! Bash does evaluate a variable's text as code in a few places: arithmetic (`$(( ))`,
//! `(( ))`, `$[ ]`, `let`, `declare -i`, array subscripts, `${x:offset}`, `[[ a -eq b ]]`),
//! names (`printf -v`, `read`, `[[ -v ]]`, `declare NAME`, `${!x}`) and whole commands
//! (`eval`, `trap`, `bash -c`, `ssh host CMD`, text piped or fed as a here-document into a
//! shell). This module finds those places: arithmetic takes only a plain integer, a name only
//! a plain identifier, and a command no value at all; anything else refuses the script with
//! its position and the reason. Quoted here-documents with a value in them are rewritten as
//! unquoted ones whose literal text is escaped, so the value is a reference there too.
//!
//! A script can also copy a value and evaluate the copy where no reader can follow it
//! (`f() { echo $(( $1 )); }`). Every such evaluation needs command-substitution syntax in the
//! text, so a non-secret value of that shape (`code_shape`) is refused wherever it stands.

use std::collections::HashSet;

/// One value a script refers to: the variable it travels in and its text.
#[derive(Clone, Debug)]
pub struct Slot {
    pub var: String,
    pub value: String,
    pub secret: bool,
}

/// The script as bash gets it, and the variables (name, value) its environment needs.
#[derive(Debug, PartialEq, Eq)]
pub struct Placed {
    pub script: String,
    pub env: Vec<(String, String)>,
}

/// Why a script cannot run: a value stands where bash would run it as code.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// 1-based line and column of the value's token in the rendered script.
    pub line: usize,
    pub column: usize,
    /// The slot whose value was refused.
    pub slot: usize,
    pub reason: String,
    pub help: String,
}

/// How bash treats the text of a value in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Data: any value is safe as a variable reference.
    Word,
    /// Arithmetic: bash evaluates the text, so only a plain integer.
    Arith,
    /// A variable name (bash evaluates subscripts in it): only a plain identifier.
    Name,
    /// Part of the command name, also behind a wrapper (`env`, `sudo`, `find -exec`): bash
    /// runs whatever the word names (`eval`, a shell, `watch`), so no value at all.
    Program,
    /// A command string another shell parses: no value at all.
    Code(&'static str),
    /// Anywhere in a script that names a word which starts a shell, runs text as commands or
    /// sets what a later command runs (`eval`, `alias`, `GIT_SSH_COMMAND`): no value at all.
    Runner(&'static str),
}

/// What surrounds a token, which decides how the reference is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quote {
    Plain,
    Double,
    Single,
    AnsiC,
    /// Inside `$(( ))`, a subscript or an unquoted here-document body: a bare `${VAR}`.
    Bare,
    /// The parameter of `${…}` itself: becomes indirection through the variable.
    ParamName {
        bang: bool,
    },
    /// Where bash takes only a literal name (`for NAME in`): the value, checked to be an
    /// identifier, is written as is.
    Literal,
}

struct Hole {
    slot: usize,
    quote: Quote,
    class: Class,
    at: usize,
    /// The value starts a word, an assignment's value or a here-string, with no `--` after
    /// its command's program: a value starting with `-` would be read as an option.
    option_place: bool,
    /// The value is (part of) an argument of this program, which is not a bash builtin: it
    /// would be on the program's command line, which every user sees in `ps`.
    argv_of: Option<String>,
}

/// Bash builtins: their arguments are never a process's command line.
const BUILTINS: [&str; 27] = [
    "echo",
    "printf",
    "test",
    "[",
    "read",
    "cd",
    "pushd",
    "popd",
    "export",
    "local",
    "declare",
    "typeset",
    "readonly",
    "set",
    "unset",
    "shift",
    "true",
    "false",
    ":",
    "return",
    "exit",
    "let",
    "getopts",
    "wait",
    "kill",
    "mapfile",
    "readarray",
];

enum Piece {
    Text(String),
    Hole(usize),
}

/// Shells: text after their `-c`, or fed to their standard input, is code.
/// Programs whose `-c` argument is a command line (shells, and `su`, `runuser`, `flock` and
/// `script`, which hand it to one).
const SHELLS: [&str; 14] = [
    "bash", "rbash", "sh", "dash", "zsh", "ksh", "mksh", "ash", "yash", "posh", "su", "runuser",
    "flock", "script",
];
/// Words that, anywhere in a script, mean it runs text as commands somewhere: a shell, `eval`,
/// `source`, or a program that hands a string to a shell. A script holding one gets no
/// value at all; no reading of its data flow is trusted to find which text reaches it.
const TEXT_RUNNERS: [&str; 21] = [
    "bash", "rbash", "sh", "dash", "zsh", "ksh", "mksh", "ash", "yash", "posh", "busybox", "eval",
    "source", "su", "runuser", "flock", "script", "watch", "parallel", "ssh", "trap",
];
/// Words that, anywhere in a script, let text decide what a later command runs, although
/// they start no shell themselves: an alias or a hashed path replaces a command by what a
/// value holds (`alias a="$v"; a`, `hash -p "$v" ls`, `BASH_ALIASES[a]=…`), a loadable
/// builtin is a shared object (`enable -f`), history is re-run (`history -s "$v"; fc -s`),
/// completion and key bindings run commands (`compgen -C`, `complete -C`, `bind -x`).
const COMMAND_SETTERS: [&str; 12] = [
    "coproc",
    "alias",
    "expand_aliases",
    "BASH_ALIASES",
    "BASH_CMDS",
    "hash",
    "enable",
    "fc",
    "history",
    "bind",
    "complete",
    "compgen",
];
/// Words that run the command after them; skipped to find the command that matters.
const PREFIXES: [&str; 13] = [
    "command", "builtin", "exec", "nohup", "time", "sudo", "doas", "env", "nice", "timeout",
    "setsid", "stdbuf", "xargs",
];
/// Variables bash expands as prompts or runs as commands.
const CODE_VARS: [&str; 5] = ["PS0", "PS1", "PS2", "PS4", "PROMPT_COMMAND"];
const DECLARERS: [&str; 5] = ["declare", "typeset", "local", "export", "readonly"];
const ARITH_TESTS: [&str; 6] = ["-eq", "-ne", "-lt", "-le", "-gt", "-ge"];

/// The simple command being read: its finished words (approximate text, quotes removed) and
/// the holes in the current word.
#[derive(Default)]
struct Cmd {
    words: Vec<String>,
    word: String,
    in_word: bool,
    word_holes: Vec<usize>,
    /// The holes of each finished word, in step with `words`.
    holes: Vec<Vec<usize>>,
    dbracket: bool,
    /// The word being read is the target of a redirection (`> FILE`, `<<< WORD`): data.
    redirect: bool,
    /// Whether each finished word came from an expansion (`$E`, `"${E}"`, `$(…)`), in step
    /// with `words`, and whether the word being read does.
    expanded: Vec<bool>,
    word_expanded: bool,
    /// The words are a `case` pattern list, not a command.
    pattern: bool,
}

struct Heredoc {
    delimiter: String,
    quoted: bool,
    strip_tabs: bool,
    /// The piece holding the delimiter word, rewritten when a quoted body holds a value.
    piece: usize,
    to_shell: bool,
}

struct Lexer<'a> {
    c: Vec<char>,
    i: usize,
    prefix: Vec<char>,
    slots: &'a [Slot],
    out: Vec<Piece>,
    holes: Vec<Hole>,
    cmds: Vec<Cmd>,
    integers: HashSet<String>,
    heredocs: Vec<Heredoc>,
    /// Holes in the commands of the current pipeline, which become code if it ends in a shell.
    pipeline: Vec<usize>,
    /// Shell variables assigned from a value, with those holes: bash evaluates a variable's
    /// text recursively in arithmetic, so using one there makes its value arithmetic.
    tainted: std::collections::HashMap<String, Vec<usize>>,
    /// Classes imposed by an enclosing region (arithmetic) on what nested commands print.
    forced: Vec<Class>,
    /// The line's pipeline ended in a shell reading standard input, so here-documents opened
    /// on it are commands too.
    line_fed_shell: bool,
    /// A shell started earlier reads what the script writes later (`coproc bash`, `>(bash)`):
    /// every value from this hole on is code.
    fed_from: Option<usize>,
    /// A `coproc` with a compound body was seen: a shell reading standard input after it is
    /// a co-process the script can write to.
    coproc_pending: bool,
    /// A command of the script is named by an expansion (`"$BASH"`, `$0`, `"$@"`), directly
    /// or behind a wrapper: it may be a shell or `eval`, so the script takes no value.
    dynamic: Option<&'static str>,
}

impl<'a> Lexer<'a> {
    fn new(script: &str, prefix: Vec<char>, slots: &'a [Slot]) -> Self {
        Lexer {
            c: script.chars().collect(),
            i: 0,
            prefix,
            slots,
            out: Vec::new(),
            holes: Vec::new(),
            cmds: vec![Cmd::default()],
            integers: HashSet::new(),
            heredocs: Vec::new(),
            pipeline: Vec::new(),
            tainted: Default::default(),
            forced: Vec::new(),
            line_fed_shell: false,
            fed_from: None,
            coproc_pending: false,
            dynamic: None,
        }
    }
}

/// Replaces every `{prefix}{n}__` token in `script` by a reference to `slots[n].var`.
pub fn place(script: &str, prefix: &str, slots: &[Slot]) -> Result<Placed, Refusal> {
    let mut lx = Lexer::new(script, prefix.chars().collect(), slots);
    lx.commands(End::Eof);
    // A value in a command name is refused as such, which says more; elsewhere the word
    // that makes the whole script take no value is named.
    if let Some(word) = text_runner(script) {
        for hole in lx.holes.iter_mut().filter(|h| h.class != Class::Program) {
            hole.class = hole.class.max_with(Class::Runner(word));
        }
    }
    if let Some(why) = lx.dynamic {
        for hole in lx.holes.iter_mut().filter(|h| h.class != Class::Program) {
            hole.class = hole.class.max_with(Class::Code(why));
        }
    }
    lx.finish()
}

/// Why a script runs a command that an expansion names, if it does: such a script takes no
/// value (see [`Lexer::dynamic`]).
fn expanded_command(script: &str) -> Option<&'static str> {
    // No token can match: the script is read for its commands only.
    let mut lx = Lexer::new(script, vec!['\u{0}'], &[]);
    lx.commands(End::Eof);
    lx.dynamic
}

/// The refusal of a script that runs a command named by an expansion.
const EXPANDED_PROGRAM: &str = "the script runs a program named by an expansion (`\"$BASH\"`, `$0`, `\"$@\"`, `${x}`), directly or behind a wrapper such as `unshare` or `find -exec`; it may be a shell that runs the value, so a script that takes a value names every program literally";

/// The first word of `script` that runs text as commands ([`TEXT_RUNNERS`], or `.` as a
/// command) or sets what a later command runs ([`COMMAND_SETTERS`], `declare -f`, and the
/// variables a shell or program reads as code or a command), read crudely as words split at
/// blanks, quotes and operators: a word that only looks like one (in a message) refuses
/// values too, which is the safe direction.
pub fn text_runner(script: &str) -> Option<&'static str> {
    // `/proc/self/exe` is the running bash itself; `env -S` splits its argument into a
    // command line; a glob (`/bin/b?sh`) or ANSI-C quoting (`$'\x62ash'`) can spell a shell
    // no word list sees, so a word holding either refuses too when it could name one.
    if script.contains("/proc/") && script.contains("/exe") {
        return Some("/proc/…/exe");
    }
    // Variables that name a shell: `"$BASH" -c …`, `"${SHELL}"`. (`$0` as a command is an
    // expansion the command-line reader refuses; as data it is common in messages.)
    for (var, shown) in [("BASH", "$BASH"), ("SHELL", "$SHELL")] {
        let ends = |rest: &str| {
            !rest
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        let plain = script
            .match_indices(&format!("${var}"))
            .any(|(i, m)| ends(&script[i + m.len()..]));
        if plain
            || script.contains(&format!("${{{var}}}"))
            || script.contains(&format!("${{{var}:"))
        {
            return Some(shown);
        }
    }
    // `exec < <(…)` makes what the substitution prints the script's own standard input,
    // which a later shell reads as commands.
    if script.contains("<(")
        && script
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|w| w == "exec")
    {
        return Some("exec < <(…)");
    }
    let words: Vec<&str> = script
        .split(|c: char| c.is_whitespace() || ";&|(){}".contains(c))
        .filter(|w| !w.is_empty())
        .collect();
    if script.contains("--split-string")
        || words
            .windows(2)
            .any(|w| basename(w[0]) == "env" && w[1].starts_with("-S"))
    {
        return Some("env -S");
    }
    // Per command, so that an option of one program is not read as another's.
    for segment in script.split(|c: char| ";&|\n(){}`".contains(c)) {
        // Quotes around a word do not change what it says (`"--use-compress-program=$y"`).
        let words: Vec<&str> = segment
            .split_whitespace()
            .map(|w| w.trim_matches(['"', '\'']))
            .collect();
        if let Some(found) = splits_into_a_command(&words) {
            return Some(found);
        }
    }
    // `declare -f` and its spellings print or export functions: code as text.
    if words.windows(2).any(|w| {
        ["declare", "typeset", "local", "readonly", "export"].contains(&basename(w[0]))
            && w[1].starts_with(['-', '+'])
            && w[1].contains(['f', 'F'])
    }) {
        return Some("declare -f");
    }
    for segment in script.split("$'").skip(1) {
        let body = segment.split('\'').next().unwrap_or_default();
        if body.contains('\\') && text_runner_word(&decode_ansi_c(body)).is_some() {
            return Some("$'…'");
        }
    }
    for word in script.split(|c: char| c.is_whitespace() || "'\"`;&|(){}<>$=".contains(c)) {
        let base = word.rsplit('/').next().unwrap_or(word);
        // A name with letters and a glob in it (`b?sh`, `da[s]h`); `*` alone is a pattern.
        if base.contains(['?', '*', '['])
            && base.chars().any(|c| c.is_ascii_alphabetic())
            && let Ok(glob) = globset::Glob::new(base)
        {
            let glob = glob.compile_matcher();
            if TEXT_RUNNERS.iter().any(|r| glob.is_match(r)) {
                return Some("a glob that can name a shell");
            }
        }
    }
    text_runner_word(script)
        .or_else(|| expanded_command(script).map(|_| "a program named by an expansion"))
}

/// Programs that run their arguments as a command: `xargs env` runs each line it reads.
const RUNS_ITS_ARGUMENTS: [&str; 17] = [
    "chroot",
    "ionice",
    "taskset",
    "chrt",
    "unshare",
    "nsenter",
    "setpriv",
    "strace",
    "ltrace",
    "nohup",
    "setsid",
    "stdbuf",
    "timeout",
    "nice",
    "env",
    "time",
    "systemd-run",
];

/// `xargs` splits what it reads into words and runs them with the program after it: when
/// that program runs its arguments as a command (`xargs env`, `xargs nice`, `xargs sh`),
/// text piped into it becomes a command line. `sudo -s`/`-i` hands its command to a shell.
fn splits_into_a_command(words: &[&str]) -> Option<&'static str> {
    // Schedulers run what they read as shell commands, later (`echo … | at now`,
    // `crontab -`): read only as a command, since `at` is also a word in messages.
    if let Some(first) = words.first()
        && let Some(found) = ["at", "batch", "crontab"]
            .into_iter()
            .find(|s| basename(first) == *s)
    {
        return Some(found);
    }
    for (k, word) in words.iter().enumerate() {
        let rest = &words[k + 1..];
        match basename(word) {
            "xargs" => {
                // xargs's options that take the next word as their argument.
                const WITH_ARG: [&str; 8] = ["-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s"];
                let mut i = 0;
                while i < rest.len() && rest[i].starts_with('-') {
                    i += if WITH_ARG.contains(&rest[i]) { 2 } else { 1 };
                }
                let program = rest.get(i).map(|p| basename(p)).unwrap_or_default();
                // The words xargs reads become the program's arguments, options included
                // (`--to-command=…`), unless the author ended its options with `--`.
                let options_ended = rest.iter().skip(i + 1).any(|w| *w == "--");
                if !options_ended
                    || RUNS_ITS_ARGUMENTS.contains(&program)
                    || PREFIXES.contains(&program)
                    || SHELLS.contains(&program)
                    || TEXT_RUNNERS.contains(&program)
                {
                    return Some("xargs");
                }
            }
            "sudo" => {
                const WITH_ARG: [&str; 11] = [
                    "-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "-R",
                ];
                let mut i = 0;
                while i < rest.len() && rest[i].starts_with('-') {
                    let option = rest[i];
                    if matches!(option, "--shell" | "--login")
                        || (!option.starts_with("--") && option.contains(['s', 'i']))
                    {
                        return Some("sudo -s");
                    }
                    i += if WITH_ARG.contains(&option) { 2 } else { 1 };
                }
            }
            program => {
                if let Some(option) = rest.iter().find(|o| command_option(program, o)) {
                    return Some(match program {
                        "rsync" => "rsync -e",
                        "tar" => "tar -I",
                        "git" => "git -c",
                        "scp" | "sftp" => "scp -S",
                        "sort" => "sort --compress-program",
                        _ if option.starts_with("--unzip") => "zip --unzip-command",
                        _ => "zip -TT",
                    });
                }
            }
        }
    }
    None
}

/// Whether `option` of `program` takes a command line the program runs (or, for git, a
/// setting that can be one, such as `core.sshCommand`): `rsync -e`, `tar -I` and its long
/// spellings, `git -c`, `scp -S`/`-o`, `sort --compress-program`, `zip -TT`. A value there,
/// or copied there, is run as a command although no shell is in sight.
fn command_option(program: &str, option: &str) -> bool {
    let short = option.starts_with('-') && !option.starts_with("--");
    // getopt and git's parse-options take any unambiguous prefix of a long option
    // (`--use-compress=`, `--upl=`): a prefix of three letters or more counts as the option.
    let name = option.split('=').next().unwrap_or(option);
    let long = |names: &[&str]| {
        names
            .iter()
            .any(|n| option.starts_with(n) || (name.len() >= 5 && n.starts_with(name)))
    };
    match program {
        "rsync" => long(&["--rsh"]) || (short && option.contains('e')),
        "tar" => {
            long(&[
                "--use-compress-program",
                "--to-command",
                "--checkpoint-action",
                "--info-script",
                "--new-volume-script",
                "--rsh-command",
            ]) || (short && option.contains(['I', 'F']))
        }
        "git" => {
            long(&["--config-env", "--upload-pack", "--receive-pack", "--exec"])
                || (short && option.starts_with("-c"))
        }
        "scp" | "sftp" => short && option.contains(['S', 'o']),
        "sort" => long(&["--compress-program"]),
        "zip" => option == "-TT" || long(&["--unzip-command"]),
        _ => false,
    }
}

/// The text of a `$'…'` body with its numeric escapes (`\xHH`, `\NNN`, `\uHHHH`) decoded,
/// enough to see a program name spelled in them.
fn decode_ansi_c(body: &str) -> String {
    let mut out = String::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let (radix, max) = match chars.peek() {
            Some('x') => (16, 2),
            Some('u') => (16, 4),
            Some('U') => (16, 8),
            Some('0'..='7') => (8, 3),
            _ => {
                out.extend(chars.next());
                continue;
            }
        };
        if radix == 16 {
            chars.next();
        }
        let mut digits = String::new();
        while digits.len() < max && chars.peek().is_some_and(|d| d.is_digit(radix)) {
            digits.extend(chars.next());
        }
        if let Some(decoded) = u32::from_str_radix(&digits, radix)
            .ok()
            .and_then(char::from_u32)
        {
            out.push(decoded);
        }
    }
    out
}

fn text_runner_word(script: &str) -> Option<&'static str> {
    let mut after_separator = true;
    for token in
        script.split_inclusive(|c: char| c.is_whitespace() || "'\"`;&|(){}<>$=".contains(c))
    {
        let sep = token.chars().last().unwrap_or(' ');
        let word =
            token.trim_end_matches(|c: char| c.is_whitespace() || "'\"`;&|(){}<>$=".contains(c));
        let base = word.rsplit('/').next().unwrap_or(word);
        // `BASH_ALIASES[a]` is the array `BASH_ALIASES`.
        let base = base.split('[').next().unwrap_or(base);
        if let Some(found) = TEXT_RUNNERS
            .iter()
            .chain(&COMMAND_SETTERS)
            .find(|r| **r == base)
        {
            return Some(found);
        }
        if let Some(found) = command_variable(base) {
            return Some(found);
        }
        if base == "." && after_separator && sep.is_whitespace() {
            return Some(".");
        }
        if !word.is_empty() {
            after_separator = matches!(word, "then" | "do" | "else" | "!" | "time");
        }
        if ";&|(){\n".contains(sep) {
            after_separator = true;
        }
    }
    None
}

/// A variable that a shell or another program reads as code, or that chooses the code a
/// program loads, by its name: the ones a step's `env:` may not template (see
/// [`env_key_problem`]), except `PATH`, `IFS` and `HOME`, which scripts name all the time,
/// and the name endings, which scripts use for their own variables (`SRC_PATH`). A script
/// that names one may copy a value into it (`x={{…}}; GIT_SSH_COMMAND="$x" git fetch` runs
/// the value through `sh`; `read -r LESSOPEN`), so it takes no value.
fn command_variable(word: &str) -> Option<&'static str> {
    if let Some(found) = STARTUP_VARS
        .iter()
        .chain(&RUN_VARS)
        .chain(&EXECUTED_VARS)
        .find(|v| **v == word && !["PATH", "IFS", "GLOBIGNORE", "HOME"].contains(v))
    {
        return Some(found);
    }
    // The families of `EXECUTED_PREFIXES`, named for the message.
    const PREFIXED: [(&str, &str); 11] = [
        ("LD_", "LD_*"),
        ("GIT_", "GIT_*"),
        ("PERL5", "PERL5*"),
        ("BASH_FUNC_", "BASH_FUNC_*"),
        ("PERL_", "PERL_*"),
        ("PYTHON", "PYTHON*"),
        ("NODE_", "NODE_*"),
        ("RUBY", "RUBY*"),
        ("LESS", "LESS*"),
        ("DYLD_", "DYLD_*"),
        ("MALLOC_", "MALLOC_*"),
    ];
    PREFIXED
        .iter()
        .find(|(prefix, _)| word.starts_with(prefix) && word.len() > prefix.len())
        .map(|(_, what)| *what)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Eof,
    Paren,
    Backtick,
}

fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

/// `NAME=`, `NAME+=`, `NAME[…]=` at the start of a word: the name.
fn assignment_name(word: &str) -> Option<&str> {
    let end = word.find(['=', '['])?;
    let name = word[..end].strip_suffix('+').unwrap_or(&word[..end]);
    is_name(name).then_some(name)
}

fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

impl Lexer<'_> {
    fn peek(&self, k: usize) -> Option<char> {
        self.c.get(self.i + k).copied()
    }

    fn starts(&self, text: &str) -> bool {
        text.chars()
            .enumerate()
            .all(|(k, ch)| self.peek(k) == Some(ch))
    }

    fn text(&mut self, text: &str) {
        if let Some(Piece::Text(last)) = self.out.last_mut() {
            last.push_str(text);
        } else {
            self.out.push(Piece::Text(text.to_owned()));
        }
    }

    /// Copies `n` characters to the output.
    fn copy(&mut self, n: usize) {
        let end = (self.i + n).min(self.c.len());
        let text: String = self.c[self.i..end].iter().collect();
        self.i = end;
        self.text(&text);
    }

    fn cmd(&mut self) -> &mut Cmd {
        self.cmds.last_mut().expect("a command is always open")
    }

    /// A token at the current position: its slot and length.
    fn token(&self) -> Option<(usize, usize)> {
        if !self.c[self.i..].starts_with(&self.prefix) {
            return None;
        }
        let start = self.i + self.prefix.len();
        let digits = self.c[start..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        let end = start + digits;
        if digits == 0 || self.c.get(end) != Some(&'_') || self.c.get(end + 1) != Some(&'_') {
            return None;
        }
        let slot: usize = self.c[start..end].iter().collect::<String>().parse().ok()?;
        (slot < self.slots.len()).then_some((slot, end + 2 - self.i))
    }

    /// Replaces the token at the current position, if there is one, by a hole.
    fn hole(&mut self, quote: Quote, class: Class) -> bool {
        let Some((slot, len)) = self.token() else {
            return false;
        };
        let index = self.holes.len();
        self.holes.push(Hole {
            slot,
            quote,
            class,
            at: self.i,
            option_place: false,
            argv_of: None,
        });
        self.out.push(Piece::Hole(index));
        self.i += len;
        let cmd = self.cmd();
        cmd.in_word = true;
        cmd.word.push('\u{1}');
        cmd.word_holes.push(index);
        self.pipeline.push(index);
        true
    }

    fn end_word(&mut self) {
        let cmd = self.cmd();
        if !cmd.in_word {
            return;
        }
        let word = std::mem::take(&mut cmd.word);
        let holes = std::mem::take(&mut cmd.word_holes);
        let expanded = std::mem::take(&mut cmd.word_expanded) || word.contains('$');
        cmd.in_word = false;
        if std::mem::take(&mut cmd.redirect) {
            return;
        }
        if cmd.dbracket && ARITH_TESTS.contains(&word.as_str()) {
            // The operand before an arithmetic test is arithmetic too.
            let before = cmd.holes.last().cloned().unwrap_or_default();
            let before_text = cmd.words.last().cloned().unwrap_or_default();
            for h in before {
                self.holes[h].class = self.holes[h].class.max_with(Class::Arith);
            }
            self.taint_arith(&before_text);
        }
        let cmd = self.cmds.last().expect("a command is always open");
        let (name, args) = effective(&cmd.words);
        let arithmetic_word = (cmd.dbracket
            && cmd
                .words
                .last()
                .is_some_and(|w| ARITH_TESTS.contains(&w.as_str())))
            || name == "let"
            || (DECLARERS.contains(&name)
                && args.iter().any(|a| a.starts_with('-') && a.contains('i'))
                && word.contains('='))
            || assignment_name(&word)
                .is_some_and(|n| word.contains('=') && self.integers.contains(n));
        if arithmetic_word {
            self.taint_arith(&word);
        }
        let cmd = self.cmd();
        if cmd.dbracket && word == "]]" {
            cmd.dbracket = false;
        }
        if cmd.words.is_empty() && word == "[[" {
            cmd.dbracket = true;
        }
        let resets = cmd.words.is_empty()
            && matches!(
                word.as_str(),
                "if" | "then"
                    | "else"
                    | "elif"
                    | "do"
                    | "while"
                    | "until"
                    | "!"
                    | "{"
                    | "}"
                    | "time"
                    | "fi"
                    | "done"
            );
        if !resets {
            cmd.words.push(word);
            cmd.holes.push(holes);
            cmd.expanded.push(expanded);
        }
    }

    /// Ends a simple command: records `declare -i` names, and makes the pipeline's values code
    /// when its command is a shell reading standard input.
    fn end_command(&mut self, pipe: bool) {
        self.end_word();
        let cmd = std::mem::take(self.cmd());
        let (name, args) = effective(&cmd.words);
        if DECLARERS.contains(&name) {
            let flags: String = args
                .iter()
                .filter(|w| w.starts_with('-'))
                .map(|w| w.as_str())
                .collect();
            if flags.contains('i') {
                for word in args.iter().filter(|w| !w.starts_with('-')) {
                    let name = word.split(['=', '[']).next().unwrap_or_default();
                    self.integers.insert(name.to_owned());
                }
            }
        }
        if !cmd.pattern {
            self.check_command_line(&cmd);
        }
        if cmd.words.first().is_some_and(|w| w == "coproc") {
            if cmd.words[1..].iter().any(|w| is_shell(w)) {
                self.feed_from(&cmd);
            } else {
                self.coproc_pending = true;
            }
        } else if self.coproc_pending && reads_code_from_stdin(&cmd.words) {
            self.feed_from(&cmd);
        }
        let expanded_name =
            effective_index(&cmd.words).is_some_and(|k| cmd.expanded.get(k) == Some(&true));
        if reads_code_from_stdin(&cmd.words) || xargs_runs_shell(&cmd.words) || expanded_name {
            self.line_fed_shell = true;
            let pipeline = std::mem::take(&mut self.pipeline);
            for h in pipeline {
                if !cmd_has_hole(&cmd, h) {
                    self.holes[h].class =
                        Class::Code("the text is piped into a shell, which runs it as commands");
                }
            }
        }
        if !pipe {
            self.pipeline.clear();
        }
    }

    /// Reads a finished simple command as a `run:` argv is read: a value where its program
    /// takes a command line is code, a value as its program (also behind a wrapper) is
    /// refused, and a program named by an expansion refuses every value of the script.
    fn check_command_line(&mut self, cmd: &Cmd) {
        use command_line::Problem;
        let holes_of = |k: usize| cmd.holes.get(k).cloned().unwrap_or_default();
        match command_line::problem(&command_words(cmd)) {
            None => {}
            Some(Problem::ExpandedProgram(_)) => {
                self.dynamic.get_or_insert(EXPANDED_PROGRAM);
            }
            Some(Problem::ValueAsProgram(k)) => {
                for h in holes_of(k) {
                    self.holes[h].class = self.holes[h].class.max_with(Class::Program);
                }
            }
            Some(Problem::Code(k, why)) => {
                let holes = holes_of(k);
                if holes.is_empty() {
                    // An expansion stands there: what it holds is run, whatever it is.
                    self.dynamic.get_or_insert(EXPANDED_PROGRAM);
                }
                for h in holes {
                    self.holes[h].class = self.holes[h].class.max_with(Class::Code(why));
                }
            }
        }
    }

    /// Makes every value from the start of `cmd` on code: a shell now reads what follows.
    fn feed_from(&mut self, cmd: &Cmd) {
        let start = cmd
            .holes
            .iter()
            .flatten()
            .chain(&cmd.word_holes)
            .copied()
            .min()
            .unwrap_or(self.holes.len());
        self.fed_from = Some(self.fed_from.map_or(start, |f| f.min(start)));
    }

    /// The first hole of the command being read, or the next hole if it has none yet.
    fn command_start_hole(&self) -> usize {
        self.cmds
            .last()
            .and_then(|c| c.holes.iter().flatten().chain(&c.word_holes).copied().min())
            .unwrap_or(self.holes.len())
    }

    /// Whether the text before the current position ends inside the pattern list of a
    /// `case` (after `in` or `;;`, before the `)`). A rough reading of the words is enough:
    /// it only decides between a pattern and a command name, and a pattern is data.
    fn in_case_pattern(&self) -> bool {
        #[derive(PartialEq)]
        enum State {
            Subject,
            In,
            Patterns,
            Body,
        }
        let mut stack: Vec<State> = Vec::new();
        let mut at_command_start = true;
        let text = &self.c[..self.i];
        let mut k = 0;
        while k < text.len() {
            let ch = text[k];
            if ch.is_whitespace() && ch != '\n' {
                k += 1;
                continue;
            }
            if ch == '\n' || ";&|()".contains(ch) {
                let mut op = String::from(ch);
                while k + 1 < text.len() && ";&".contains(text[k + 1]) && ch == ';' {
                    k += 1;
                    op.push(text[k]);
                }
                match (stack.last(), op.as_str()) {
                    (Some(State::Patterns), ")") => {
                        *stack.last_mut().expect("checked") = State::Body
                    }
                    (Some(State::Body), ";;" | ";&" | ";;&") => {
                        *stack.last_mut().expect("checked") = State::Patterns
                    }
                    _ => {}
                }
                at_command_start = true;
                k += 1;
                continue;
            }
            let start = k;
            while k < text.len() && !text[k].is_whitespace() && !";&|()".contains(text[k]) {
                k += 1;
            }
            let word: String = text[start..k].iter().collect();
            match stack.last() {
                Some(State::Subject) => *stack.last_mut().expect("checked") = State::In,
                Some(State::In) if word == "in" => {
                    *stack.last_mut().expect("checked") = State::Patterns
                }
                Some(State::Patterns | State::Body) if word == "esac" && at_command_start => {
                    stack.pop();
                }
                _ if word == "case" && at_command_start => stack.push(State::Subject),
                _ => {}
            }
            at_command_start = false;
        }
        stack.last() == Some(&State::Patterns)
    }

    /// Decides how bash treats a value in the current word of the current command.
    fn classify(&self) -> Class {
        let Some(cmd) = self.cmds.last() else {
            return Class::Word;
        };
        if cmd.redirect {
            return Class::Word;
        }
        let word = cmd.word.as_str();
        let words = &cmd.words;
        let opened_subscript = word.rfind('[').is_some_and(|o| !word[o..].contains(']'));
        // Assignments before the command name.
        if words
            .iter()
            .all(|w| assignment_name(w).is_some() && w.contains('='))
        {
            if let Some(name) = assignment_name(word)
                && word.contains('=')
            {
                return self.assigned(name, false);
            }
            // Not an assignment: this word is the command name, unless the lexer, which
            // does not follow `case`, is reading a pattern (matched as data, never run).
            return if self.in_case_pattern() {
                Class::Word
            } else {
                Class::Program
            };
        }
        let prev = words.last().map(String::as_str).unwrap_or_default();
        if cmd.dbracket {
            if prev == "-v" || prev == "-R" {
                return name_or_subscript(opened_subscript);
            }
            if ARITH_TESTS.contains(&prev) {
                return Class::Arith;
            }
            return Class::Word;
        }
        if let Some(code) = code_context(words) {
            return code;
        }
        if effective_index(words).is_some_and(|k| cmd.expanded.get(k) == Some(&true)) {
            return Class::Code(
                "the command name comes from an expansion, so it may be `eval` or a shell",
            );
        }
        let (name, args) = effective(words);
        let options_done = args.iter().any(|a| a == "--");
        let option = word.starts_with('-') && !options_done;
        match name {
            "eval" => Class::Code("`eval` runs its arguments as commands"),
            "trap" => Class::Code("`trap` runs its argument as a command later"),
            "let" => Class::Arith,
            "alias" if word.contains('=') => {
                Class::Code("an alias is expanded as commands where it is used")
            }
            _ if DECLARERS.contains(&name) && !option => {
                let flags: String = args
                    .iter()
                    .filter(|w| w.starts_with(['-', '+']))
                    .map(|w| w.as_str())
                    .collect();
                match word.split_once('=') {
                    Some((left, _)) => {
                        if flags.contains('n') {
                            Class::Name
                        } else {
                            let name = left.trim_end_matches('+');
                            self.assigned(
                                name.split('[').next().unwrap_or(name),
                                flags.contains('i'),
                            )
                        }
                    }
                    None => name_or_subscript(opened_subscript),
                }
            }
            "unset" if !option => name_or_subscript(opened_subscript),
            "printf" if prev == "-v" => name_or_subscript(opened_subscript),
            "test" | "[" if prev == "-v" || prev == "-R" => name_or_subscript(opened_subscript),
            "wait" if prev == "-p" => name_or_subscript(opened_subscript),
            "read" => match prev {
                "-a" => Class::Name,
                "-d" | "-n" | "-N" | "-p" | "-t" | "-u" | "-i" => Class::Word,
                _ if option => Class::Word,
                _ => name_or_subscript(opened_subscript),
            },
            "mapfile" | "readarray" => match prev {
                "-C" => Class::Code("`mapfile -C` runs its callback as a command"),
                "-d" | "-n" | "-O" | "-s" | "-u" | "-c" => Class::Word,
                _ if option => Class::Word,
                _ => name_or_subscript(opened_subscript),
            },
            "getopts" if args.len() == 1 => Class::Name,
            "for" | "select" if args.is_empty() => Class::Name,
            _ => Class::Word,
        }
    }

    /// The class of a value assigned to `name`.
    fn assigned(&self, name: &str, integer: bool) -> Class {
        if CODE_VARS.contains(&name) {
            Class::Code("bash expands this variable as a prompt, running what it holds")
        } else if script_run_variable(name) {
            Class::Code(
                "a shell or a program it starts reads this variable as code or a hook, or it chooses the program that runs",
            )
        } else if integer || self.integers.contains(name) {
            Class::Arith
        } else {
            Class::Word
        }
    }

    /// Reads commands until `end`.
    fn commands(&mut self, end: End) {
        let mut case_patterns = false;
        while self.i < self.c.len() {
            if self.hole_here(Quote::Plain) {
                continue;
            }
            let ch = self.c[self.i];
            let at_word_start = !self.cmd().in_word;
            match ch {
                ')' if end == End::Paren && !case_patterns => {
                    self.end_command(false);
                    return;
                }
                ')' if case_patterns => {
                    self.copy(1);
                    self.cmd().pattern = true;
                    self.end_command(false);
                    case_patterns = false;
                }
                '`' if end == End::Backtick => {
                    self.end_command(false);
                    return;
                }
                ' ' | '\t' => {
                    self.end_word();
                    let word_was = self.cmds.last().and_then(|c| c.words.last().cloned());
                    self.copy(1);
                    self.after_word(word_was.as_deref(), &mut case_patterns);
                }
                '\\' if self.peek(1) == Some('\n') => self.copy(2),
                '\\' => {
                    self.cmd().in_word = true;
                    if let Some(next) = self.peek(1) {
                        self.cmd().word.push(next);
                    }
                    self.copy(2);
                }
                '\n' => {
                    self.end_word();
                    let word_was = self.cmds.last().and_then(|c| c.words.last().cloned());
                    self.after_word(word_was.as_deref(), &mut case_patterns);
                    self.end_command(false);
                    self.copy(1);
                    self.heredoc_bodies();
                }
                '#' if at_word_start => {
                    // A value in a comment is still a reference, so the text stays readable
                    // and no token is left behind; it is no word of any command.
                    let command = std::mem::take(self.cmd());
                    while self.i < self.c.len() && self.c[self.i] != '\n' {
                        if !self.hole(Quote::Plain, Class::Word) {
                            self.copy(1);
                        }
                    }
                    *self.cmd() = command;
                }
                ';' | '&' | '|' => {
                    let word_was = {
                        self.end_word();
                        self.cmds.last().and_then(|c| c.words.last().cloned())
                    };
                    self.after_word(word_was.as_deref(), &mut case_patterns);
                    let pipe = ch == '|' && self.peek(1) != Some('|');
                    let double =
                        self.peek(1) == Some(ch) || (ch == '|' && self.peek(1) == Some('&'));
                    if ch == ';' && double {
                        case_patterns = true;
                    }
                    if self.cmds.last().is_some_and(|c| c.dbracket) {
                        // `&&` and `||` inside `[[ ]]` join tests, not commands.
                        self.copy(if double { 2 } else { 1 });
                        continue;
                    }
                    self.end_command(pipe);
                    self.copy(if double { 2 } else { 1 });
                }
                '(' if at_word_start && self.peek(1) == Some('(') => {
                    // `(( … ))` is a command of its own, with no program to name.
                    let command = std::mem::take(self.cmd());
                    self.copy(2);
                    self.arith("))");
                    *self.cmd() = command;
                }
                '(' if self.cmds.last().is_some_and(|c| c.dbracket) => self.copy(1),
                '(' if !at_word_start && self.peek(1) == Some(')') => {
                    // `name()`: a function definition; its body starts a new command.
                    self.copy(2);
                    self.end_command(false);
                }
                '(' if !at_word_start && self.cmd().word.ends_with('=') => {
                    self.copy(1);
                    self.array_elements();
                }
                '(' => {
                    self.copy(1);
                    if !case_patterns {
                        self.nested(End::Paren, true);
                        if self.peek(0) == Some(')') {
                            self.copy(1);
                        }
                    }
                }
                '<' | '>' if self.peek(1) == Some('(') => {
                    // `source <(…)`, `bash <(…)`: what the substitution prints is run.
                    let runs_output = ch == '<' && !self.cmd().redirect && {
                        let cmd = self.cmds.last().expect("a command is always open");
                        runs_file_argument(&cmd.words)
                    };
                    let start = self.command_start_hole();
                    self.cmd().in_word = true;
                    self.copy(2);
                    let fed_before = std::mem::replace(&mut self.line_fed_shell, false);
                    if runs_output {
                        self.forced.push(Class::Code(
                            "the output of this process substitution is run as a script",
                        ));
                    }
                    self.nested(End::Paren, false);
                    if runs_output {
                        self.forced.pop();
                    }
                    if ch == '>' && self.line_fed_shell {
                        // `>(bash)`: whatever the command writes there is run.
                        self.fed_from = Some(self.fed_from.map_or(start, |f| f.min(start)));
                    }
                    self.line_fed_shell |= fed_before;
                    if self.peek(0) == Some(')') {
                        self.copy(1);
                    }
                }
                '<' if self.starts("<<<") => {
                    self.end_word();
                    self.copy(3);
                    self.cmd().redirect = true;
                }
                '<' if self.starts("<<") && !self.cmds.last().is_some_and(|c| c.dbracket) => {
                    self.end_word();
                    self.heredoc_operator();
                }
                '<' | '>' if !self.cmds.last().is_some_and(|c| c.dbracket) => {
                    self.end_word();
                    while matches!(self.peek(0), Some('<' | '>' | '&' | '|')) {
                        self.copy(1);
                    }
                    self.cmd().redirect = true;
                }
                '[' if !at_word_start
                    && self.cmds.last().is_some_and(|c| {
                        c.words.iter().all(|w| w.contains('=')) && is_name(&c.word)
                    }) =>
                {
                    // `NAME[subscript]=`: the subscript is arithmetic.
                    self.cmd().word.push('[');
                    self.copy(1);
                    self.arith("]");
                    self.cmd().word.push(']');
                }
                _ => {
                    if !self.word_part() {
                        self.cmd().in_word = true;
                        self.cmd().word.push(ch);
                        self.copy(1);
                    }
                }
            }
        }
        self.end_command(false);
    }

    /// After a word ends: `case … in` starts the patterns, `esac` ends them.
    fn after_word(&mut self, word: Option<&str>, case_patterns: &mut bool) {
        let Some(cmd) = self.cmds.last() else {
            return;
        };
        if word == Some("in") && cmd.words.first().map(String::as_str) == Some("case") {
            *case_patterns = true;
            self.end_command(false);
        } else if word == Some("esac") {
            *case_patterns = false;
        }
    }

    /// A token at the current position, classified for the current word.
    fn hole_here(&mut self, quote: Quote) -> bool {
        if self.token().is_none() {
            return false;
        }
        let class = self.classify();
        let quote = match self.cmds.last().map(|c| effective(&c.words)) {
            Some(("for" | "select", [])) if quote == Quote::Plain => Quote::Literal,
            _ => quote,
        };
        let assigned = self.assigned_variable();
        let option_place = class == Class::Word && self.starts_an_argument();
        let argv_of = (class == Class::Word).then(|| self.argument_of()).flatten();
        let index = self.holes.len();
        let placed = self.hole(quote, class);
        if placed && let Some(name) = assigned {
            self.tainted.entry(name).or_default().push(index);
        }
        if placed {
            self.holes[index].option_place = option_place;
            self.holes[index].argv_of = argv_of;
        }
        placed
    }

    /// The program whose command line the current word joins, when it is an argument of a
    /// program that is not a bash builtin (not an assignment before it, a redirection's
    /// target or a `[[ ]]` operand).
    fn argument_of(&self) -> Option<String> {
        let cmd = self.cmds.last()?;
        if cmd.redirect || cmd.dbracket {
            return None;
        }
        let k = effective_index(&cmd.words)?;
        let program = basename(&cmd.words[k]);
        (!BUILTINS.contains(&program)).then(|| program.to_owned())
    }

    /// Whether a value here starts an argument of the command being read, with no `--`
    /// written after its program: a value starting with `-` would be read as an option.
    /// The value of an assignment (`x={{…}}`) and of a here-string (`<<< {{…}}`) counts too:
    /// the script can hand the copy to a program (`tar -xf a.tar "$x"`) where no reader
    /// follows it.
    fn starts_an_argument(&self) -> bool {
        let Some(cmd) = self.cmds.last() else {
            return false;
        };
        let word = cmd.word.as_str();
        let value_part = match word.find('=') {
            Some(eq) if assignment_name(word).is_some() => &word[eq + 1..],
            _ => word,
        };
        // A word that begins with an expansion (`$prefix{{…}}`) may begin with the value.
        let at_start = value_part.is_empty() || value_part.starts_with('$');
        if !at_start || cmd.dbracket {
            return false;
        }
        let line = command_words(cmd);
        let program = command_line::program_index(&line).unwrap_or(0);
        !cmd.words.iter().skip(program + 1).any(|w| w == "--")
    }

    /// The shell variable the current word assigns to, if it is an assignment.
    fn assigned_variable(&self) -> Option<String> {
        let cmd = self.cmds.last()?;
        let word = cmd.word.as_str();
        word.contains('=').then_some(())?;
        let before_command = cmd
            .words
            .iter()
            .all(|w| assignment_name(w).is_some() && w.contains('='));
        if before_command || DECLARERS.contains(&effective(&cmd.words).0) {
            let left = word.split('=').next().unwrap_or_default();
            let name = left
                .split('[')
                .next()
                .unwrap_or_default()
                .trim_end_matches('+');
            return is_name(name).then(|| name.to_owned());
        }
        None
    }

    /// Makes arithmetic the values of every tainted variable `text` names.
    fn taint_arith(&mut self, text: &str) {
        let names: Vec<&str> = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| is_name(w))
            .collect();
        for name in names {
            if let Some(holes) = self.tainted.get(name) {
                for &h in holes {
                    self.holes[h].class = self.holes[h].class.max_with(Class::Arith);
                }
            }
        }
    }

    /// Parts of a word that open quotes or expansions. Returns false if the character is plain.
    fn word_part(&mut self) -> bool {
        let ch = self.c[self.i];
        self.cmd().in_word = true;
        match ch {
            '\'' => {
                self.copy(1);
                self.single(Quote::Single);
            }
            '"' => {
                let start = self.i;
                self.copy(1);
                self.double();
                if self.c[start..self.i].iter().any(|&c| c == '$' || c == '`') {
                    self.cmd().word_expanded = true;
                }
            }
            '$' if self.peek(1) == Some('\'') => {
                self.copy(2);
                self.single(Quote::AnsiC);
            }
            '$' if self.peek(1) == Some('"') => {
                self.copy(2);
                self.double();
            }
            '$' | '`' => {
                let expanded = self.expansion();
                if expanded {
                    self.cmd().word_expanded = true;
                }
                return expanded;
            }
            _ => return false,
        }
        true
    }

    /// `$((`, `$[`, `$(`, `${` and backticks. Returns false for a lone `$`.
    fn expansion(&mut self) -> bool {
        if self.starts("$((") {
            self.copy(3);
            self.arith("))");
        } else if self.starts("$[") {
            self.copy(2);
            self.arith("]");
        } else if self.starts("$(") {
            self.copy(2);
            self.nested(End::Paren, false);
            if self.peek(0) == Some(')') {
                self.copy(1);
            }
        } else if self.starts("${") {
            self.copy(2);
            self.parameter();
        } else if self.peek(0) == Some('`') {
            self.copy(1);
            self.nested(End::Backtick, false);
            if self.peek(0) == Some('`') {
                self.copy(1);
            }
        } else {
            return false;
        }
        true
    }

    /// Commands inside `$( )`, `( )`, `<( )` or backticks, with their own command state.
    /// What a nested command prints lands where the substitution stands, so its values take
    /// that place's class too (`eval $(echo {{v}})`, `$(( $(echo {{v}}) ))`).
    /// Reads nested commands up to `end`. The class of the place the construct stands in is
    /// imposed on the values inside (what a substitution prints lands there), except for a
    /// `group` (a subshell), whose commands stand on their own.
    fn nested(&mut self, end: End, group: bool) {
        let pipeline = std::mem::take(&mut self.pipeline);
        let first = self.holes.len();
        self.cmds.push(Cmd::default());
        self.commands(end);
        self.cmds.pop();
        self.pipeline = pipeline;
        let mut class = if group { Class::Word } else { self.classify() };
        if let Some(&forced) = self.forced.last() {
            class = class.max_with(forced);
        }
        for h in first..self.holes.len() {
            self.holes[h].class = self.holes[h].class.max_with(class);
            self.pipeline.push(h);
        }
    }

    fn single(&mut self, quote: Quote) {
        while self.i < self.c.len() {
            if self.hole_here(quote) {
                continue;
            }
            match self.c.get(self.i).copied().unwrap_or_default() {
                '\\' if quote == Quote::AnsiC => {
                    self.copy(2);
                }
                '\'' => {
                    self.copy(1);
                    return;
                }
                ch => {
                    self.cmd().word.push(ch);
                    self.copy(1);
                }
            }
        }
    }

    fn double(&mut self) {
        while self.i < self.c.len() {
            if self.hole_here(Quote::Double) {
                continue;
            }
            match self.c.get(self.i).copied().unwrap_or_default() {
                '\\' => {
                    if let Some(next) = self.peek(1) {
                        self.cmd().word.push(next);
                    }
                    self.copy(2);
                }
                '"' => {
                    self.copy(1);
                    return;
                }
                '$' | '`' if self.expansion() => {}
                ch => {
                    self.cmd().word.push(ch);
                    self.copy(1);
                }
            }
        }
    }

    /// Arithmetic up to `close` (`))` or `]`), with nested parentheses or brackets. Quotes do
    /// not protect anything here, so every value inside is arithmetic.
    fn arith(&mut self, close: &str) {
        self.forced.push(Class::Arith);
        self.arith_region(close);
        self.forced.pop();
    }

    fn arith_region(&mut self, close: &str) {
        let (open, shut) = if close == "]" { ('[', ']') } else { ('(', ')') };
        let mut depth = 0usize;
        let start = self.i;
        while self.i < self.c.len() {
            if self.token().is_some() {
                self.hole(Quote::Bare, Class::Arith);
                continue;
            }
            if depth == 0 && self.starts(close) {
                let text: String = self.c[start..self.i].iter().collect();
                self.taint_arith(&text);
                self.copy(close.chars().count());
                return;
            }
            match self.c.get(self.i).copied().unwrap_or_default() {
                '$' | '`' if self.expansion() => {}
                '\\' => self.copy(2),
                ch if ch == open => {
                    depth += 1;
                    self.copy(1);
                }
                ch if ch == shut => {
                    depth = depth.saturating_sub(1);
                    self.copy(1);
                }
                _ => self.copy(1),
            }
        }
    }

    /// `${…}` after the `${`.
    fn parameter(&mut self) {
        let bang = self.peek(0) == Some('!');
        if bang || (self.peek(0) == Some('#') && self.peek(1) != Some('}')) {
            self.copy(1);
        }
        if self.token().is_some() {
            self.hole(Quote::ParamName { bang }, Class::Name);
        } else {
            while self
                .peek(0)
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                self.copy(1);
            }
            if self.peek(0).is_some_and(|c| "@*#?$!-".contains(c))
                && self.c.get(self.i - 1) == Some(&'{')
            {
                self.copy(1);
            }
        }
        if self.peek(0) == Some('[') {
            self.copy(1);
            self.arith("]");
        }
        match self.peek(0) {
            Some('}') => {
                self.copy(1);
                return;
            }
            Some(':') if !self.peek(1).is_some_and(|c| "-=?+".contains(c)) => {
                // `${x:offset:length}`: both are arithmetic.
                self.copy(1);
                self.arith("}");
                return;
            }
            _ => {}
        }
        self.parameter_word();
    }

    /// The word of `${x:-word}`, `${x#pattern}`, `${x/a/b}`: data, quoted as a word.
    fn parameter_word(&mut self) {
        let mut depth = 0usize;
        while self.i < self.c.len() {
            if self.hole_here(Quote::Plain) {
                continue;
            }
            match self.c.get(self.i).copied().unwrap_or_default() {
                '}' if depth == 0 => {
                    self.copy(1);
                    return;
                }
                '{' => {
                    depth += 1;
                    self.copy(1);
                }
                '}' => {
                    depth -= 1;
                    self.copy(1);
                }
                '\\' => self.copy(2),
                '\'' => {
                    self.copy(1);
                    self.single(Quote::Single);
                }
                '"' => {
                    self.copy(1);
                    self.double();
                }
                '$' | '`' if self.expansion() => {}
                _ => self.copy(1),
            }
        }
    }

    /// The elements of `NAME=( … )`: words, with `[subscript]=` arithmetic.
    fn array_elements(&mut self) {
        let name = assignment_name(&self.cmd().word)
            .unwrap_or_default()
            .to_owned();
        let integer = self.integers.contains(&name)
            || effective(&self.cmd().words)
                .1
                .iter()
                .any(|w| w.starts_with('-') && w.contains('i'));
        let class = if integer { Class::Arith } else { Class::Word };
        while self.i < self.c.len() {
            if self.token().is_some() {
                self.hole(Quote::Plain, class);
                continue;
            }
            match self.c.get(self.i).copied().unwrap_or_default() {
                ')' => {
                    self.copy(1);
                    return;
                }
                '[' => {
                    self.copy(1);
                    self.arith("]");
                }
                '\\' => self.copy(2),
                '\'' => {
                    self.copy(1);
                    self.single_with(Quote::Single, class);
                }
                '"' => {
                    self.copy(1);
                    self.double_with(class);
                }
                '$' | '`' if self.expansion() => {}
                _ => self.copy(1),
            }
        }
    }

    fn single_with(&mut self, quote: Quote, class: Class) {
        while self.i < self.c.len() {
            if self.token().is_some() {
                self.hole(quote, class);
                continue;
            }
            let ch = self.c[self.i];
            self.copy(1);
            if ch == '\'' {
                return;
            }
        }
    }

    fn double_with(&mut self, class: Class) {
        while self.i < self.c.len() {
            if self.token().is_some() {
                self.hole(Quote::Double, class);
                continue;
            }
            match self.c.get(self.i).copied().unwrap_or_default() {
                '\\' => self.copy(2),
                '"' => {
                    self.copy(1);
                    return;
                }
                '$' | '`' if self.expansion() => {}
                _ => self.copy(1),
            }
        }
    }

    /// `<<WORD`, `<<-WORD`, `<<'WORD'`, `<<"WORD"`, `<<\WORD`: the body starts at the next
    /// newline.
    fn heredoc_operator(&mut self) {
        let strip_tabs = self.peek(2) == Some('-');
        self.copy(if strip_tabs { 3 } else { 2 });
        while matches!(self.peek(0), Some(' ' | '\t')) {
            self.copy(1);
        }
        let start = self.i;
        let mut delimiter = String::new();
        let mut quoted = false;
        while let Some(ch) = self.peek(0) {
            match ch {
                '\'' | '"' => {
                    quoted = true;
                    self.i += 1;
                    while let Some(q) = self.peek(0) {
                        self.i += 1;
                        if q == ch {
                            break;
                        }
                        delimiter.push(q);
                    }
                }
                '\\' => {
                    quoted = true;
                    self.i += 1;
                    if let Some(q) = self.peek(0) {
                        delimiter.push(q);
                        self.i += 1;
                    }
                }
                c if c.is_whitespace() || ";&|<>()".contains(c) => break,
                c => {
                    delimiter.push(c);
                    self.i += 1;
                }
            }
        }
        let raw: String = self.c[start..self.i].iter().collect();
        self.out.push(Piece::Text(raw));
        let piece = self.out.len() - 1;
        let to_shell = self
            .cmds
            .last()
            .is_some_and(|c| reads_code_from_stdin(&c.words));
        if !delimiter.is_empty() {
            self.heredocs.push(Heredoc {
                delimiter,
                quoted,
                strip_tabs,
                piece,
                to_shell,
            });
        }
        // Text after the delimiter must not merge with it.
        self.out.push(Piece::Text(String::new()));
    }

    /// Reads the bodies of the here-documents opened on the line that just ended.
    fn heredoc_bodies(&mut self) {
        let fed_shell = std::mem::take(&mut self.line_fed_shell);
        // Values in a body are data of the command above, not words of the next command.
        let next_command = std::mem::take(self.cmd());
        for mut doc in std::mem::take(&mut self.heredocs) {
            doc.to_shell |= fed_shell;
            let first_hole = self.holes.len();
            // The body starts a piece of its own, so rewriting it leaves the line above alone.
            self.out.push(Piece::Text(String::new()));
            let body_start = self.out.len() - 1;
            loop {
                if self.i >= self.c.len() {
                    break;
                }
                let line: String = self.c[self.i..]
                    .iter()
                    .take_while(|&&c| c != '\n')
                    .collect();
                let candidate = if doc.strip_tabs {
                    line.trim_start_matches('\t')
                } else {
                    line.as_str()
                };
                if candidate == doc.delimiter {
                    self.copy(line.chars().count());
                    break;
                }
                self.body_line(&doc);
                if self.peek(0) == Some('\n') {
                    self.copy(1);
                }
            }
            let class = if doc.to_shell {
                Class::Code("this here-document is read by a shell, which runs it as commands")
            } else {
                Class::Word
            };
            for h in first_hole..self.holes.len() {
                self.holes[h].class = self.holes[h].class.max_with(class);
            }
            if doc.quoted && self.holes.len() > first_hole {
                self.unquote_heredoc(&doc, body_start, first_hole);
            }
        }
        *self.cmd() = next_command;
    }

    /// One line of a here-document body: literal if quoted, else like double quotes.
    fn body_line(&mut self, doc: &Heredoc) {
        while let Some(ch) = self.peek(0) {
            if ch == '\n' {
                return;
            }
            if self.token().is_some() {
                self.hole(Quote::Bare, Class::Word);
                continue;
            }
            if doc.quoted {
                self.copy(1);
                continue;
            }
            match ch {
                '\\' => self.copy(2),
                '$' | '`' if self.expansion() => {}
                _ => self.copy(1),
            }
        }
    }

    /// A quoted here-document does not expand references, so one holding a value becomes an
    /// unquoted one: its literal text is escaped, and the values are references.
    fn unquote_heredoc(&mut self, doc: &Heredoc, body_start: usize, first_hole: usize) {
        let plain = doc
            .delimiter
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-+:,@%".contains(c));
        if !plain {
            for hole in &mut self.holes[first_hole..] {
                hole.class = hole.class.max_with(Class::Code(
                    "this quoted here-document does not expand variables, and its delimiter is not a plain word, so the value would be pasted as text",
                ));
            }
            return;
        }
        self.out[doc.piece] = Piece::Text(doc.delimiter.clone());
        for piece in &mut self.out[body_start..] {
            if let Piece::Text(text) = piece {
                let mut escaped = String::with_capacity(text.len());
                for c in text.chars() {
                    if matches!(c, '\\' | '$' | '`') {
                        escaped.push('\\');
                    }
                    escaped.push(c);
                }
                *text = escaped;
            }
        }
        // The delimiter line was copied into the last piece; it has no special characters.
    }

    fn finish(self) -> Result<Placed, Refusal> {
        let mut refusals = Vec::new();
        let mut script = String::new();
        let mut used: Vec<usize> = Vec::new();
        for piece in &self.out {
            match piece {
                Piece::Text(text) => script.push_str(text),
                Piece::Hole(h) => {
                    let hole = &self.holes[*h];
                    let slot = &self.slots[hole.slot];
                    let class = match self.fed_from {
                        Some(from) if *h >= from => Class::Code(
                            "a shell started earlier (`coproc`, `>(bash)`) reads what the script writes",
                        ),
                        _ => hole.class,
                    };
                    if let Some((reason, help)) = refuse(class, slot) {
                        refusals.push((hole.at, hole.slot, reason, help));
                    }
                    if let Some(found) = code_shape(&slot.value).filter(|_| !slot.secret) {
                        refusals.push((hole.at, hole.slot, shape_reason(found), SHAPE_HELP.into()));
                    }
                    if slot.secret
                        && let Some(program) = &hole.argv_of
                    {
                        refusals.push((
                            hole.at,
                            hole.slot,
                            format!("a secret as an argument of `{program}` would be on its command line, which every user on the host sees in `ps`"),
                            "pass it in the step's `env:` (`env: {PW: \"{{secrets.NAME}}\"}`) for a program that reads it from there, or on standard input (`<<< \"{{secrets.NAME}}\"`)".into(),
                        ));
                    }
                    if hole.option_place && !slot.secret && slot.value.starts_with('-') {
                        refusals.push((
                            hole.at,
                            hole.slot,
                            "the value starts with `-` where it starts an argument, so the program would read it as an option, and options run commands (`--upload-pack=…`, `--to-command=…`, `-e`)".into(),
                            "write `--` before it in the script (`git ls-remote -- {{vars.x}}`) if the program takes it, or give the value a prefix such as `./`".into(),
                        ));
                    }
                    if slot.value.contains('\0') && !slot.secret {
                        refusals.push((
                            hole.at,
                            hole.slot,
                            "the value holds a NUL byte, which no bash variable can".into(),
                            "remove the NUL byte from the value".into(),
                        ));
                    }
                    if !used.contains(&hole.slot) {
                        used.push(hole.slot);
                    }
                    if hole.quote == Quote::Literal {
                        // Only a checked identifier gets here; any other value was refused.
                        if is_name(&slot.value) {
                            script.push_str(&slot.value);
                        }
                    } else {
                        script.push_str(&reference(&slot.var, hole.quote));
                    }
                }
            }
        }
        if let Some((at, slot, reason, help)) = refusals.into_iter().min_by_key(|r| r.0) {
            let line = self.c[..at].iter().filter(|&&c| c == '\n').count() + 1;
            let line_start = self.c[..at]
                .iter()
                .rposition(|&c| c == '\n')
                .map_or(0, |p| p + 1);
            return Err(Refusal {
                line,
                column: at - line_start + 1,
                slot,
                reason,
                help,
            });
        }
        used.sort_unstable();
        let env = used
            .into_iter()
            .map(|s| (self.slots[s].var.clone(), self.slots[s].value.clone()))
            .collect();
        Ok(Placed { script, env })
    }
}

/// What a value holds that a later evaluation could turn into a command, if anything.
///
/// Every way bash runs a variable's text as a command once it has been copied somewhere
/// (arithmetic and subscripts, `${!x}`, `${x@P}`, `declare "$x"`, `printf -v "$x"`) needs
/// command substitution in the text: `$(`, a backtick, or an escape that prompt or ANSI-C
/// decoding turns into one. No reader of the script can follow every copy of a value, so a
/// value of this shape is refused wherever it reaches a shell, and a context this module
/// misses then meets only text that cannot run.
pub fn code_shape(value: &str) -> Option<&'static str> {
    const OPENERS: [(&str, &str); 5] = [
        ("`", "a backtick"),
        ("$(", "`$(`"),
        ("$[", "`$[`"),
        ("<(", "`<(`"),
        (">(", "`>(`"),
    ];
    if let Some((_, what)) = OPENERS.iter().find(|(text, _)| value.contains(text)) {
        return Some(what);
    }
    // Two values side by side (`{{p}}{{q}}`), or a value and the script's own text, join into
    // one word: a value may not end in the first half of an opener.
    if value.ends_with(['$', '<', '>', '\\']) {
        return Some(
            "an ending (`$`, `<`, `>` or `\\`) that joins with what follows into `$(`, `<(` or an escape",
        );
    }
    // A value that names a program which runs text (`command {{t}} …` with `t: eval`), or
    // that hands one its command (`env -S`, ssh's `ProxyCommand`).
    let first = value.split_whitespace().next().unwrap_or_default();
    if TEXT_RUNNERS
        .iter()
        .chain(&[
            "exec", "command", "builtin", "coproc", "alias", "env", "xargs",
        ])
        .any(|r| basename(first) == *r)
    {
        return Some("the name of a program that runs text as commands");
    }
    let lower = value.to_ascii_lowercase();
    if first.starts_with("-S")
        || first.starts_with("--split-string")
        || lower.contains("proxycommand")
        || lower.contains("localcommand")
    {
        return Some(
            "an option that makes a program run text as a command (`env -S`, ssh's `ProxyCommand`)",
        );
    }
    // A pipe at either end: perl's `-n`/`-p` and every two-argument `open` run a file name
    // such as `touch x|` or `|touch x` as a command.
    let trimmed = value.trim();
    if trimmed.starts_with('|') || trimmed.ends_with('|') {
        return Some("a `|` at an end, which perl and other two-argument opens run as a command");
    }
    // A word starting with `-` after a space: an unquoted expansion (`find $d`, `tar $FILES`)
    // splits it off into an option such as `-exec` or `--checkpoint-action`.
    if value.as_bytes().windows(3).any(|w| {
        w[0].is_ascii_whitespace() && w[1] == b'-' && (w[2].is_ascii_alphabetic() || w[2] == b'-')
    }) {
        return Some(
            "a word starting with `-` after a space, which an unquoted expansion splits off into an option such as `-exec`",
        );
    }
    let bytes = value.as_bytes();
    bytes
        .windows(2)
        .any(|w| {
            w[0] == b'\\'
                && (w[1].is_ascii_digit()
                    || w[1].is_ascii_punctuation()
                    || b"xuUce".contains(&w[1]))
        })
        .then_some("a backslash escape (`\\NNN`, `\\x`, `\\u`, `\\c`, `\\e`, or a backslash before punctuation such as `\\$` or `\\[`)")
}

pub fn shape_reason(found: &str) -> String {
    format!(
        "the value holds {found}, which bash runs as a command wherever the script evaluates the value's text later (arithmetic, `${{!…}}`, `${{…@P}}`, `declare`)"
    )
}

/// The fix for a value of a shape a later evaluation could run.
pub const SHAPE_HELP: &str = "a value that reaches a shell cannot hold command-substitution syntax; pass it as a `run:` argument, or as a file";

/// Why a value cannot stand in a place of this class, with the fix.
fn refuse(class: Class, slot: &Slot) -> Option<(String, String)> {
    match class {
        Class::Word => None,
        Class::Arith | Class::Name if slot.secret => Some((
            "a secret stands where bash evaluates text as code (arithmetic or a variable name)".into(),
            "use the secret only as data, for example `\"{{secrets.NAME}}\"` as an argument".into(),
        )),
        Class::Arith if is_integer(&slot.value) && !slot.secret => None,
        Class::Arith => Some((
            "the value stands in bash arithmetic, which runs text such as `a[$(cmd)]` as code, and it is not a plain integer".into(),
            "arithmetic takes only integers such as `42` or `-7` (no leading zeros); check the value, or use `{{{…}}}` if the plan means it as code".into(),
        )),
        Class::Name if is_name(&slot.value) && !slot.secret => None,
        Class::Name => Some((
            "the value stands where bash reads a variable name, which runs a subscript such as `a[$(cmd)]` as code, and it is not a plain identifier".into(),
            "a name is letters, digits and `_`, not starting with a digit; check the value, or use `{{{…}}}` if the plan means it as code".into(),
        )),
        Class::Program => Some((
            "the value stands in the command name (also behind a wrapper such as `env`, `sudo` or `find -exec`), and a value is never a command name: `eval`, a shell or a program that runs its arguments would run the rest of the line as code".into(),
            "write the program literally and give it the value as an argument".into(),
        )),
        Class::Runner(word) => Some((
            format!("the value would be run as code: the script names `{word}`, which starts a shell, runs text as commands or sets what a later command runs, so no value may appear anywhere in it"),
            "move the value out of this script: to a `run:` step, or to a script that names none of these; or use `{{{…}}}` if the plan means it as code".into(),
        )),
        Class::Code(why) => Some((
            format!("the value would be run as code: {why}"),
            "no value can be placed there safely; use the value outside that command (for example give it to the inner command as an argument or through `env:`), or use `{{{…}}}` if the plan means it as code".into(),
        )),
    }
}

/// The reference text for a variable, for where it stands.
fn reference(var: &str, quote: Quote) -> String {
    match quote {
        Quote::Plain => format!("\"${{{var}}}\""),
        Quote::Double | Quote::Bare => format!("${{{var}}}"),
        Quote::Single => format!("'\"${{{var}}}\"'"),
        Quote::AnsiC => format!("'\"${{{var}}}\"$'"),
        Quote::ParamName { bang: true } => var.to_owned(),
        Quote::ParamName { bang: false } => format!("!{var}"),
        // `finish` writes literal holes itself; a reference is the harmless fallback.
        Quote::Literal => format!("\"${{{var}}}\""),
    }
}

impl Class {
    /// The stricter of two classes.
    fn max_with(self, other: Class) -> Class {
        fn rank(c: Class) -> u8 {
            match c {
                Class::Word => 0,
                Class::Name => 1,
                Class::Arith => 2,
                Class::Program => 3,
                Class::Code(_) | Class::Runner(_) => 4,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

fn name_or_subscript(opened_subscript: bool) -> Class {
    if opened_subscript {
        Class::Arith
    } else {
        Class::Name
    }
}

/// The finished words of a command, as the command-line reader takes them.
fn command_words(cmd: &Cmd) -> Vec<command_line::Word> {
    cmd.words
        .iter()
        .enumerate()
        .map(|(at, text)| command_line::Word {
            text: text.clone(),
            templated: cmd.holes.get(at).is_some_and(|h| !h.is_empty()),
            expanded: cmd.expanded.get(at).copied().unwrap_or(false),
            at,
        })
        .collect()
}

fn cmd_has_hole(cmd: &Cmd, hole: usize) -> bool {
    cmd.word_holes.contains(&hole) || cmd.holes.iter().flatten().any(|&h| h == hole)
}

/// The command that matters after prefixes (`sudo`, `env X=1`, `timeout 5`), and its arguments.
fn effective(words: &[String]) -> (&str, &[String]) {
    match effective_index(words) {
        Some(k) => (basename(&words[k]), &words[k + 1..]),
        None => ("", &[]),
    }
}

/// Where the command that matters stands in `words`, if it has been read.
fn effective_index(words: &[String]) -> Option<usize> {
    let mut k = 0;
    while k < words.len() && assignment_name(&words[k]).is_some() && words[k].contains('=') {
        k += 1;
    }
    while k < words.len() && PREFIXES.contains(&basename(&words[k])) {
        k += 1;
        while k < words.len()
            && (words[k].starts_with('-')
                || words[k].contains('=')
                || words[k].starts_with(|c: char| c.is_ascii_digit()))
        {
            k += 1;
        }
    }
    (k < words.len()).then_some(k)
}

fn is_shell(word: &str) -> bool {
    let name = basename(word);
    SHELLS.contains(&name) && name != "su" && name != "runuser"
}

/// Paths that name the script's own standard input or another open descriptor.
fn is_descriptor_path(word: &str) -> bool {
    word == "/dev/stdin" || word.starts_with("/dev/fd/") || word.starts_with("/proc/self/fd/")
}

/// `source FILE`, `. FILE`, `bash FILE`: the command runs the file its first argument names.
fn runs_file_argument(words: &[String]) -> bool {
    let (name, args) = effective(words);
    (name == "source" || name == ".")
        || (is_shell(name)
            && !args
                .iter()
                .any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('c')))
}

/// `xargs … sh -c`: xargs hands what it reads to a shell, which may run it as its script.
fn xargs_runs_shell(words: &[String]) -> bool {
    words
        .iter()
        .position(|w| basename(w) == "xargs")
        .is_some_and(|at| words[at + 1..].iter().any(|w| is_shell(w)))
}

/// `bash -c TEXT`, `su user -c TEXT`, `ssh host TEXT`: the word being read is code.
fn code_context(words: &[String]) -> Option<Class> {
    let shell_at = words.iter().position(|w| SHELLS.contains(&basename(w)));
    // `bash -c -- TEXT`: the end of options does not end `-c`'s reach.
    let options_end = usize::from(words.last().is_some_and(|w| w == "--"));
    if let Some(at) = shell_at
        && let Some(prev) = words.iter().rev().nth(options_end)
        && words.len() > at + 1 + options_end
        && prev.starts_with('-')
        && !prev.starts_with("--")
        && prev.contains('c')
    {
        return Some(Class::Code("a shell's `-c` argument is run as commands"));
    }
    if let Some(at) = words.iter().position(|w| basename(w) == "ssh") {
        // Options that take an argument; the first other word is the destination.
        const WITH_ARG: &str = "bcDEeFIiJLlmOopQRSWw";
        let mut k = at + 1;
        while k < words.len() {
            let w = &words[k];
            if let Some(flags) = w.strip_prefix('-') {
                let takes = flags.chars().last().is_some_and(|c| WITH_ARG.contains(c));
                k += if takes && flags.len() == 1 { 2 } else { 1 };
                continue;
            }
            // words[k] is the destination: anything after it is a remote command.
            return (k < words.len()).then_some(Class::Code(
                "ssh sends its command to a remote shell, which runs it as commands",
            ));
        }
    }
    None
}

#[cfg(test)]
/// For a `run:` step's argv (program first): the index of an argument that `templated` says
/// carries a template and that a program would run as code (`bash -c SCRIPT`, `env -S "sh
/// -c" X`, `ssh host CMD`, `rsync -e CMD`, `watch CMD`), or that would be the program itself
/// (`["{{vars.tool}}", …]`, `[env, "{{vars.tool}}"]`).
pub fn run_code_argument(argv: &[String], templated: impl Fn(usize) -> bool) -> Option<usize> {
    run_argv_problem(argv, templated).map(|(i, _, _)| i)
}

/// The index, message and fix of the first templated `run:` argument a program would run as
/// code or as the program, if there is one. `argv` is the template (validate) or the
/// rendering (execute); `templated` says which arguments carry a template.
pub fn run_argv_problem(
    argv: &[String],
    templated: impl Fn(usize) -> bool,
) -> Option<(usize, String, String)> {
    // Long and joined spellings of the options that take a command line (`su --command=X`,
    // `script -qcX`, `flock F --command X`, `ssh -oProxyCommand=X`), wherever they stand.
    const HANDS_OVER: [&str; 7] = ["su", "runuser", "script", "flock", "env", "ssh", "sudo"];
    let mut found = None;
    if argv.iter().any(|w| HANDS_OVER.contains(&basename(w))) {
        let takes_command = |w: &str| {
            let lower = w.to_ascii_lowercase();
            (w.starts_with("-c") && !w.starts_with("--"))
                || w.starts_with("--command")
                || w.starts_with("-S")
                || w.starts_with("--split-string")
                || lower.contains("proxycommand")
                || lower.contains("localcommand")
        };
        found = (1..argv.len()).find(|&i| {
            templated(i)
                && (takes_command(&argv[i])
                    || matches!(
                        argv[i - 1].as_str(),
                        "--command" | "-S" | "--split-string" | "-o"
                    ))
        });
    }
    let words: Vec<command_line::Word> = argv
        .iter()
        .enumerate()
        .map(|(at, text)| command_line::Word {
            text: text.clone(),
            templated: templated(at),
            expanded: false,
            at,
        })
        .collect();
    let problem = match found {
        Some(i) => command_line::Problem::Code(i, "the program takes a command line there"),
        None => match command_line::problem(&words) {
            Some(problem) => problem,
            // Second line: a shell anywhere before the value (`chroot / sh -c`, behind a
            // program planrun does not know as a wrapper); ssh only as the program or behind
            // a wrapper, since `rsync -e ssh` hands it no command.
            None => {
                let at = wrapped_shell(argv)
                    .or_else(|| argv.iter().position(|w| SHELLS.contains(&basename(w))))?;
                let i = (at + 1..argv.len())
                    .find(|&i| templated(i) && code_context(&argv[at..i]).is_some())?;
                command_line::Problem::Code(i, "a shell's `-c` argument is run as commands")
            }
        },
    };
    let (index, as_program) = match problem {
        command_line::Problem::Code(i, _) => (i, false),
        command_line::Problem::ValueAsProgram(i) | command_line::Problem::ExpandedProgram(i) => {
            (i, true)
        }
    };
    let shown: Vec<&str> = argv[..index].iter().map(String::as_str).collect();
    let written = &argv[index];
    Some(if as_program {
        (
            index,
            if index == 0 {
                format!(
                    "argument 0 (`{written}`) is the program, and a value is never a command name: it could be a shell or a program that runs its arguments"
                )
            } else {
                format!(
                    "argument {index} (`{written}`) is the program `{}` runs, and a value is never a command name: it could be a shell or a program that runs its arguments",
                    shown.join(" ")
                )
            },
            "write the program literally in the plan and give it the value as an argument".into(),
        )
    } else {
        let (message, help) = run_code_refusal(argv, index, written);
        (index, message, help)
    })
}

/// For a rendered `run:` argv: the index of a templated argument whose value starts with `-`
/// (the author did not write the `-`) with no `--` written by the author after the program,
/// and the message and fix. The program would read it as an option, and options run
/// commands (`git ls-remote --upload-pack=CMD`, `tar --to-command=CMD`, `perl -e CODE`).
pub fn run_option_value(
    template: &[String],
    rendered: &[String],
) -> Option<(usize, String, String)> {
    // A pipe at either end of a templated argument: perl's `-n`/`-p` and other two-argument
    // opens run a file name such as `touch x|` as a command.
    if let Some(i) = template.iter().zip(rendered).position(|(t, r)| {
        let r = r.trim();
        t.contains("{{") && (r.starts_with('|') || r.ends_with('|'))
    }) {
        return Some((
            i,
            format!(
                "argument {i} (`{}`) renders with a `|` at an end, which perl and other two-argument opens run as a command",
                template[i]
            ),
            "check the value: a file name never starts or ends with `|`".into(),
        ));
    }
    let i = command_line::option_value(template, rendered)?;
    Some((
        i,
        format!(
            "argument {i} (`{}`) renders as `{}`, which starts with `-`: the program would read the value as an option, and options run commands (`--upload-pack=…`, `--to-command=…`, `-e`)",
            template[i], rendered[i]
        ),
        "write `--` before the argument in the plan if the program takes it (`[git, ls-remote, --, \"{{vars.x}}\"]`), or check the value".into(),
    ))
}

/// The script a `run:` argv hands a shell (`[bash, -c, SCRIPT, …]`, also behind wrappers
/// and other programs), if it has one: the arguments after the shell, joined, since which of
/// them is the script depends on the shell's options.
pub fn run_script(argv: &[String]) -> Option<String> {
    let at =
        wrapped_shell(argv).or_else(|| argv.iter().position(|w| SHELLS.contains(&basename(w))))?;
    Some(argv[at + 1..].join(" "))
}

/// For a `run:` argv whose shell runs a literal script that names a word of
/// [`text_runner`]'s (`[bash, -c, 'eval "$1"', _, "{{vars.x}}"]`): the first templated
/// argument after that script, and the word. The value reaches the script as `$1`, and a
/// script that runs text or sets what a command runs takes no value.
pub fn run_script_runner(
    argv: &[String],
    templated: impl Fn(usize) -> bool,
) -> Option<(usize, &'static str)> {
    let at =
        wrapped_shell(argv).or_else(|| argv.iter().position(|w| SHELLS.contains(&basename(w))))?;
    let (script, word) = (at + 1..argv.len())
        .filter(|&i| !templated(i))
        .find_map(|i| text_runner(&argv[i]).map(|word| (i, word)))?;
    (script + 1..argv.len())
        .find(|&i| templated(i))
        .map(|i| (i, word))
}

/// Where a shell or ssh stands in an argv, if the program is one or is reached through
/// wrappers that run the rest (`env`, `sudo -u nobody`, `timeout 5`, `busybox`). A shell
/// named as an argument of another program (`rsync -e ssh`) is that program's business.
fn wrapped_shell(argv: &[String]) -> Option<usize> {
    let runs_code = |w: &str| SHELLS.contains(&basename(w)) || basename(w) == "ssh";
    let wrapper = |w: &str| PREFIXES.contains(&basename(w)) || basename(w) == "busybox";
    let first = argv.first()?;
    if runs_code(first) {
        return Some(0);
    }
    if !wrapper(first) {
        return None;
    }
    for k in 1..argv.len() {
        let w = argv[k].as_str();
        if runs_code(w) {
            return Some(k);
        }
        let skipped = wrapper(w)
            || w.starts_with('-')
            || w.contains('=')
            || w.starts_with(|c: char| c.is_ascii_digit())
            || argv[k - 1].starts_with('-');
        if !skipped {
            return None;
        }
    }
    None
}

/// The message and fix for a templated `run:` argument that a shell would run.
pub fn run_code_refusal(argv: &[String], index: usize, written: &str) -> (String, String) {
    let shown: Vec<&str> = argv[..index].iter().map(String::as_str).collect();
    (
        format!(
            "argument {index} (`{}`) stands where `{}` takes commands, so a value in it would run as code",
            written,
            shown.join(" ")
        ),
        "give the value to the script as an argument instead, for example `[bash, -c, 'do_thing \"$1\"', _, \"{{vars.x}}\"]`".into(),
    )
}

/// Variables a shell or the dynamic loader reads as code or as a hook when a program starts.
const STARTUP_VARS: [&str; 16] = [
    "BASH_ENV",
    "ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS0",
    "PS1",
    "PS2",
    "PS3",
    "PS4",
    "PROMPT_COMMAND",
    "IFS",
    "BASH_XTRACEFD",
    "BASH_LOADABLES_PATH",
    "GLOBIGNORE",
    "GCONV_PATH",
    "PERL5OPT",
];

/// Variables that choose which program runs or that programs run through `sh` (with git's
/// config and command variables, every `GIT_*`: pagers, editors, askpass helpers).
const RUN_VARS: [&str; 9] = [
    "PATH",
    "PAGER",
    "EDITOR",
    "VISUAL",
    "SSH_ASKPASS",
    "PYTHONSTARTUP",
    "PYTHONPATH",
    "NODE_OPTIONS",
    "RUBYOPT",
];

/// For a step's `env:` value: the message and fix if it begins with a template whose value
/// starts with `-`. A script hands `$NAME` to programs as an argument (`tar -xf a "$NAME"`),
/// where it would be read as an option, so a value never starts with `-` there either.
pub fn env_option_value(template: &str, rendered: &str) -> Option<(String, String)> {
    (template.starts_with("{{") && rendered.starts_with('-')).then(|| {
        (
            format!("the value `{rendered}` starts with `-`: the step's programs would read it as an option where the script passes it as an argument, and options run commands (`--to-command=…`)"),
            "check the value, or write a prefix in the plan (`./{{vars.x}}`) or a literal `-` if the plan means an option".into(),
        )
    })
}

/// Names of variables that some common program runs, loads or reads options from, beyond
/// [`STARTUP_VARS`] and [`RUN_VARS`]: a templated value may not set them.
const EXECUTED_VARS: [&str; 18] = [
    "LESSOPEN",
    "LESSCLOSE",
    "MANPAGER",
    "FCEDIT",
    "TAR_OPTIONS",
    "RSYNC_RSH",
    "SUDO_ASKPASS",
    "SHELL",
    "BROWSER",
    "HOME",
    "XDG_CONFIG_HOME",
    "XDG_CONFIG_DIRS",
    "TERMINFO",
    "OPENSSL_CONF",
    "PSQLRC",
    "INPUTRC",
    "MAILCAP",
    "SYSTEMD_PAGER",
];

/// Name prefixes of variables families of programs run or load code from.
const EXECUTED_PREFIXES: [&str; 11] = [
    "LD_",
    "BASH_FUNC_",
    "GIT_",
    "PERL5",
    "PERL_",
    "PYTHON",
    "NODE_",
    "RUBY",
    "LESS",
    "DYLD_",
    "MALLOC_",
];

/// Name endings of variables programs run as commands (`…PAGER`, `…EDITOR`, `LESSOPEN`,
/// `RSYNC_RSH`, `SSH_ASKPASS`), read options from (`TAR_OPTIONS`, `PERL5OPT`, `JAVA_OPTS`),
/// load code along (`PYTHONPATH`, `LD_PRELOAD`) or take configuration that can name a
/// command from (`PSQLRC`, `OPENSSL_CONF`, `GIT_CONFIG`).
const EXECUTED_SUFFIXES: [&str; 22] = [
    "OPEN",
    "CLOSE",
    "PAGER",
    "EDITOR",
    "_RSH",
    "ASKPASS",
    "OPTIONS",
    "OPTS",
    "OPT",
    "FLAGS",
    "PATH",
    "PRELOAD",
    "LIB",
    "_COMMAND",
    "_CMD",
    "_PROGRAM",
    "_HOOK",
    "_RC",
    "CONF",
    "CONFIG",
    // Startup commands of editors and interpreters (`VIMINIT`, `EXINIT`, `LUA_INIT`) and the
    // makefiles make reads first (`MAKEFILES`).
    "INIT",
    "MAKEFILES",
];

/// Why a step's `env:` key is refused, if it is. A key must be a plain identifier: anything
/// else (`BASH_FUNC_f%%`) is how bash imports functions. A variable that a shell, the loader
/// or a common program runs, loads code from or reads options from takes only a literal the
/// plan wrote itself, never a template: the named ones ([`STARTUP_VARS`], [`RUN_VARS`],
/// `LESSOPEN`, `HOME`, …), every name starting with `LD_`, `GIT_`, `PERL5`, `PYTHON`,
/// `NODE_`, `LESS`, … and every name ending in `OPEN`, `PAGER`, `EDITOR`, `_RSH`, `ASKPASS`,
/// `OPTIONS`, `OPT`, `OPTS`, `FLAGS`, `PATH`, `PRELOAD`, `LIB`, `_COMMAND`, `_CMD`, `_RC`,
/// `CONF`, `CONFIG`, …. The rule is by pattern because a list of names always misses one.
pub fn env_key_problem(key: &str, templated: bool) -> Option<(String, String)> {
    if !is_name(key) {
        return Some((
            format!(
                "`{key}` is not a plain variable name; bash reads keys such as `BASH_FUNC_f%%` as function definitions"
            ),
            "use letters, digits and `_`, not starting with a digit".into(),
        ));
    }
    (templated && executed_variable(key)).then(|| {
        (
            format!("`{key}` is read as code or a hook when a shell or program starts (or names a command, options or code a program loads), so its value cannot hold a template"),
            "write the value literally in the plan, or pass the templated value under another name (for example `APP_VALUE`) and use it from there".into(),
        )
    })
}

/// Whether a variable a script assigns is one a shell or program it starts runs or loads
/// code from: the named ones and families of [`env_key_problem`], without its name endings,
/// which scripts use for their own variables (`SRC_PATH`, `DUMP_OPTS`).
fn script_run_variable(name: &str) -> bool {
    STARTUP_VARS.contains(&name)
        || RUN_VARS.contains(&name)
        || EXECUTED_VARS.contains(&name)
        || EXECUTED_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Whether a program runs, loads or takes options from the variable `key` (see
/// [`env_key_problem`]).
fn executed_variable(key: &str) -> bool {
    let upper = key.to_ascii_uppercase();
    STARTUP_VARS.contains(&upper.as_str())
        || RUN_VARS.contains(&upper.as_str())
        || EXECUTED_VARS.contains(&upper.as_str())
        || EXECUTED_PREFIXES.iter().any(|p| upper.starts_with(p))
        || EXECUTED_SUFFIXES.iter().any(|s| upper.ends_with(s))
}

/// A shell with no `-c` and no script file reads commands from standard input.
fn reads_code_from_stdin(words: &[String]) -> bool {
    let (name, args) = effective(words);
    if name == "ssh" {
        return args.iter().filter(|a| !a.starts_with('-')).count() <= 1;
    }
    let first_file = args.iter().find(|a| !a.starts_with('-'));
    if first_file.is_some_and(|f| is_descriptor_path(f))
        && (name == "source" || name == "." || is_shell(name))
    {
        return true;
    }
    if !SHELLS.contains(&name) || name == "su" || name == "runuser" {
        return false;
    }
    !args
        .iter()
        .any(|a| !a.starts_with('-') || (a.contains('c') && !a.starts_with("--")))
        || args.iter().any(|a| a == "-s")
}

/// The command-line reader shared by `run:` argv and the simple commands of scripts.
mod command_line;

/// The injection matrix and property test: real bash runs what the renderer produced.
#[cfg(test)]
mod injection_tests;

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "__T_";

    fn slots(values: &[&str]) -> Vec<Slot> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Slot {
                var: format!("PLANRUN_V_{}", i + 1),
                value: (*v).to_owned(),
                secret: false,
            })
            .collect()
    }

    fn script(text: &str, values: &[&str]) -> Result<String, Refusal> {
        place(text, PREFIX, &slots(values)).map(|p| p.script)
    }

    #[test]
    fn references_are_quoted_for_where_they_stand() {
        assert_eq!(
            script(
                "echo __T_0__ \"a __T_0__\" 'b __T_0__' $'c __T_0__'",
                &["v"]
            )
            .unwrap(),
            r#"echo "${PLANRUN_V_1}" "a ${PLANRUN_V_1}" 'b '"${PLANRUN_V_1}"'' $'c '"${PLANRUN_V_1}"$''"#
        );
        assert_eq!(
            script("echo \"${x:-__T_0__}\" ${!__T_0__}", &["v"]).unwrap(),
            r#"echo "${x:-"${PLANRUN_V_1}"}" ${!PLANRUN_V_1}"#
        );
    }

    #[test]
    fn here_strings_are_words_not_here_documents() {
        assert_eq!(
            script("cat <<< __T_0__\necho next", &["v"]).unwrap(),
            "cat <<< \"${PLANRUN_V_1}\"\necho next"
        );
    }

    #[test]
    fn quoted_here_documents_with_values_become_unquoted_with_escaped_text() {
        assert_eq!(
            script("cat <<'EOF'\n$HOME `x` \\ __T_0__\nEOF\n", &["v"]).unwrap(),
            "cat <<EOF\n\\$HOME \\`x\\` \\\\ ${PLANRUN_V_1}\nEOF\n"
        );
        // Without a value the document is left exactly as written.
        assert_eq!(
            script("cat <<'EOF'\n$HOME\nEOF\n", &[]).unwrap(),
            "cat <<'EOF'\n$HOME\nEOF\n"
        );
    }

    #[test]
    fn arithmetic_takes_integers_only() {
        assert!(script("echo $(( __T_0__ + 1 ))", &["-12"]).is_ok());
        for bad in ["1+1", "x", "08", "a[$(id)]", " 1", ""] {
            let refusal = script("echo $(( __T_0__ + 1 ))", &[bad]).unwrap_err();
            assert_eq!((refusal.line, refusal.column), (1, 10), "{bad:?}");
        }
    }

    #[test]
    fn names_take_identifiers_only() {
        assert!(script("printf -v __T_0__ x", &["out_1"]).is_ok());
        let refusal = script("echo a\n  [[ -v __T_0__ ]]", &["a[$(id)]"]).unwrap_err();
        assert_eq!((refusal.line, refusal.column), (2, 9));
        assert!(
            refusal.reason.contains("plain identifier"),
            "{}",
            refusal.reason
        );
    }

    #[test]
    fn commands_take_no_value() {
        for text in [
            "eval \"echo __T_0__\"",
            "bash -c 'echo __T_0__'",
            "trap 'rm __T_0__' EXIT",
            "echo __T_0__ | sh",
            "ssh host ls __T_0__",
        ] {
            let refusal = script(text, &["safe"]).unwrap_err();
            assert!(
                refusal.reason.contains("run as code"),
                "{text}: {}",
                refusal.reason
            );
        }
        // A script that starts a shell gets no value, not even as that shell's `$1`.
        assert!(script("bash -c 'echo \"$1\"' _ __T_0__", &["v"]).is_err());
        assert!(script("ssh -i key __T_0__ uptime", &["host"]).is_err());
    }

    #[test]
    fn shells_fed_through_files_descriptors_coprocesses_and_variables_take_no_value() {
        for text in [
            "source <(echo __T_0__)",
            ". <(printf '%s' \"__T_0__\")",
            ". /dev/stdin <<< __T_0__",
            "source /dev/fd/3 3<<< __T_0__",
            "bash <(echo __T_0__)",
            "bash /dev/stdin <<< __T_0__",
            "coproc bash\necho __T_0__ >&\"${COPROC[1]}\"",
            "coproc w { bash; }\necho __T_0__ >&\"${w[1]}\"",
            "exec 3> >(bash)\necho __T_0__ >&3",
            "echo __T_0__ > >(sh)",
            "echo __T_0__ | xargs -0 sh -c",
            "echo __T_0__ | xargs -I{} bash -c 'echo {}'",
            "E=eval; $E __T_0__",
            "E=eval; ${E} echo __T_0__",
            "E=eval; \"$E\" __T_0__",
            "sudo $E __T_0__",
            "echo __T_0__ | $SH",
        ] {
            let refusal = script(text, &["safe"]).unwrap_err();
            assert!(
                refusal.reason.contains("run as code"),
                "{text}: {}",
                refusal.reason
            );
        }
        // Reading a process substitution as data, and a value before a co-process, stay data.
        assert!(script("cat <(echo __T_0__)", &["v"]).is_ok());
        assert!(script("diff <(echo __T_0__) file", &["v"]).is_ok());
        // A script that starts a shell anywhere takes no value, even before it.
        assert!(script("echo __T_0__ > out\ncoproc bash", &["v"]).is_err());
        assert!(script("echo __T_0__ | xargs -0 rm --", &["v"]).is_ok());
    }

    #[test]
    fn values_that_a_later_evaluation_could_run_are_refused_everywhere() {
        for value in [
            "$(touch C)",
            "`touch C`",
            "a[$[1]]",
            "<(id)",
            ">(id)",
            "\\044(touch C)",
            "\\x24(id)",
            "\\u0024(id)",
            "\\U00000024(id)",
            "\\c@",
            "\\e",
            "\\$(id)",
        ] {
            let refusal = script("echo __T_0__", &[value]).unwrap_err();
            assert!(
                refusal.reason.contains("the value holds"),
                "{value}: {refusal:?}"
            );
            assert!(code_shape(value).is_some(), "{value}");
        }
        for value in [
            "/srv/my files/a b",
            "it's \"quoted\"",
            "a; b && c | d * ?",
            "$HOME and ${USER}",
            "line1\nline2",
            "unicode: \u{e9}\u{4e2d}",
            "C:\\temp\\new",
            "100% (done)",
        ] {
            assert_eq!(code_shape(value), None, "{value}");
            assert!(script("echo __T_0__", &[value]).is_ok(), "{value}");
        }
    }

    #[test]
    fn run_arguments_where_a_shell_takes_commands() {
        let argv = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        let templated = |v: &Vec<String>| {
            let v = v.clone();
            move |i: usize| v[i].contains("{{")
        };
        for words in [
            &["bash", "-c", "{{vars.x}}"][..],
            &["sh", "-c", "echo {{vars.x}}"],
            &["env", "bash", "-c", "{{vars.x}}"],
            &["env", "-i", "A=1", "/bin/bash", "-ec", "{{vars.x}}"],
            &["sudo", "-u", "nobody", "sh", "-c", "{{vars.x}}"],
            &[
                "timeout",
                "5",
                "nice",
                "-n",
                "10",
                "dash",
                "-c",
                "{{vars.x}}",
            ],
            &["busybox", "sh", "-c", "{{vars.x}}"],
            &["ssh", "host", "{{vars.x}}"],
        ] {
            let a = argv(words);
            assert!(run_code_argument(&a, templated(&a)).is_some(), "{words:?}");
        }
        for words in [
            &["bash", "-c", "echo \"$1\"", "_", "{{vars.x}}"][..],
            &["bash", "{{vars.script}}"],
            &["rsync", "-a", "-e", "ssh", "src", "{{vars.dest}}"],
            &["grep", "-c", "{{vars.x}}", "file"],
        ] {
            let a = argv(words);
            assert_eq!(run_code_argument(&a, templated(&a)), None, "{words:?}");
        }
    }

    #[test]
    fn env_keys_that_define_functions_or_run_at_startup() {
        assert!(env_key_problem("BASH_FUNC_f%%", false).is_some());
        assert!(env_key_problem("A=B", false).is_some());
        assert!(env_key_problem("BASH_ENV", true).is_some());
        assert!(env_key_problem("LD_PRELOAD", true).is_some());
        assert!(env_key_problem("PROMPT_COMMAND", true).is_some());
        assert!(env_key_problem("LD_LIBRARY_PATH", false).is_none());
        assert!(env_key_problem("PGDATABASE", true).is_none());
    }

    #[test]
    fn variables_copied_from_a_value_and_used_in_arithmetic_make_it_arithmetic() {
        // `a[b]` cannot run anything, but it is still no integer.
        assert!(script("x=__T_0__\necho $(( x + 1 ))", &["a[b]"]).is_err());
        assert!(script("x=__T_0__\necho $(( x + 1 ))", &["4"]).is_ok());
        assert!(script("x=__T_0__\necho \"$x\"", &["a[b]"]).is_ok());
    }
}
