//! Monitoring that tells the truth: healthchecks pings (`monitor:`), `notify` summaries and
//! bodies, templates that see the run's outcome, notification failures that stay warnings,
//! and the Prometheus metrics file, all against the real binary and loopback receivers.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::Env;
use support::s3::{ACCESS_KEY, BUCKET, S3Server, SECRET_KEY};

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Request {
    method: String,
    path: String,
    content_type: String,
    body: String,
}

/// A loopback HTTP server that records every request and answers `status`, or never
/// answers at all (a hanging webhook).
struct Receiver {
    base: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    fn answering(status: u16) -> Receiver {
        Receiver::start(Some(status))
    }

    fn hanging() -> Receiver {
        Receiver::start(None)
    }

    fn start(status: Option<u16>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let Some(request) = read_request(&stream) else {
                    continue;
                };
                seen.lock().unwrap().push(request);
                match status {
                    Some(code) => {
                        let mut stream = stream;
                        let answer = format!(
                            "HTTP/1.1 {code} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                        );
                        stream.write_all(answer.as_bytes()).ok();
                    }
                    // Holds the connection open and says nothing.
                    None => held.push(stream),
                }
            }
        });
        Receiver { base, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    fn paths(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut length = 0;
    let mut content_type = String::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "content-type" => content_type = value.trim().to_owned(),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        content_type,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A URL on a port nothing listens on.
fn unreachable_url(path: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}{path}")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A plan backing up a small folder to `local`, copying it to `offsite` on the test S3
/// server, then `extra` (more steps, `on_failure`, `always`, `monitor`…).
fn backup_plan(env: &Env, server: &S3Server, extra: &str) -> String {
    let media = env.path("media");
    std::fs::create_dir_all(&media).unwrap();
    std::fs::write(media.join("a.txt"), "hello").unwrap();
    format!(
        "version: 1
name: crm
secrets:
  hc: {{ env: TEST_HC_URL }}
  token: {{ env: TEST_TOKEN }}
sources:
  media: {{ directory: {{ path: DIR/media }} }}
storage:
  local: {{ local: {{ path: DIR/backups }} }}
  offsite:
    s3: {{ bucket: {BUCKET}, prefix: crm/, endpoint: \"{}\", path_style: true, allow_http: true }}
recovery:
  objectives: {{ rpo: 24h }}
  levels: {{}}
steps:
  - {{ id: media, backup: media }}
  - {{ id: offsite, copy: {{ to: offsite }}, needs: [media] }}
{extra}",
        server.endpoint()
    )
}

fn run(env: &Env, hc: &str, args: &[&str]) -> Ran {
    env.planrun(["execute"])
        .arg(env.path("plan.yaml"))
        .args(args)
        .env("TEST_HC_URL", hc)
        .env("TEST_TOKEN", "t0ken-s3cr3t")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .finish()
}

/// How a run ended, whatever its exit code: each test checks the code itself.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

trait Finish {
    fn finish(self) -> Ran;
}

impl Finish for support::Test {
    fn finish(self) -> Ran {
        let output = self.output();
        Ran {
            code: output.status.code(),
            stdout: support::run::stdout(&output),
            stderr: support::run::stderr(&output),
        }
    }
}

#[test]
fn a_good_night_pings_start_then_success_and_notify_posts_the_summary() {
    let server = S3Server::start();
    let hc = Receiver::answering(200);
    let hook = Receiver::answering(200);
    let env = Env::new();
    env.plan(&backup_plan(
        &env,
        &server,
        &format!(
            "monitor: {{ healthchecks: \"{{{{secrets.hc}}}}\" }}
always:
  - id: tell
    notify: {{ webhook: \"{}\", message: \"{{{{run.status}}}} after {{{{run.duration}}}}\" }}
",
            hook.url("/hooks/chat")
        ),
    ));
    let ran = run(&env, &hc.url("/ping/0c1e-uuid"), &[]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);

    assert_eq!(
        hc.paths(),
        ["POST /ping/0c1e-uuid/start", "POST /ping/0c1e-uuid"]
    );
    let record = env.record();
    let run_id = record["run_id"].as_str().unwrap();
    let posted = hook.requests();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].path, "/hooks/chat");
    assert_eq!(posted[0].content_type, "application/json");
    let summary = json(&posted[0].body);
    assert_eq!(summary["plan"], "crm");
    assert_eq!(summary["run_id"], run_id);
    assert_eq!(summary["status"], "succeeded");
    assert!(
        summary["message"]
            .as_str()
            .unwrap()
            .starts_with("succeeded after "),
        "{summary}"
    );
    assert!(summary["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert_eq!(summary["failed_steps"], serde_json::json!([]));
    let steps: Vec<(&str, &str)> = summary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(steps, [("media", "succeeded"), ("offsite", "succeeded")]);
    assert!(summary["steps"][0]["duration_seconds"].as_f64().is_some());
    assert_eq!(summary["set"]["id"], run_id);
    assert_eq!(summary["set"]["storage"], "local");
    assert_eq!(summary["set"]["sources"], serde_json::json!(["media"]));
    assert!(summary["set"]["bytes"].as_u64().unwrap() > 0);
    assert_eq!(summary["offsite"]["storage"], "offsite");
    assert_eq!(summary["offsite"]["set"], run_id);
    assert!(summary["offsite"]["age_seconds"].as_u64().unwrap() < 120);
    assert!(record.get("warnings").is_none(), "{record}");
}

#[test]
fn a_failed_night_pings_fail_with_the_masked_log_tail_and_templates_see_the_outcome() {
    let server = S3Server::start();
    let hc = Receiver::answering(200);
    let chat = Receiver::answering(200);
    let env = Env::new();
    env.plan(&backup_plan(
        &env,
        &server,
        &format!(
            "  - id: smoke
    shell: |
      for i in $(seq 1 3000); do echo \"line $i token={{{{secrets.token}}}}\"; done
      exit 7
    needs: [offsite]
monitor: {{ healthchecks: \"{{{{secrets.hc}}}}\" }}
on_failure:
  - id: chat
    notify:
      webhook: \"{}\"
      format: slack
      message: \"failed: {{{{run.failed_steps}}}}\"
always:
  - id: trail
    shell: echo \"{{{{run.status}}}}|{{{{run.failed_steps}}}}|{{{{run.set.id}}}}|{{{{run.set.sources}}}}|{{{{run.offsite_set}}}}|{{{{run.data_loss_window}}}}\" >> TRAIL
",
            chat.url("/slack/T000/B000/XXXX")
        ),
    ));
    let ran = run(&env, &hc.url("/ping/0c1e-uuid"), &[]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    let run_id = env.record()["run_id"].as_str().unwrap().to_owned();

    let pings = hc.requests();
    assert_eq!(
        hc.paths(),
        ["POST /ping/0c1e-uuid/start", "POST /ping/0c1e-uuid/fail"]
    );
    let tail = &pings[1].body;
    assert!(tail.len() <= 10 * 1024, "{}", tail.len());
    assert!(tail.len() > 8 * 1024, "{}", tail.len());
    assert!(
        tail.contains("smoke stdout: line 3000 token=***\n"),
        "{tail}"
    );
    assert!(tail.contains("run failed"), "{tail}");
    assert!(!tail.contains("t0ken-s3cr3t"));
    assert!(
        tail.starts_with("20"),
        "a tail starts at a line: {:.60}",
        tail
    );

    let posted = chat.requests();
    assert_eq!(posted.len(), 1);
    let text = json(&posted[0].body)["text"].as_str().unwrap().to_owned();
    assert_eq!(
        text.split_once(" on ").map(|(head, _)| head),
        Some(format!("planrun `crm` run {run_id}").as_str())
    );
    assert!(
        text.contains(": failed in ") && text.contains("; failed: smoke; set "),
        "{text}"
    );
    assert!(text.ends_with(" old: failed: smoke"), "{text}");

    let trail = env.trail();
    let fields: Vec<&str> = trail.trim_end().split('|').collect();
    assert_eq!(
        fields[..5],
        ["failed", "smoke", run_id.as_str(), "media", run_id.as_str()]
    );
    assert!(fields[5].ends_with('s'), "{trail}");
}

#[test]
fn unreachable_and_hanging_receivers_are_warnings_that_name_only_the_host() {
    let hanging = Receiver::hanging();
    let env = Env::new();
    let dead_hook = unreachable_url("/hooks/secret-path?token=abc");
    env.plan(&format!(
        "version: 1
name: quiet
secrets:
  hc: {{ env: TEST_HC_URL }}
monitor: {{ healthchecks: \"{{{{secrets.hc}}}}\" }}
steps:
  - {{ id: work, shell: echo working }}
always:
  - {{ id: dead, notify: {{ webhook: \"{dead_hook}\" }} }}
  - {{ id: slow, timeout: 1s, notify: {{ webhook: \"{}\" }} }}
",
        hanging.url("/hooks/slow-token")
    ));
    let dead_hc = unreachable_url("/ping/hc-token");
    let started = Instant::now();
    let ran = env
        .planrun(["execute"])
        .arg(env.path("plan.yaml"))
        .env("TEST_HC_URL", &dead_hc)
        .finish();
    let elapsed = started.elapsed();
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");

    let dead_host = dead_hook
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let hc_host = dead_hc
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let record = env.record();
    assert_eq!(record["status"], "succeeded");
    let warnings: Vec<&str> = record["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(
        warnings,
        [
            format!("monitor: the healthchecks start ping failed: cannot connect to {hc_host}"),
            format!("step `dead` failed: notify: cannot connect to {dead_host}"),
            "step `slow` timed_out: timed out after 1s".to_owned(),
            format!("monitor: the healthchecks success ping failed: cannot connect to {hc_host}"),
        ]
    );
    assert_eq!(hanging.requests().len(), 1, "the hanging hook got the POST");
    for text in [&ran.stderr, &env.state_files()] {
        for secret in ["secret-path", "token=abc", "hc-token", "slow-token"] {
            assert!(!text.contains(secret), "{secret} in:\n{text}");
        }
    }
    assert!(
        ran.stderr.contains(&format!(
            "planrun: warning: monitor: the healthchecks start ping failed: cannot connect to {hc_host}\n"
        )),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_body_template_is_sent_as_it_is() {
    let hook = Receiver::answering(200);
    let env = Env::new();
    env.plan(&format!(
        "version: 1
name: quiet
steps:
  - {{ id: work, shell: exit 3, on_failure: warn }}
always:
  - notify:
      webhook: \"{}\"
      body: '{{\"state\": \"{{{{run.status}}}}\", \"failed\": \"{{{{run.failed_steps}}}}\"}}'
  - notify:
      webhook: \"{}\"
      body: \"plain {{{{run.status}}}}\"
",
        hook.url("/a"),
        hook.url("/b")
    ));
    let ran = env.planrun(["execute"]).arg(env.path("plan.yaml")).finish();
    assert_eq!(ran.code, Some(3), "{}", ran.stderr);
    let posted = hook.requests();
    assert_eq!(posted[0].content_type, "application/json");
    assert_eq!(
        json(&posted[0].body),
        serde_json::json!({"state": "partial", "failed": "work"})
    );
    assert_eq!(posted[1].content_type, "text/plain; charset=utf-8");
    assert_eq!(posted[1].body, "plain partial");
}

#[test]
fn the_outcome_is_refused_where_it_is_not_known_yet() {
    let env = Env::new();
    env.plan(
        "version: 1
name: early
steps:
  - { id: tell, notify: { message: \"{{run.status}}\" } }
always:
  - { id: later, notify: { message: \"{{run.set.bytes}} {{run.set.size}}\" } }
",
    );
    let ran = env.planrun(["validate", "plan.yaml"]).finish();
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert_eq!(
        ran.stdout,
        r#"plan.yaml:4:36: error: steps[0].notify.message: `run.status` is known only once the run has ended
  |
4 |   - { id: tell, notify: { message: "{{run.status}}" } }
  |                                    ^
  = help: use it in `on_failure` or `always`, which run after the steps and see the run's outcome
plan.yaml:6:37: error: always[0].notify.message: unknown variable `run.set.size`
  |
6 |   - { id: later, notify: { message: "{{run.set.bytes}} {{run.set.size}}" } }
  |                                     ^
  = help: `run.set` has `run.set.id`, `run.set.bytes` and `run.set.sources`
plan.yaml: invalid (2 errors)
"#
    );
}

/// Every sample of a metrics file, parsed by a Prometheus text-format parser.
fn scrape(path: &std::path::Path) -> prometheus_parse::Scrape {
    let text = std::fs::read_to_string(path).unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

fn value(sample: &prometheus_parse::Sample) -> f64 {
    match sample.value {
        prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
        ref other => panic!("{other:?}"),
    }
}

/// The value of the one sample of `metric` whose labels include `labels`.
fn get(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(value)
        .collect();
    assert_eq!(found.len(), 1, "{metric} {labels:?}: {found:?}");
    found[0]
}

#[test]
fn metrics_are_timestamps_with_the_plan_label_written_atomically() {
    let server = S3Server::start();
    let env = Env::new();
    let metrics = env.path("textfile");
    std::fs::create_dir(&metrics).unwrap();
    env.plan(&backup_plan(
        &env,
        &server,
        "  - { id: gate, shell: 'test ! -e DIR/break', needs: [offsite] }\n",
    ));
    let before = chrono::Utc::now().timestamp() as f64;
    let metrics_dir = metrics.display().to_string();
    let ran = run(&env, "unused", &["--metrics-dir", &metrics_dir]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    std::fs::write(env.path("break"), "").unwrap();
    let ran = run(&env, "unused", &["--metrics-dir", &metrics_dir]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    let after = chrono::Utc::now().timestamp() as f64 + 1.0;

    // One file per plan, and no temp file beside it.
    assert_eq!(support::names(&metrics), ["planrun-crm.prom"]);
    let scrape = scrape(&metrics.join("planrun-crm.prom"));
    let families: BTreeSet<&str> = scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    assert_eq!(
        families,
        BTreeSet::from([
            "planrun_last_run_timestamp_seconds",
            "planrun_last_success_timestamp_seconds",
            "planrun_run_duration_seconds",
            "planrun_run_status",
            "planrun_step_duration_seconds",
            "planrun_backup_set_bytes",
            "planrun_backup_sets",
            "planrun_newest_set_timestamp_seconds",
            "planrun_rpo_seconds",
        ])
    );
    assert!(
        scrape
            .samples
            .iter()
            .all(|s| s.labels.get("plan") == Some("crm")),
        "every series has the plan label"
    );
    for family in scrape.docs.keys() {
        assert!(family.starts_with("planrun_"), "{family}");
    }

    let records = env.records();
    let finished = |r: &Value| {
        chrono::DateTime::parse_from_rfc3339(r["finished_at"].as_str().unwrap())
            .unwrap()
            .timestamp_millis() as f64
            / 1000.0
    };
    let (failed, succeeded) = (&records[0], &records[1]);
    assert_eq!(
        get(&scrape, "planrun_last_run_timestamp_seconds", &[]),
        finished(failed)
    );
    // The failed night does not move the last success.
    assert_eq!(
        get(&scrape, "planrun_last_success_timestamp_seconds", &[]),
        finished(succeeded)
    );
    for (status, expected) in [
        ("succeeded", 0.0),
        ("failed", 1.0),
        ("partial", 0.0),
        ("interrupted", 0.0),
    ] {
        assert_eq!(
            get(&scrape, "planrun_run_status", &[("status", status)]),
            expected
        );
    }
    assert!(
        get(
            &scrape,
            "planrun_step_duration_seconds",
            &[("step", "gate")]
        ) < 60.0
    );
    assert_eq!(get(&scrape, "planrun_rpo_seconds", &[]), 86_400.0);
    for storage in ["local", "offsite"] {
        let sets = |status| {
            get(
                &scrape,
                "planrun_backup_sets",
                &[("storage", storage), ("status", status)],
            )
        };
        assert_eq!(sets("complete") + sets("verified"), 2.0, "{storage}");
        assert_eq!(sets("incomplete"), 0.0, "{storage}");
        assert_eq!(
            get(
                &scrape,
                "planrun_backup_sets",
                &[("storage", storage), ("status", "damaged")]
            ),
            0.0
        );
        let newest = get(
            &scrape,
            "planrun_newest_set_timestamp_seconds",
            &[("storage", storage)],
        );
        assert!(newest >= before - 1.0 && newest <= after, "{newest}");
        assert!(get(&scrape, "planrun_backup_set_bytes", &[("storage", storage)]) > 0.0);
    }
}

#[test]
fn the_plan_names_the_metrics_folder_itself() {
    let env = Env::new();
    let metrics = env.path("textfile");
    std::fs::create_dir(&metrics).unwrap();
    env.plan(
        "version: 1
name: small
metrics: { textfile_dir: \"{{plan.dir}}/textfile\" }
steps:
  - { id: work, shell: echo working }
",
    );
    let ran = env.planrun(["execute"]).arg(env.path("plan.yaml")).finish();
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let scrape = scrape(&metrics.join("planrun-small.prom"));
    assert_eq!(
        get(&scrape, "planrun_run_status", &[("status", "succeeded")]),
        1.0
    );
    assert!(
        get(
            &scrape,
            "planrun_step_duration_seconds",
            &[("step", "work")]
        ) >= 0.0
    );
    assert_eq!(support::names(&metrics), ["planrun-small.prom"]);
}

#[test]
fn an_interrupted_night_pings_fail_and_always_sees_it() {
    let hc = Receiver::answering(200);
    let env = Env::new();
    env.plan(
        "version: 1
name: stopped
secrets:
  hc: { env: TEST_HC_URL }
monitor: { healthchecks: \"{{secrets.hc}}\" }
steps:
  - { id: long, shell: 'echo started > DIR/running; sleep 30' }
always:
  - { id: trail, shell: 'echo \"{{run.status}}|{{run.failed_steps}}\" >> TRAIL' }
",
    );
    let mut child = env
        .planrun(["execute"])
        .arg(env.path("plan.yaml"))
        .env("TEST_HC_URL", hc.url("/ping/0c1e-uuid"))
        .spawn();
    env.wait_for("running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    assert_eq!(
        hc.paths(),
        ["POST /ping/0c1e-uuid/start", "POST /ping/0c1e-uuid/fail"]
    );
    assert!(hc.requests()[1].body.contains("run interrupted"));
    assert_eq!(env.trail(), "interrupted|long\n");
}

/// A plan backing up a small folder, with a drill that restores it and runs `check`, the
/// healthchecks URL from `TEST_HC_URL` and the metrics folder `textfile`.
fn drill_plan(env: &Env, check: &str) {
    let media = env.path("media");
    std::fs::create_dir_all(&media).unwrap();
    std::fs::write(media.join("a.txt"), "hello").unwrap();
    env.plan(&format!(
        "version: 1
name: site
secrets:
  hc: {{ env: TEST_HC_URL }}
monitor: {{ healthchecks: \"{{{{secrets.hc}}}}\" }}
metrics: {{ textfile_dir: \"{{{{plan.dir}}}}/textfile\" }}
sources:
  media: {{ directory: {{ path: DIR/media }} }}
storage:
  local: {{ local: {{ path: DIR/backups }} }}
steps:
  - {{ id: media, backup: media }}
recovery:
  objectives: {{ rpo: 24h }}
  levels: {{}}
drill:
  restore:
    media: {{ path: restored/media }}
  checks:
    - {{ files: media, expect: matches_backup }}
{check}"
    ));
}

fn planrun_with_hc(env: &Env, hc: &str, command: &str) -> Ran {
    env.planrun([command])
        .arg(env.path("plan.yaml"))
        .env("TEST_HC_URL", hc)
        .finish()
}

#[test]
fn a_drill_pings_healthchecks_and_records_its_success_beside_the_nights_metrics() {
    let hc = Receiver::answering(200);
    let env = Env::new();
    std::fs::create_dir(env.path("textfile")).unwrap();
    drill_plan(&env, "");
    let ping = hc.url("/ping/d1e-uuid");
    let ran = planrun_with_hc(&env, &ping, "execute");
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let prom = env.path("textfile/planrun-site.prom");
    let night = scrape(&prom);
    let last_success = get(&night, "planrun_last_success_timestamp_seconds", &[]);

    let before = chrono::Utc::now().timestamp() as f64 - 1.0;
    let ran = planrun_with_hc(&env, &ping, "drill");
    assert_eq!(ran.code, Some(0), "{}{}", ran.stdout, ran.stderr);
    assert!(!ran.stderr.contains("warning"), "{}", ran.stderr);
    assert_eq!(
        hc.paths(),
        [
            "POST /ping/d1e-uuid/start",
            "POST /ping/d1e-uuid",
            "POST /ping/d1e-uuid/start",
            "POST /ping/d1e-uuid",
        ]
    );
    // The drill's success joins the series the night wrote, which stay as they were.
    let after = scrape(&prom);
    let drilled = get(&after, "planrun_last_drill_success_timestamp_seconds", &[]);
    assert!(
        drilled >= before && drilled <= chrono::Utc::now().timestamp() as f64 + 1.0,
        "{drilled}"
    );
    assert_eq!(
        get(&after, "planrun_last_success_timestamp_seconds", &[]),
        last_success
    );
    let families = |s: &prometheus_parse::Scrape| -> BTreeSet<String> {
        s.samples.iter().map(|s| s.metric.clone()).collect()
    };
    let mut expected = families(&night);
    expected.insert("planrun_last_drill_success_timestamp_seconds".into());
    assert_eq!(families(&after), expected);
    assert_eq!(support::names(&env.path("textfile")), ["planrun-site.prom"]);
}

#[test]
fn a_failing_drill_pings_fail_with_its_summary_and_leaves_the_drill_metric_alone() {
    let hc = Receiver::answering(200);
    let env = Env::new();
    std::fs::create_dir(env.path("textfile")).unwrap();
    drill_plan(
        &env,
        "    - { name: app check, run: [sh, -c, 'echo \"no such table\" >&2; exit 1'] }\n",
    );
    let ping = hc.url("/ping/d1e-uuid");
    let ran = planrun_with_hc(&env, &ping, "execute");
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let ran = planrun_with_hc(&env, &ping, "drill");
    assert_eq!(ran.code, Some(1), "{}{}", ran.stdout, ran.stderr);
    assert_eq!(
        hc.paths()[2..],
        ["POST /ping/d1e-uuid/start", "POST /ping/d1e-uuid/fail"]
    );
    let body = &hc.requests()[3].body;
    assert!(body.starts_with("drill "), "{body}");
    assert!(body.contains(" of plan site"), "{body}");
    assert!(body.contains("app check"), "{body}");
    let scrape = scrape(&env.path("textfile/planrun-site.prom"));
    assert!(
        !scrape
            .samples
            .iter()
            .any(|s| s.metric == "planrun_last_drill_success_timestamp_seconds"),
        "a failed drill is no success"
    );
}

#[test]
fn a_drill_whose_ping_fails_warns_and_keeps_its_exit_code() {
    let env = Env::new();
    std::fs::create_dir(env.path("textfile")).unwrap();
    drill_plan(&env, "");
    let down = unreachable_url("/ping/d1e-uuid");
    let ran = planrun_with_hc(&env, &down, "execute");
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let ran = planrun_with_hc(&env, &down, "drill");
    assert_eq!(ran.code, Some(0), "{}{}", ran.stdout, ran.stderr);
    assert!(ran.stderr.contains("warning: "), "{}", ran.stderr);
    assert!(!ran.stderr.contains("d1e-uuid"), "{}", ran.stderr);
    let scrape = scrape(&env.path("textfile/planrun-site.prom"));
    assert!(get(&scrape, "planrun_last_drill_success_timestamp_seconds", &[]) > 0.0);
}

#[test]
fn a_drill_over_its_rto_pings_fail_yet_counts_as_a_passing_drill_like_status() {
    let hc = Receiver::answering(200);
    let env = Env::new();
    std::fs::create_dir(env.path("textfile")).unwrap();
    drill_plan(&env, "");
    let plan = env.path("plan.yaml");
    let text = std::fs::read_to_string(&plan)
        .unwrap()
        .replace("{ rpo: 24h }", "{ rpo: 24h, rto: 1ms }");
    std::fs::write(&plan, text).unwrap();
    let ping = hc.url("/ping/d1e-uuid");
    let ran = planrun_with_hc(&env, &ping, "execute");
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let ran = planrun_with_hc(&env, &ping, "drill");
    assert_eq!(ran.code, Some(3), "{}{}", ran.stdout, ran.stderr);
    assert_eq!(
        hc.paths()[2..],
        ["POST /ping/d1e-uuid/start", "POST /ping/d1e-uuid/fail"]
    );
    let body = &hc.requests()[3].body;
    assert!(body.contains("result: over objective"), "{body}");
    // Its checks passed: the data restores, as `planrun status` counts it.
    let scrape = scrape(&env.path("textfile/planrun-site.prom"));
    assert!(get(&scrape, "planrun_last_drill_success_timestamp_seconds", &[]) > 0.0);
}
