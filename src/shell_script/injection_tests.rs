//! Template values never become shell code: a generated matrix of bash contexts × hostile
//! values, rendered by the shell renderer and run by real bash, and a property test over
//! random compositions of bash constructs. The end-to-end runs of the binary are in
//! tests/shell_injection.rs.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use chrono::Utc;
use proptest::prelude::*;

use crate::shell_script::code_shape;
use crate::template::Renderer;

/// Every hostile value tries to create the file `PWN` in the working directory. Those holding
/// command-substitution syntax are refused wherever they reach a shell (`code_shape`); the
/// others must arrive as data.
const HOSTILE: [&str; 21] = [
    "x\"; touch PWN; echo \"",
    "'; touch PWN; echo '",
    "$(touch PWN)",
    "`touch PWN`",
    "a[$(touch PWN)]",
    "1+a[$(touch PWN)]",
    "x\ntouch PWN\n",
    "EOF\ntouch PWN\nEOF",
    "\\\ntouch PWN",
    "; touch PWN #",
    "${IFS}$(touch${IFS}PWN)",
    "x'$(touch PWN)'\"`touch PWN`\"",
    ") ; touch PWN ; (",
    "]]; touch PWN; [[ x",
    "}; touch PWN; {",
    "$'\\x27'; touch PWN #\\",
    "a[$(touch PWN)]=1",
    "\\044(touch PWN)",
    "\\$(touch PWN)",
    "a[\\140touch PWN\\140]",
    "touch PWN",
];
/// Values of the safe shapes, which every context must carry.
const BENIGN: [&str; 8] = [
    "hello  world",
    "42",
    "foo_1",
    "/srv/my files/it's \"here\"",
    "a; b && c | d * $HOME",
    "line one\nline two",
    "unicode \u{e9}\u{4e2d} ${USER}",
    "C:\\temp 100%",
];

/// What a context does with a value.
#[derive(Clone, Copy)]
enum Kind {
    /// Carries any value: the output is exactly this function of the value.
    Echo(fn(&str) -> String),
    /// Carries any value, but splits or globs it: only harmlessness is checked.
    Runs,
    /// Arithmetic: an integer gives this output; anything else is refused.
    Arith(fn(i64) -> String),
    /// A name: an identifier gives this output; anything else is refused.
    Name(fn(&str) -> String),
    /// A command string: every value is refused.
    Code,
    /// The script copies the value and evaluates the copy later, where no reader can follow:
    /// refusing is allowed, running is not, and a value of a runnable shape is refused.
    Evaluates,
}

fn angle(v: &str) -> String {
    format!("<{v}>\n")
}
fn angle_trimmed(v: &str) -> String {
    format!("<{}>\n", v.trim_end_matches('\n'))
}
fn line(v: &str) -> String {
    format!("{v}\n")
}

