//! Backups that must never be lost or wrong, and runs that must end, through the real binary:
//! symlinks as data, files that change while they are read, fifos, interrupted runs with
//! `on_failure: ignore`, endless S3 listings and processes a step leaves behind.

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use support::Env;
use support::run::stderr;

/// Every `manifest.json` below `root`.
fn manifests(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                stack.push(path);
            } else if path.file_name().unwrap() == "manifest.json" {
                out.push(path);
            }
        }
    }
    out
}

/// Waits for `child` at most `limit`, killing it if it takes longer (so a test of something
/// that used to hang fails instead of hanging).
fn wait_at_most(mut child: Child, limit: Duration) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().ok();
            let output = child.wait_with_output().unwrap();
            panic!(
                "planrun did not end within {limit:?}\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A directory source holding an absolute link, a link climbing out of the folder and a
/// link to itself backs up, verifies and restores with every link exactly as recorded.
/// Such a set used to verify but never restore, and prune then removed the older ones.
#[test]
fn links_that_lead_anywhere_restore_exactly_as_recorded() {
    let env = Env::new();
    let data = env.path("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("sub/a.txt"), "hello\n").unwrap();
    let links = [
        ("absolute", "/etc/hostname"),
        ("sub/escaping", "../../outside"),
        ("self", "self"),
        ("sub/up", ".."),
    ];
    for (link, target) in links {
        std::os::unix::fs::symlink(target, data.join(link)).unwrap();
    }
    env.plan(
        "version: 1\nname: app\nsources:\n  data: { directory: { path: DIR/data } }\n\
         storage:\n  local: { local: { path: DIR/store } }\nsteps:\n  - { id: b, backup: data }\n",
    );
    let backup = env.execute(&[]);
    assert_eq!(backup.status.code(), Some(0), "{}", stderr(&backup));
    let verify = env.planrun(["verify"]).arg(env.path("plan.yaml")).output();
    assert_eq!(verify.status.code(), Some(0), "{}", stderr(&verify));
    let out = env.path("restored/data");
    let restore = env
        .restore(&env.path("plan.yaml"), &["--source", "data", "--to"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(restore.status.code(), Some(0), "{}", stderr(&restore));
    for (link, target) in links {
        assert_eq!(
            std::fs::read_link(out.join(link)).unwrap(),
            Path::new(target),
            "{link}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(out.join("sub/a.txt")).unwrap(),
        "hello\n"
    );
    assert!(!env.path("outside").exists(), "nothing is made outside");
    // The restored tree is the backed-up one: restoring it again over itself works too.
    let again = env
        .restore(
            &env.path("plan.yaml"),
            &["--source", "data", "--force", "--to"],
        )
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(
        std::fs::read_link(out.join("sub/escaping")).unwrap(),
        Path::new("../../outside")
    );
}

/// A 16 GiB (sparse) file truncated to 1 MiB while the backup reads it: the source fails,
/// naming the file, and no set is committed. It used to be stored as 16 GiB, padded with
/// zeros, and called good.
#[test]
fn a_file_that_shrinks_while_it_is_read_fails_its_source() {
    let env = Env::new();
    sparse_media(&env, 16 << 30);
    // The second step waits until planrun (its parent) has the file open, then cuts it:
    // reading 16 GiB takes seconds, so the cut always lands mid-read.
    env.plan(
        "version: 1\nname: app\nsources:\n  media: { directory: { path: DIR/media } }\n\
         storage:\n  local: { local: { path: DIR/store } }\nsteps:\n  - { id: media, backup: media }\n  \
         - id: shrink\n    shell: until ls -l /proc/$PPID/fd 2>/dev/null | grep big.img >/dev/null; do sleep 0.01; done; truncate -s 1M DIR/media/big.img\n",
    );
    let output = env.execute(&["--concurrency", "2"]);
    let big = env.path("media/big.img");
    let err = assert_backup_failed(
        &env,
        &output,
        &format!(
            "cannot read {}: it shrank while it was read: it had 17179869184 bytes when the \
             backup opened it, and only ",
            big.display()
        ),
    );
    assert!(
        err.contains("nothing of it is stored padded with zeros"),
        "{err}"
    );
}

/// `media/big.img`, a sparse file of `size` bytes: seconds to read, no room on disk.
fn sparse_media(env: &Env, size: u64) {
    std::fs::create_dir_all(env.path("media")).unwrap();
    std::fs::File::create(env.path("media/big.img"))
        .unwrap()
        .set_len(size)
        .unwrap();
}

/// Checks that the run exited 1, said `message`, and committed no set; returns its stderr.
fn assert_backup_failed(env: &Env, output: &Output, message: &str) -> String {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains(message), "{err}");
    assert!(
        manifests(&env.path("store")).is_empty(),
        "no set is committed"
    );
    err
}

/// A file whose size says 0 but which reads as more (as files in /proc do) grew past what
/// the header promised: it is stored as the bytes it had when it was opened (never cut into
/// a lie about its size), and the run says so and exits 3, as GNU tar and borg warn.
#[test]
fn a_file_that_reads_longer_than_its_size_is_stored_as_opened_with_a_warning() {
    let env = Env::new();
    env.plan(
        "version: 1\nname: app\nsources:\n  kernel: { files: [/proc/version] }\n\
         storage:\n  local: { local: { path: DIR/store } }\nsteps:\n  - { id: b, backup: kernel }\n",
    );
    let output = env.execute(&[]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{err}");
    assert!(
        err.contains(
            "/proc/version grew while it was read: stored as the 0 bytes it had when the \
             backup opened it"
        ),
        "{err}"
    );
    assert_eq!(
        manifests(&env.path("store")).len(),
        1,
        "the set is committed"
    );
}

/// A `files` source listing a fifo fails at once, naming it, instead of waiting for a writer
/// forever.
#[test]
fn a_listed_fifo_is_refused_at_once() {
    let env = Env::new();
    std::fs::create_dir_all(env.path("conf")).unwrap();
    std::fs::write(env.path("conf/app.ini"), "a=1\n").unwrap();
    nix::unistd::mkfifo(
        &env.path("conf/pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    env.plan(
        "version: 1\nname: app\nsources:\n  conf: { files: [DIR/conf/app.ini, DIR/conf/pipe] }\n\
         storage:\n  local: { local: { path: DIR/store } }\nsteps:\n  - { id: b, backup: conf }\n",
    );
    let started = Instant::now();
    let output = wait_at_most(env.spawn(&[]), Duration::from_secs(30));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        err.contains(&format!(
            "cannot read {}: it is a fifo; a files source backs up regular files only",
            env.path("conf/pipe").display()
        )),
        "{err}"
    );
}

/// SIGTERM while the second of two `on_failure: ignore` backups runs: the run exits 143 and
/// commits nothing, not even the first source's finished artifact.
#[test]
fn an_interrupted_run_never_commits_even_with_ignored_failures() {
    let env = Env::new();
    std::fs::create_dir_all(env.path("conf")).unwrap();
    std::fs::write(env.path("conf/app.ini"), "a=1\n").unwrap();
    sparse_media(&env, 256 << 30);
    env.plan(
        "version: 1\nname: app\nsources:\n  conf: { directory: { path: DIR/conf } }\n  \
         media: { directory: { path: DIR/media } }\n\
         storage:\n  local: { local: { path: DIR/store } }\nsteps:\n  \
         - { id: conf, backup: conf, on_failure: ignore }\n  \
         - { id: media, backup: media, needs: [conf], on_failure: ignore }\n",
    );
    let child = env.spawn(&[]);
    let pid = child.id();
    // Once the media artifact is being written, conf's is finished.
    let started = Instant::now();
    'wait: loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "media never started"
        );
        if let Ok(sets) = std::fs::read_dir(env.path("store/app")) {
            for set in sets.flatten() {
                if let Ok(files) = std::fs::read_dir(set.path())
                    && files
                        .flatten()
                        .any(|f| f.file_name().to_string_lossy().contains("media"))
                {
                    break 'wait;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let output = wait_at_most(child, Duration::from_secs(60));
    assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));
    assert_eq!(manifests(&env.path("store")), Vec::<PathBuf>::new());
    let left: Vec<_> = std::fs::read_dir(env.path("store/app"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "the uncommitted set is removed: {left:?}");
}

/// A loopback HTTP server that answers every ListObjectsV2 with a page holding `contents`
/// (XML `<Contents>` elements), "truncated", and a new continuation token each time, and
/// anything else with 404. Returns its endpoint.
fn listing_server(contents: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut pages = 0;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request);
            let (status, body) = if text.lines().next().unwrap_or("").contains("list-type=2") {
                pages += 1;
                let page = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>b</Name>\
                     <Prefix>p/app/</Prefix><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>\
                     {contents}<NextContinuationToken>t{pages}</NextContinuationToken></ListBucketResult>"
                );
                ("200 OK", page)
            } else {
                (
                    "404 Not Found",
                    "<Error><Code>NoSuchKey</Code></Error>".to_owned(),
                )
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    endpoint
}

/// `planrun snapshots` of an S3 storage at `endpoint`: checks that it failed (exit 1) within
/// 30 s, and returns the service's host and the stderr.
fn snapshots_of(endpoint: &str) -> (String, String) {
    let env = Env::new();
    env.plan(&format!(
        "version: 1\nname: app\nstorage:\n  offsite:\n    s3: {{ bucket: b, prefix: p/, endpoint: \"{endpoint}\", \
         path_style: true, allow_http: true, stall_timeout: 5s }}\nsteps:\n  - {{ id: x, shell: \"true\" }}\n"
    ));
    let started = Instant::now();
    let child = env
        .planrun(["snapshots"])
        .arg(env.path("plan.yaml"))
        .args(["--storage", "offsite"])
        .env("AWS_ACCESS_KEY_ID", "key")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .spawn();
    let output = wait_at_most(child, Duration::from_secs(60));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "{err}");
    (endpoint.trim_start_matches("http://").to_owned(), err)
}

/// A service that answers every listing page with "truncated" and a new token, and no keys:
/// the listing fails after a bounded number of pages, naming the host.
#[test]
fn an_s3_listing_that_never_ends_fails_naming_the_host() {
    let (host, err) = snapshots_of(&listing_server(""));
    // The bound is checked as pages arrive, so a few more than 100 may have come.
    let (_, rest) = err
        .split_once(&format!("listing: the service at {host} sent "))
        .unwrap_or_else(|| panic!("{err}"));
    let (pages, rest) = rest.split_once(' ').unwrap();
    assert!(pages.parse::<u64>().unwrap() > 100, "{err}");
    assert!(
        rest.starts_with(
            "listing pages holding 0 keys and still says there are more; a listing that does \
             not end is refused"
        ),
        "{err}"
    );
}

/// The same with the same key on every page: refused as soon as a key comes twice.
#[test]
fn an_s3_listing_that_repeats_itself_fails_at_once() {
    let (host, err) = snapshots_of(&listing_server(
        "<Contents><Key>p/app/20250214T020000Z-3f9a/manifest.json</Key>\
         <LastModified>2025-02-14T02:01:00.000Z</LastModified><ETag>\"00\"</ETag><Size>10</Size>\
         <StorageClass>STANDARD</StorageClass></Contents>",
    ));
    assert!(
        err.contains(&format!(
            "listing: the service at {host} repeats itself: the listing gave \
             `app/20250214T020000Z-3f9a/manifest.json` twice"
        )),
        "{err}"
    );
}

fn alive(pid: &str) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A step that leaves `setsid sleep 300 &` (its own session) and `sleep 301 &` (in its
/// group, holding no pipe) behind: both are killed and reaped when the step ends, and a
/// warning names each. The step waits a moment so that both have become `sleep` by then.
#[test]
fn processes_a_step_leaves_behind_are_killed_and_named() {
    let env = Env::new();
    env.plan(
        "version: 1\nname: app\nsteps:\n  - id: daemon\n    shell: setsid sleep 300 >/dev/null 2>&1 & echo $! > DIR/setsid.pid; \
         sleep 301 >/dev/null 2>&1 & echo $! > DIR/bg.pid; sleep 0.5\n  - { id: after, needs: [daemon], shell: \"true\" }\n",
    );
    let output = env.execute(&[]);
    let err = stderr(&output);
    let setsid = env.wait_for("setsid.pid");
    let bg = env.wait_for("bg.pid");
    let (setsid, bg) = (setsid.trim().to_owned(), bg.trim().to_owned());
    let still = [&setsid, &bg].iter().any(|pid| alive(pid));
    for pid in [&setsid, &bg] {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid.parse().unwrap()),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert!(!still, "a leftover outlived the run\n{err}");
    for (pid, command) in [(&setsid, "sleep 300"), (&bg, "sleep 301")] {
        let line = err
            .lines()
            .find(|l| l.contains(&format!("killed pid {pid} (")))
            .unwrap_or_else(|| panic!("{err}"));
        assert!(
            line.ends_with(&format!(
                "{command}): the step left it running, and nothing a step starts may outlive it"
            )),
            "{err}"
        );
    }
    assert_eq!(output.status.code(), Some(3), "{err}");
}