fn contexts() -> Vec<(&'static str, Kind)> {
    use Kind::*;
    vec![
        // Word contexts: the value arrives intact.
        ("printf '<%s>\\n' {{vars.v}}", Echo(angle)),
        ("printf '<%s>\\n' \"{{vars.v}}\"", Echo(angle)),
        ("printf '<%s>\\n' '{{vars.v}}'", Echo(angle)),
        ("printf '<%s>\\n' $'{{vars.v}}'", Echo(angle)),
        ("printf '<%s>\\n' $\"{{vars.v}}\"", Echo(angle)),
        (
            "printf '<%s>\\n' \"a {{vars.v}} b\"",
            Echo(|v| format!("<a {v} b>\n")),
        ),
        (
            "printf '<%s>\\n' 'a {{vars.v}} b'",
            Echo(|v| format!("<a {v} b>\n")),
        ),
        (
            "printf '<%s>\\n' pre{{vars.v}}post",
            Echo(|v| format!("<pre{v}post>\n")),
        ),
        (
            "printf '<%s>\\n' \"pre\"'{{vars.v}}'\"post\"",
            Echo(|v| format!("<pre{v}post>\n")),
        ),
        (
            "printf '<%s>\\n' $'a\\t'{{vars.v}}",
            Echo(|v| format!("<a\t{v}>\n")),
        ),
        (
            "printf '<%s>\\n' \"$(printf %s {{vars.v}})\"",
            Echo(angle_trimmed),
        ),
        (
            "printf '<%s>\\n' \"$(printf %s \"{{vars.v}}\")\"",
            Echo(angle_trimmed),
        ),
        (
            "printf '<%s>\\n' \"$(printf %s '{{vars.v}}')\"",
            Echo(angle_trimmed),
        ),
        (
            "printf '<%s>\\n' \"`printf %s {{vars.v}}`\"",
            Echo(angle_trimmed),
        ),
        (
            "printf '<%s>\\n' \"`printf %s '{{vars.v}}'`\"",
            Echo(angle_trimmed),
        ),
        // Nested backticks split the value (bash re-reads the inner quotes), but never run it.
        (
            "printf '<%s>\\n' \"`printf %s \\`printf %s {{vars.v}}\\``\"",
            Runs,
        ),
        (
            "printf '<%s>\\n' `printf %s \"{{vars.v}}\" | od -An -c | tr -d ' \\n'` >/dev/null; printf '<%s>\\n' {{vars.v}}",
            Echo(angle),
        ),
        (
            "printf '<%s>\\n' \"$( printf %s \"$( printf %s {{vars.v}} )\" )\"",
            Echo(angle_trimmed),
        ),
        ("printf '<%s>\\n' $(printf %s {{vars.v}})", Runs),
        ("x={{vars.v}}; printf '<%s>\\n' \"$x\"", Echo(angle)),
        ("x=\"{{vars.v}}\"; printf '<%s>\\n' \"$x\"", Echo(angle)),
        ("x='{{vars.v}}'; printf '<%s>\\n' \"$x\"", Echo(angle)),
        ("x+={{vars.v}}; printf '<%s>\\n' \"$x\"", Echo(angle)),
        ("export X={{vars.v}}; printf '<%s>\\n' \"$X\"", Echo(angle)),
        ("declare x={{vars.v}}; printf '<%s>\\n' \"$x\"", Echo(angle)),
        (
            "f() { local x={{vars.v}}; printf '<%s>\\n' \"$x\"; }; f",
            Echo(angle),
        ),
        (
            "X={{vars.v}} env | grep -c '^X=' >/dev/null; printf '<%s>\\n' {{vars.v}}",
            Echo(angle),
        ),
        ("cat <<EOF\n<{{vars.v}}>\nEOF", Echo(angle)),
        ("cat <<'EOF'\n<{{vars.v}}>\nEOF", Echo(angle)),
        (
            "cat <<\"EOF\"\n<{{vars.v}}> $HOME `x` \\\\\nEOF",
            Echo(|v| format!("<{v}> $HOME `x` \\\\\n")),
        ),
        ("cat <<\\EOF\n<{{vars.v}}>\nEOF", Echo(angle)),
        (
            "cat <<'EOF'\n$UNSET_Y {{vars.v}}\nEOF",
            Echo(|v| format!("$UNSET_Y {v}\n")),
        ),
        ("cat <<-EOF\n\t<{{vars.v}}>\n\tEOF", Echo(angle)),
        ("cat <<-'EOF'\n\t<{{vars.v}}>\n\tEOF", Echo(angle)),
        (
            "cat <<EOF\n{{vars.v}}\nEOF\necho after",
            Echo(|v| format!("{v}\nafter\n")),
        ),
        (
            "cat <<'EOF'\n{{vars.v}}\nEOF\necho after",
            Echo(|v| format!("{v}\nafter\n")),
        ),
        (
            "cat <<A; cat <<'B'\n{{vars.v}}\nA\n{{vars.v}}\nB",
            Echo(|v| format!("{v}\n{v}\n")),
        ),
        ("cat <<< {{vars.v}}", Echo(line)),
        ("cat <<<{{vars.v}}", Echo(line)),
        ("cat <<< \"<{{vars.v}}>\"", Echo(line_angle)),
        ("cat <<< '<{{vars.v}}>'", Echo(line_angle)),
        ("printf '<%s>\\n' \\\n  {{vars.v}}", Echo(angle)),
        (
            "printf '<%s>\\n' \"a\\\n{{vars.v}}\"",
            Echo(|v| format!("<a{v}>\n")),
        ),
        ("printf '<%s>\\n' \"${UNSET_X:-{{vars.v}}}\"", Echo(angle)),
        ("printf '<%s>\\n' ${UNSET_X:-\"{{vars.v}}\"}", Echo(angle)),
        ("printf '<%s>\\n' ${UNSET_X-{{vars.v}}}", Echo(angle)),
        (
            "x=abc; printf '<%s>\\n' \"${x/b/{{vars.v}}}\"",
            Echo(|v| format!("<a{v}c>\n")),
        ),
        (
            "x=abc; printf '<%s>\\n' \"${x#{{vars.v}}}\"",
            Echo(|_| "<abc>\n".into()),
        ),
        (
            "case {{vars.v}} in *) printf '<%s>\\n' matched;; esac",
            Echo(|_| "<matched>\n".into()),
        ),
        (
            "case zz in {{vars.v}}) echo same;; *) echo other;; esac",
            Echo(|_| "other\n".into()),
        ),
        (
            "case {{vars.v}} in \"{{vars.v}}\") echo same;; esac",
            Echo(|_| "same\n".into()),
        ),
        (
            "[[ {{vars.v}} == \"{{vars.v}}\" ]] && echo eq",
            Echo(|_| "eq\n".into()),
        ),
        (
            "[[ -n {{vars.v}} && {{vars.v}} != zz ]] && echo ok",
            Echo(|_| "ok\n".into()),
        ),
        (
            "[ \"{{vars.v}}\" = \"{{vars.v}}\" ] && echo eq",
            Echo(|_| "eq\n".into()),
        ),
        (
            "test -n {{vars.v}} && echo nonempty",
            Echo(|_| "nonempty\n".into()),
        ),
        (
            "if [[ -n \"{{vars.v}}\" ]]; then printf '<%s>\\n' \"{{vars.v}}\"; fi",
            Echo(angle),
        ),
        (
            "for x in {{vars.v}}; do printf '<%s>\\n' \"$x\"; done",
            Echo(angle),
        ),
        (
            "for x in \"{{vars.v}}\" '{{vars.v}}'; do printf '<%s>\\n' \"$x\"; done",
            Echo(|v| format!("<{v}>\n<{v}>\n")),
        ),
        (
            "arr=({{vars.v}}); printf '<%s>\\n' \"${arr[0]}\"",
            Echo(angle),
        ),
        (
            "arr=(\"{{vars.v}}\" two); printf '<%s>\\n' \"${arr[@]}\"",
            Echo(|v| format!("<{v}>\n<two>\n")),
        ),
        (
            "declare -a arr=('{{vars.v}}'); printf '<%s>\\n' \"${arr[0]}\"",
            Echo(angle),
        ),
        (
            "declare -A m=([k]={{vars.v}}); printf '<%s>\\n' \"${m[k]}\"",
            Echo(angle),
        ),
        ("( printf '<%s>\\n' {{vars.v}} )", Echo(angle)),
        ("{ printf '<%s>\\n' {{vars.v}}; }", Echo(angle)),
        ("printf '<%s>\\n' {{vars.v}} | cat", Echo(angle)),
        ("true && printf '<%s>\\n' {{vars.v}} || false", Echo(angle)),
        (
            "f() { printf '<%s>\\n' \"$1\"; }; f {{vars.v}}",
            Echo(angle),
        ),
        (
            "printf '<%s>\\n' \"$(cat <<EOF\n{{vars.v}}\nEOF\n)\"",
            Echo(angle_trimmed),
        ),
        ("cat < <(printf '<%s>\\n' {{vars.v}})", Echo(angle)),
        (
            "printf '%s' {{vars.v}} > out.txt; printf '<%s>\\n' \"$(cat out.txt)\"",
            Echo(angle_trimmed),
        ),
        (
            "printf -v out '%s' {{vars.v}}; printf '<%s>\\n' \"$out\"",
            Echo(angle),
        ),
        (
            "printf '<%s>\\n' \"$(( 1 + 1 ))\" {{vars.v}}",
            Echo(|v| format!("<2>\n<{v}>\n")),
        ),
        (
            "x=$( printf %s {{vars.v}} ); printf '<%s>\\n' \"$x\"",
            Echo(angle_trimmed),
        ),
        (
            "printf '%s\\0' {{vars.v}} | xargs -0 printf -- '<%s>\\n'",
            Echo(angle),
        ),
        // A script that starts a shell gets no value at all, even as that shell's `$1`:
        // no reading of the script decides which text reaches it. `run:` argv can do this.
        ("bash -c 'printf \"<%s>\\n\" \"$1\"' _ {{vars.v}}", Code),
        (
            "# a comment {{vars.v}} it's\nprintf '<%s>\\n' {{vars.v}}",
            Echo(angle),
        ),
        ("if true; then printf '<%s>\\n' {{vars.v}}; fi", Echo(angle)),
        (
            "while false; do :; done; printf '<%s>\\n' {{vars.v}}",
            Echo(angle),
        ),
        (
            "printf '<%s>\\n' {{vars.v}}{{vars.v}}",
            Echo(|v| format!("<{v}{v}>\n")),
        ),
        (
            "echo {{vars.v}}* >/dev/null; printf '<%s>\\n' ok",
            Echo(|_| "<ok>\n".into()),
        ),
        ("ls {{vars.v}} 2>/dev/null || true", Runs),
        (
            "read -r x <<< {{vars.v}} || true; printf '<%s>\\n' \"$x\"",
            Runs,
        ),
        ("echo $(echo {{vars.v}}) >/dev/null", Runs),
        // Arithmetic: only integers.
        (
            "echo $(( {{vars.v}} + 1 ))",
            Arith(|n| format!("{}\n", n + 1)),
        ),
        (
            "echo \"$(( {{vars.v}} + 1 ))\"",
            Arith(|n| format!("{}\n", n + 1)),
        ),
        ("echo $(({{vars.v}}))", Arith(|n| format!("{n}\n"))),
        (
            "echo $(( \"{{vars.v}}\" * 2 ))",
            Arith(|n| format!("{}\n", n * 2)),
        ),
        (
            "(( x = {{vars.v}} + 1 )); echo $x",
            Arith(|n| format!("{}\n", n + 1)),
        ),
        (
            "echo $[ {{vars.v}} + 1 ]",
            Arith(|n| format!("{}\n", n + 1)),
        ),
        (
            "let \"x = {{vars.v}} + 1\"; echo $x",
            Arith(|n| format!("{}\n", n + 1)),
        ),
        (
            "let x={{vars.v}}+1; echo $x",
            Arith(|n| format!("{}\n", n + 1)),
        ),
        (
            "declare -i x={{vars.v}}; echo $x",
            Arith(|n| format!("{n}\n")),
        ),
        (
            "declare -i x; x={{vars.v}}; echo $x",
            Arith(|n| format!("{n}\n")),
        ),
        (
            "local_f() { local -i x=\"{{vars.v}}\"; echo $x; }; local_f",
            Arith(|n| format!("{n}\n")),
        ),
        (
            "a=(1 2 3); echo \"${a[{{vars.v}}]-none}\"",
            Arith(|_| "none\n".into()),
        ),
        (
            "s=abcdef; echo \"<${s:{{vars.v}}:2}>\"",
            Arith(|_| "<>\n".into()),
        ),
        (
            "s=abcdef; echo \"<${s:0:{{vars.v}}}>\"",
            Arith(|_| "<abcdef>\n".into()),
        ),
        (
            "[[ {{vars.v}} -eq 42 ]] && echo yes || echo no",
            Arith(|n| {
                if n == 42 {
                    "yes\n".into()
                } else {
                    "no\n".into()
                }
            }),
        ),
        (
            "[[ 41 -lt \"{{vars.v}}\" ]] && echo yes || echo no",
            Arith(|n| {
                if n > 41 {
                    "yes\n".into()
                } else {
                    "no\n".into()
                }
            }),
        ),
        (
            "for (( i = 40; i < {{vars.v}}; i++ )); do echo $i; done",
            Arith(|_| "40\n41\n".into()),
        ),
        (
            "a[{{vars.v}}]=x; echo \"${!a[@]}\"",
            Arith(|n| format!("{n}\n")),
        ),
        (
            "a=([{{vars.v}}]=x); echo \"${!a[@]}\"",
            Arith(|n| format!("{n}\n")),
        ),
        (
            "x={{vars.v}}; echo $(( x + 1 ))",
            Arith(|n| format!("{}\n", n + 1)),
        ),
        (
            "x=\"{{vars.v}}\"; [[ $x -gt 1 ]] && echo big",
            Arith(|_| "big\n".into()),
        ),
        (
            "unset 'a[{{vars.v}}]'; echo done",
            Arith(|_| "done\n".into()),
        ),
        // Names: only identifiers.
        (
            "printf -v {{vars.v}} '%s' ok; declare -p {{vars.v}} | cut -d' ' -f3",
            Name(|v| format!("{v}=\"ok\"\n")),
        ),
        (
            "read -r {{vars.v}} <<< ok; declare -p {{vars.v}} | cut -d' ' -f3",
            Name(|v| format!("{v}=\"ok\"\n")),
        ),
        (
            "[[ -v {{vars.v}} ]] && echo set || echo unset",
            Name(|_| "unset\n".into()),
        ),
        (
            "[[ -v \"{{vars.v}}\" ]] && echo set || echo unset",
            Name(|_| "unset\n".into()),
        ),
        (
            "test -v {{vars.v}} && echo set || echo unset",
            Name(|_| "unset\n".into()),
        ),
        (
            "[ -v '{{vars.v}}' ] && echo set || echo unset",
            Name(|_| "unset\n".into()),
        ),
        (
            "declare {{vars.v}}=ok; declare -p {{vars.v}} | cut -d' ' -f3",
            Name(|v| format!("{v}=\"ok\"\n")),
        ),
        (
            "export \"{{vars.v}}=ok\"; printenv {{vars.v}}",
            Name(|_| "ok\n".into()),
        ),
        ("unset {{vars.v}}; echo done", Name(|_| "done\n".into())),
        (
            "mapfile -t {{vars.v}} <<< ok; declare -p {{vars.v}} | cut -d' ' -f3",
            Name(|v| format!("{v}=([0]=\"ok\")\n")),
        ),
        (
            "declare -n r={{vars.v}}; foo_1=seen; echo \"${r-}\"",
            Name(|v| {
                if v == "foo_1" {
                    "seen\n".into()
                } else {
                    "\n".into()
                }
            }),
        ),
        (
            "for {{vars.v}} in a; do echo a; done",
            Name(|_| "a\n".into()),
        ),
        // Commands: never a value.
        ("eval \"echo {{vars.v}}\"", Code),
        ("eval 'echo {{vars.v}}'", Code),
        ("eval echo {{vars.v}}", Code),
        ("bash -c \"echo {{vars.v}}\"", Code),
        ("bash -ec 'echo {{vars.v}}'", Code),
        ("sh -c \"echo {{vars.v}}\" sh", Code),
        ("sudo -u nobody bash -c \"echo {{vars.v}}\"", Code),
        ("trap \"echo {{vars.v}}\" EXIT", Code),
        ("echo \"echo {{vars.v}}\" | bash", Code),
        ("printf '%s\\n' {{vars.v}} | sh", Code),
        ("bash <<EOF\necho {{vars.v}}\nEOF", Code),
        ("bash <<'EOF'\necho {{vars.v}}\nEOF", Code),
        ("ssh -p 22 host \"echo {{vars.v}}\"", Code),
        ("PS4=\"{{vars.v}}\"; set -x; true", Code),
        ("mapfile -C \"{{vars.v}}\" -c 1 x <<< a", Code),
        // What a command substitution prints lands in the enclosing place.
        ("eval $(echo {{vars.v}})", Code),
        ("eval \"x=$(printf %s '{{vars.v}}')\"", Code),
        ("cat <<EOF | bash\necho {{vars.v}}\nEOF", Code),
        (
            "echo $(( $(printf %s {{vars.v}}) + 1 ))",
            Arith(|n| format!("{}\n", n + 1)),
        ),
        // Copied first, evaluated later: the shape of the value keeps these harmless.
        ("f() { echo $(( $1 )); }; f {{vars.v}}", Evaluates),
        ("set -- {{vars.v}}; echo $(( $1 ))", Evaluates),
        ("for y in {{vars.v}}; do echo $(( y )); done", Evaluates),
        ("read -r y <<< {{vars.v}}; echo $(( y ))", Evaluates),
        ("printf -v y %s {{vars.v}}; echo $(( y ))", Evaluates),
        ("a=({{vars.v}}); echo $((a[0]))", Evaluates),
        ("y=$(echo {{vars.v}}); echo $((y))", Evaluates),
        ("y={{vars.v}}; echo \"${!y}\"", Evaluates),
        ("y={{vars.v}}; declare -n r=$y; echo \"${r-}\"", Evaluates),
        ("y={{vars.v}}; echo \"${y@P}\"", Evaluates),
        ("y={{vars.v}}; declare \"$y\"; echo ok", Evaluates),
        ("y={{vars.v}}; printf -v \"$y\" %s x; echo ok", Evaluates),
        // Shells fed in other forms.
        ("source <(echo {{vars.v}})", Code),
        (". /dev/stdin <<< {{vars.v}}", Code),
        ("bash <(echo {{vars.v}})", Code),
        (
            "coproc bash\necho {{vars.v}} >&\"${COPROC[1]}\"\nexec {COPROC[1]}>&-; wait",
            Code,
        ),
        ("echo {{vars.v}} > >(bash); wait", Code),
        ("echo {{vars.v}} | xargs -0 sh -c", Code),
        ("E=eval; $E {{vars.v}}", Code),
        ("E=eval; ${E} echo {{vars.v}}", Code),
        // Fifth attack pass: words that set what a later command runs, without a shell.
        ("shopt -s expand_aliases\nalias a=\"{{vars.v}}\"\na", Code),
        (
            "shopt -s expand_aliases\ny={{vars.v}}\nalias a=\"$y\"\na",
            Code,
        ),
        (
            "BASH_ALIASES[a]={{vars.v}}; shopt -s expand_aliases\na",
            Code,
        ),
        (
            "y={{vars.v}}; hash -p /bin/true zz; compgen -C \"$y\" x || true",
            Code,
        ),
        ("compgen -C \"{{vars.v}}\" x || true", Code),
        ("complete -C \"{{vars.v}}\" x; echo ok", Code),
        ("declare -f f || true; echo {{vars.v}}", Code),
        ("set -o history; history -s {{vars.v}}; fc -l || true", Code),
        (
            "GIT_SSH_COMMAND=\"{{vars.v}}\" git ls-remote ssh://example.invalid/x 2>/dev/null || true",
            Code,
        ),
        (
            "y={{vars.v}}; GIT_SSH_COMMAND=\"$y\" git ls-remote ssh://example.invalid/x 2>/dev/null || true",
            Code,
        ),
        ("y={{vars.v}}; export PAGER=\"$y\"; echo ok", Code),
        ("LD_PRELOAD={{vars.v}} true", Code),
        ("PATH={{vars.v}} true 2>/dev/null || true", Code),
        ("echo {{vars.v}} | xargs env", Code),
        ("echo {{vars.v}} | xargs -n 2 nice", Code),
        ("echo {{vars.v}} | at now 2>/dev/null || true", Code),
        ("echo {{vars.v}} | crontab - 2>/dev/null || true", Code),
        // Options through which a program runs a command line.
        (
            "tar -I \"{{vars.v}}\" -cf x.tar /dev/null 2>/dev/null || true",
            Code,
        ),
        (
            "y={{vars.v}}; tar \"--use-compress-program=$y\" -cf x.tar /dev/null 2>/dev/null || true",
            Code,
        ),
        (
            "git -c core.sshCommand=\"{{vars.v}}\" ls-remote ssh://example.invalid/x 2>/dev/null || true",
            Code,
        ),
        // Sixth attack pass: programs named by an expansion, also behind wrappers, and text
        // xargs turns into options.
        (
            "unshare \"$BASH\" -c \"{{vars.v}}\" 2>/dev/null || true",
            Code,
        ),
        ("env -u X \"$BASH\" -c \"{{vars.v}}\"", Code),
        ("nice -n 1 \"$0\" -c \"{{vars.v}}\"", Code),
        (
            "find . -maxdepth 0 -exec \"$BASH\" -c \"{{vars.v}}\" \\;",
            Code,
        ),
        ("echo {{vars.v}} | \"$BASH\"", Code),
        ("f() { \"$@\"; }; f printf '%s' {{vars.v}}", Code),
        ("watch -g -n1 {{vars.v}} 2>/dev/null || true", Code),
        (
            "echo \"x {{vars.v}}\" | xargs tar -cf /dev/null 2>/dev/null || true",
            Code,
        ),
    ]
}

fn line_angle(v: &str) -> String {
    format!("<{v}>\n")
}

struct Outcome {
    refused: Option<String>,
    stdout: String,
    pwned: bool,
    script: String,
}

/// Renders `template` with `vars.v = value` through planrun's shell renderer and runs the
/// result with real bash, as a `shell:` step does, in a fresh folder.
fn run(template: &str, value: &str) -> Outcome {
    let renderer = Renderer::new(Utc::now(), chrono_tz::Tz::UTC, BTreeMap::new());
    let context = serde_json::json!({ "vars": { "v": value }, "secrets": {} });
    let rendered = match renderer.render_shell(template, &context) {
        Ok(rendered) => rendered,
        Err(message) => {
            return Outcome {
                refused: Some(message),
                stdout: String::new(),
                pwned: false,
                script: String::new(),
            };
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new("timeout")
        .args(["10", "bash", "-euo", "pipefail", "-c", &rendered.script])
        .envs(rendered.env.iter().cloned())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Outcome {
        refused: None,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        pwned: dir.path().join("PWN").exists(),
        script: rendered.script,
    }
}

#[test]
fn matrix_of_contexts_and_hostile_values_never_runs_a_value() {
    let contexts = contexts();
    assert!(contexts.len() >= 60, "{} contexts", contexts.len());
    let mut failures = Vec::new();
    let mut runs = 0;
    for (template, kind) in &contexts {
        for value in HOSTILE.iter().chain(BENIGN.iter()) {
            let out = run(template, value);
            runs += 1;
            let show = || format!("{template:?} with {value:?}: script {:?}", out.script);
            if out.pwned {
                failures.push(format!("PWNED: {}", show()));
                continue;
            }
            let expected: Option<String> = match kind {
                Kind::Echo(f) => Some(f(value)),
                Kind::Runs => None,
                Kind::Arith(f) => value.parse::<i64>().ok().map(f),
                Kind::Name(f) => (*value == "foo_1").then(|| f(value)),
                Kind::Code | Kind::Evaluates => None,
            };
            let must_refuse = code_shape(value).is_some()
                || match kind {
                    Kind::Echo(_) | Kind::Runs | Kind::Evaluates => false,
                    Kind::Arith(_) | Kind::Name(_) => expected.is_none(),
                    Kind::Code => true,
                };
            let may_refuse = must_refuse || matches!(kind, Kind::Evaluates);
            match (&out.refused, may_refuse) {
                (Some(message), false) => {
                    failures.push(format!("refused a carryable value: {}: {message}", show()))
                }
                (None, _) if must_refuse => failures.push(format!("not refused: {}", show())),
                (Some(message), true) => {
                    if !message.starts_with("script line ") {
                        failures.push(format!("refusal has no position: {message}"));
                    }
                }
                (None, _) => {
                    if let Some(expected) = expected
                        && out.stdout != expected
                    {
                        failures.push(format!(
                            "value not intact: {}: got {:?}, expected {expected:?}",
                            show(),
                            out.stdout
                        ));
                    }
                }
            }
        }
    }
    assert!(runs >= 60 * 12);
    assert!(
        failures.is_empty(),
        "{} of {runs} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A random composition of bash constructs around one hole.
fn composition() -> impl Strategy<Value = String> {
    let leaf = Just("{{vars.v}}".to_owned());
    leaf.prop_recursive(4, 16, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|s| format!("\"{s}\"")),
            inner.clone().prop_map(|s| format!("'{s}'")),
            inner.clone().prop_map(|s| format!("$'{s}'")),
            inner.clone().prop_map(|s| format!("$(echo {s})")),
            inner.clone().prop_map(|s| format!("`echo {s}`")),
            inner.clone().prop_map(|s| format!("$(( {s} ))")),
            inner.clone().prop_map(|s| format!("(( {s} ))")),
            inner.clone().prop_map(|s| format!("$[ {s} ]")),
            inner.clone().prop_map(|s| format!("${{UNSET:-{s}}}")),
            inner.clone().prop_map(|s| format!("${{a[{s}]}}")),
            inner.clone().prop_map(|s| format!("${{s:{s}}}")),
            inner.clone().prop_map(|s| format!("( {s} )")),
            inner.clone().prop_map(|s| format!("{{ echo {s}; }}")),
            inner.clone().prop_map(|s| format!("[[ {s} ]]")),
            inner.clone().prop_map(|s| format!("[[ -v {s} ]]")),
            inner.clone().prop_map(|s| format!("[[ {s} -eq 1 ]]")),
            inner.clone().prop_map(|s| format!("x={s}")),
            inner.clone().prop_map(|s| format!("x={s}; echo $((x))")),
            inner.clone().prop_map(|s| format!("declare -i n={s}")),
            inner.clone().prop_map(|s| format!("let {s}")),
            inner.clone().prop_map(|s| format!("printf -v {s} x")),
            inner.clone().prop_map(|s| format!("read {s} <<< x")),
            inner.clone().prop_map(|s| format!("cat <<EOF\n{s}\nEOF\n")),
            inner
                .clone()
                .prop_map(|s| format!("cat <<'EOF'\n{s}\nEOF\n")),
            inner.clone().prop_map(|s| format!("cat <<< {s}")),
            inner.clone().prop_map(|s| format!("echo \\\n{s}")),
            inner.clone().prop_map(|s| format!("echo {s} | cat")),
            inner.clone().prop_map(|s| format!("eval {s}")),
            inner.clone().prop_map(|s| format!("bash -c {s}")),
            inner.clone().prop_map(|s| format!("f() {{ {s}; }}; f")),
            inner
                .clone()
                .prop_map(|s| format!("case x in {s}) ;; esac")),
            inner
                .clone()
                .prop_map(|s| format!("for i in {s}; do :; done")),
            inner.clone().prop_map(|s| format!("a=({s})")),
            inner.clone().prop_map(|s| format!("# {s}\n{s}")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("{a}; {b}")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_compositions_never_run_a_value(
        script in composition(),
        value in proptest::sample::select(HOSTILE.to_vec()),
    ) {
        let out = run(&format!("{script}\n"), value);
        prop_assert!(!out.pwned, "{script:?} with {value:?} ran the value: {:?}", out.script);
    }
}
