//! `snapshots`, `verify` and `restore` through the real binary, on sets `planrun execute`
//! wrote: statuses, a flipped byte caught and refused, and a set killed mid-backup with kill -9.

mod support;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use chrono::{DateTime, Utc};

/// A set id as planrun names sets: the start time, then a suffix that keeps ids apart.
fn set_id(started: DateTime<Utc>, suffix: &str) -> String {
    format!("{}-{suffix}", started.format("%Y%m%dT%H%M%SZ"))
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let media = dir.path().join("app/media");
        std::fs::create_dir_all(media.join("avatars")).unwrap();
        std::fs::write(media.join("avatars/a.txt"), b"avatar a\n").unwrap();
        std::fs::write(media.join("invoice.txt"), b"invoice 1\n").unwrap();
        let db = rusqlite::Connection::open(dir.path().join("app/crm.sqlite3")).unwrap();
        db.execute_batch("CREATE TABLE auth_user (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO auth_user (name) VALUES ('ana'), ('bia');")
            .unwrap();
        std::fs::write(
            dir.path().join("plan.yaml"),
            "version: 1\nname: crm\nsources:\n  db: { sqlite: { path: \"{{plan.dir}}/app/crm.sqlite3\" } }\n  media: { directory: { path: \"{{plan.dir}}/app/media\" } }\nstorage:\n  local: { local: { path: \"{{plan.dir}}/backups\" } }\nsteps:\n  - { id: db, backup: db }\n  - { id: media, backup: media, needs: [db] }\n",
        )
        .unwrap();
        Fixture { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The set folders of plan `crm` in the local storage.
    fn set_ids(&self) -> Vec<String> {
        let dir = self.path("backups/crm");
        let mut ids: Vec<String> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// `planrun execute plan.yaml` with this fixture's own state directory; returns the id
    /// of the set it wrote.
    fn execute(&self) -> String {
        let before = self.set_ids();
        let (code, out, err) = self.planrun(&["execute", "plan.yaml", "--state-dir", "state"]);
        assert_eq!(code, 0, "{out}{err}");
        let mut new: Vec<String> = self
            .set_ids()
            .into_iter()
            .filter(|id| !before.contains(id))
            .collect();
        assert_eq!(new.len(), 1, "{new:?}");
        new.pop().unwrap()
    }

    /// A complete set with both sources, started `age` ago: a real run, then its folder and
    /// manifest moved back in time as if the run had happened then.
    fn complete_set(&self, age: chrono::Duration) -> String {
        let written = self.execute();
        let started = Utc::now() - age;
        let suffix = written.split_once('-').unwrap().1;
        let id = set_id(started, suffix);
        let dir = self.path(&format!("backups/crm/{id}"));
        std::fs::rename(self.path(&format!("backups/crm/{written}")), &dir).unwrap();
        let path = dir.join("manifest.json");
        let mut manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        manifest["set_id"] = id.clone().into();
        manifest["started_at"] = started.to_rfc3339().into();
        manifest["finished_at"] = (started + chrono::Duration::seconds(2)).to_rfc3339().into();
        std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
        id
    }

    fn planrun(&self, args: &[&str]) -> (i32, String, String) {
        let output = Command::cargo_bin("planrun")
            .unwrap()
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    }
}

/// Replaces the AGE and SIZE columns, which depend on the clock and the compressor.
fn mask(text: &str, ids: &[(&String, &str)]) -> String {
    let mut out = text.to_owned();
    for (id, name) in ids {
        out = out.replace(id.as_str(), name);
    }
    out
}

#[test]
fn snapshots_verify_and_restore_through_the_cli() {
    let fx = Fixture::new();
    let old = fx.complete_set(chrono::Duration::hours(26));
    let new = fx.complete_set(chrono::Duration::minutes(5));
    // A run that died after one artifact: no manifest.
    let dead = fx.execute();
    std::fs::remove_file(fx.path(&format!("backups/crm/{dead}/manifest.json"))).unwrap();
    std::fs::remove_file(fx.path(&format!("backups/crm/{dead}/media.tar.zst"))).unwrap();
    let ids = [(&old, "OLD"), (&new, "NEW"), (&dead, "DEAD")];

    let (code, out, err) = fx.planrun(&["snapshots", "plan.yaml"]);
    assert_eq!((code, err.as_str()), (0, ""));
    let lines: Vec<String> = mask(&out, &ids)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines[0],
        format!("local ({})", fx.path("backups").display())
    );
    assert_eq!(lines[1], "SET STATUS AGE SIZE ARTIFACTS");
    assert!(
        lines[2].starts_with("DEAD incomplete ") && lines[2].contains("s "),
        "{}",
        lines[2]
    );
    assert!(lines[2].ends_with(" -"), "{}", lines[2]);
    assert!(lines[3].starts_with("NEW complete 5m "), "{}", lines[3]);
    assert!(
        lines[3].ends_with(" db.sqlite3.zst, media.tar.zst"),
        "{}",
        lines[3]
    );
    assert!(lines[4].starts_with("OLD complete 1d02h "), "{}", lines[4]);
    assert_eq!(lines.len(), 5);

    let (code, out, _) = fx.planrun(&["verify", "plan.yaml"]);
    assert_eq!(code, 0);
    let out = mask(&out, &ids);
    assert!(
        out.starts_with("local NEW: verified (2 artifacts, "),
        "{out}"
    );
    let (_, json, _) = fx.planrun(&["snapshots", "plan.yaml", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let statuses: Vec<&str> = json["storage"][0]["sets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["incomplete", "verified", "complete"]);

    // The incomplete set is newest, but restore never reads it.
    let (code, out, err) = fx.planrun(&[
        "restore",
        "plan.yaml",
        "--source",
        "media",
        "--to",
        "restored/media",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().next().unwrap(),
        format!("restored media from local set {new} into restored/media")
    );
    assert_eq!(
        std::fs::read(fx.path("restored/media/avatars/a.txt")).unwrap(),
        b"avatar a\n"
    );
    let (code, _, err) = fx.planrun(&[
        "restore",
        "plan.yaml",
        "--source",
        "db",
        "--set",
        dead.as_str(),
        "--to",
        "x.sqlite3",
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "planrun: restore of db failed: backup set `{dead}` is incomplete (no manifest.json): it is never restored from\n"
        )
    );

    // One flipped byte: verify names it and exits 1, restore refuses before writing.
    let artifact = fx.path(&format!("backups/crm/{new}/media.tar.zst"));
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&artifact, &bytes).unwrap();
    let (code, out, _) = fx.planrun(&["verify", "plan.yaml", "--all"]);
    assert_eq!(code, 1);
    let out = mask(&out, &ids);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "local NEW: damaged");
    assert!(lines[1].starts_with("  media.tar.zst: sha256 "), "{out}");
    assert!(lines[1].contains(", manifest says "), "{out}");
    assert!(
        lines[2].starts_with("local OLD: verified (2 artifacts, "),
        "{out}"
    );
    assert_eq!(lines.len(), 3);
    let (_, json, _) = fx.planrun(&["snapshots", "plan.yaml", "--json"]);
    assert!(json.contains("\"status\": \"damaged\""), "{json}");

    let (code, _, err) = fx.planrun(&[
        "restore",
        "plan.yaml",
        "--source",
        "media",
        "--set",
        new.as_str(),
        "--to",
        "again/media",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!("planrun: restore of media failed: refusing to restore from set `{new}`: media.tar.zst: sha256 ")),
        "{err}"
    );
    assert!(!fx.path("again").exists());
    // `latest` skips the damaged set and takes the older verified one.
    let (code, out, err) = fx.planrun(&[
        "restore",
        "plan.yaml",
        "--source",
        "db",
        "--to",
        "restored/crm.sqlite3",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("from local set {old} ")), "{out}");
}

#[test]
fn unknown_names_are_usage_errors() {
    let fx = Fixture::new();
    let (code, _, err) = fx.planrun(&["restore", "plan.yaml", "--source", "mdia", "--to", "x"]);
    assert_eq!(
        (code, err.as_str()),
        (2, "planrun: unknown source `mdia`, did you mean `media`?\n")
    );
    let (code, _, err) = fx.planrun(&["snapshots", "plan.yaml", "--storage", "offsite"]);
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "planrun: unknown storage `offsite` (the plan has: local)\n"
        )
    );
}

#[test]
fn kill_9_mid_backup_leaves_an_incomplete_set() {
    let fx = Fixture::new();
    let good = fx.complete_set(chrono::Duration::hours(1));
    let bin = fx.path("bin");
    std::fs::create_dir(&bin).unwrap();
    // The tool runs in its own process group (planrun's watchdog kills it on a stop); after a
    // kill -9 of planrun it is an orphan, so it records its pid for the test to clean up.
    let tool_pid = fx.path("git.pid");
    std::fs::write(
        bin.join("git"),
        format!(
            "#!/bin/sh\ncase \"$*\" in *rev-parse*) echo 0123456789abcdef0123456789abcdef01234567;; *symbolic-ref*) echo main;; \
             *bundle*) echo $$ > {}; head -c 2000000 /dev/urandom; exec sleep 60;; esac\n",
            tool_pid.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        bin.join("git"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // A plan of the same name whose one step backs up a git source with that `git`.
    std::fs::write(
        fx.path("code.yaml"),
        "version: 1\nname: crm\nsources:\n  code: { git: { repo: / } }\nstorage:\n  local: { local: { path: \"{{plan.dir}}/backups\" } }\nsteps:\n  - { id: code, backup: code }\n",
    )
    .unwrap();
    let mut child = Command::cargo_bin("planrun")
        .unwrap()
        .args(["execute", "code.yaml", "--state-dir", "state"])
        .current_dir(fx.dir.path())
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .process_group(0)
        .spawn()
        .unwrap();
    let plan_dir = fx.path("backups/crm");
    let deadline = Instant::now() + Duration::from_secs(20);
    let partial = loop {
        let found = std::fs::read_dir(&plan_dir)
            .unwrap()
            .filter_map(Result::ok)
            .find_map(|set| {
                let temp = set.path().join(".code.bundle.partial");
                (std::fs::metadata(&temp).map(|m| m.len()).unwrap_or(0) > 0).then_some(temp)
            });
        if let Some(found) = found {
            break found;
        }
        assert!(Instant::now() < deadline, "the child never started writing");
        std::thread::sleep(Duration::from_millis(20));
    };
    // The whole group: planrun's process and the tool it was reading from.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let status = child.wait().unwrap();
    if let Ok(pid) = std::fs::read_to_string(&tool_pid) {
        let pid = nix::unistd::Pid::from_raw(pid.trim().parse().unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
    assert!(!status.success());
    let killed = partial
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!partial.parent().unwrap().join("manifest.json").exists());

    let (code, out, _) = fx.planrun(&["snapshots", "plan.yaml", "--json"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sets = json["storage"][0]["sets"].as_array().unwrap();
    assert_eq!(sets[0]["id"], killed.as_str());
    assert_eq!(sets[0]["status"], "incomplete");
    assert_eq!(sets[1]["id"], good.as_str());

    let (code, out, err) = fx.planrun(&[
        "restore",
        "plan.yaml",
        "--source",
        "media",
        "--to",
        "restored",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("restored media from local set {good} ")),
        "{out}"
    );
}

/// Copies a set folder to a newer id, as a forger would, and returns the new folder.
fn forged_copy(fx: &Fixture, good: &str, id: &str) -> PathBuf {
    let from = fx.path(&format!("backups/crm/{good}"));
    let to = fx.path(&format!("backups/crm/{id}"));
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    // The copied manifest names the old set: give it the new id, so that only the forgery
    // below makes it damaged.
    let manifest = std::fs::read_to_string(to.join("manifest.json"))
        .unwrap()
        .replace(good, id);
    std::fs::write(to.join("manifest.json"), manifest).unwrap();
    std::fs::remove_file(to.join("verify.json")).ok();
    to
}

/// Breaks a set folder in one way.
type Forgery = fn(&Path);

#[test]
fn forged_manifests_are_damaged_everywhere_and_restore_latest_skips_them() {
    let fx = Fixture::new();
    let good = fx.complete_set(chrono::Duration::hours(30));
    let forgeries: [(&str, Forgery); 5] = [
        ("{}", |dir| {
            std::fs::write(dir.join("manifest.json"), b"{}").unwrap()
        }),
        ("format only", |dir| {
            std::fs::write(dir.join("manifest.json"), br#"{"format":1}"#).unwrap()
        }),
        ("a flipped bit in a key", |dir| {
            let mut bytes = std::fs::read(dir.join("manifest.json")).unwrap();
            let at = bytes.windows(8).position(|w| w == b"\"set_id\"").unwrap() + 1;
            bytes[at] ^= 0x20;
            std::fs::write(dir.join("manifest.json"), bytes).unwrap();
        }),
        ("a missing artifact", |dir| {
            std::fs::remove_file(dir.join("media.tar.zst")).unwrap()
        }),
        ("a truncated artifact", |dir| {
            let bytes = std::fs::read(dir.join("media.tar.zst")).unwrap();
            std::fs::write(dir.join("media.tar.zst"), &bytes[..bytes.len() / 2]).unwrap();
        }),
    ];
    let mut forged = Vec::new();
    for (i, (what, forge)) in forgeries.iter().enumerate() {
        let id = set_id(Utc::now() - chrono::Duration::hours(5 - i as i64), "0000");
        forge(&forged_copy(&fx, &good, &id));
        forged.push((id, *what));
    }

    let (code, out, err) = fx.planrun(&["snapshots", "plan.yaml", "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sets = json["storage"][0]["sets"].as_array().unwrap();
    for (id, what) in &forged {
        let set = sets.iter().find(|s| s["id"] == id.as_str()).unwrap();
        assert_eq!(set["status"], "damaged", "{what}: {set:#}");
    }
    assert_eq!(sets.last().unwrap()["status"], "complete");

    // `restore latest` takes the only good set, older than every forgery.
    for source in ["media", "db"] {
        let to = format!("restored/{source}");
        let (code, out, err) =
            fx.planrun(&["restore", "plan.yaml", "--source", source, "--to", &to]);
        assert_eq!(code, 0, "{source}: {err}");
        assert!(
            out.starts_with(&format!("restored {source} from local set {good} ")),
            "{out}"
        );
    }
    // verify's `latest` is the newest set with a manifest, damaged or not: it says so.
    let (code, out, _) = fx.planrun(&["verify", "plan.yaml"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with(&format!("local {}: damaged", forged[4].0)),
        "{out}"
    );
}

#[test]
fn a_format_1_manifest_from_before_partial_sets_is_a_complete_full_set() {
    let fx = Fixture::new();
    // Written exactly as planrun 0.1 wrote manifests: no `missing_sources`.
    support::write_set(
        &fx.path("backups"),
        "crm",
        "20261101T020000Z-0001",
        &[
            ("db.sqlite3.zst", "db", b"x"),
            ("media.tar.zst", "media", b"y"),
        ],
    );
    let (code, out, err) = fx.planrun(&["snapshots", "plan.yaml", "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let set = &json["storage"][0]["sets"][0];
    assert_eq!(set["status"], "complete", "{set:#}");
    assert_eq!(set["sources"], serde_json::json!(["db", "media"]));
    assert_eq!(set["missing_sources"], serde_json::json!([]));
}

/// Every command that reads storage prints through the plan's redactor: a secret that is also
/// part of the storage path shows as `***` in errors, tables and JSON, never as itself.
#[test]
fn a_secret_in_a_storage_path_never_reaches_the_output() {
    const SECRET: &str = "k3y-S3cr3t";
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("media")).unwrap();
    // A file where the storage folder should be: listing it fails with its path.
    std::fs::write(dir.path().join(format!("vault-{SECRET}")), b"x").unwrap();
    std::fs::write(
        dir.path().join("plan.yaml"),
        "version: 1\nname: crm\nsecrets:\n  key: { env: PLANRUN_TEST_STORAGE_KEY }\nsources:\n  media: { directory: { path: \"{{plan.dir}}/media\" } }\nstorage:\n  local: { local: { path: \"{{plan.dir}}/vault-{{secrets.key}}\" } }\nretention: { keep_last: 1 }\nsteps:\n  - { id: media, backup: media }\n",
    )
    .unwrap();
    let root = dir.path().canonicalize().unwrap();
    let listing = format!(
        "storage `local`: cannot list {}/vault-***/crm: Not a directory (os error 20)",
        root.display()
    );
    let cases: [(&[&str], &str, String); 6] = [
        (&["snapshots"], "", format!("planrun: {listing}\n")),
        (
            &["snapshots", "--json"],
            "{\n  \"plan\": \"crm\",\n  \"storage\": []\n}\n",
            format!("planrun: {listing}\n"),
        ),
        (&["verify"], "", format!("planrun: {listing}\n")),
        (
            &["restore", "--source", "media", "--to", "out"],
            "",
            format!(
                "planrun: restore of media failed: cannot list {}/vault-***/crm: Not a directory (os error 20)\n",
                root.display()
            ),
        ),
        (&["prune"], "", format!("planrun: {listing}\n")),
        (
            &["prune", "--json"],
            &format!(
                "[\n  {{\n    \"storage\": \"local\",\n    \"location\": \"{}/vault-***/crm\",\n    \"dry_run\": false,\n    \"sets\": [],\n    \"removed\": [],\n    \"errors\": [\n      \"{listing}\"\n    ]\n  }}\n]\n",
                root.display()
            ),
            String::new(),
        ),
    ];
    for (args, stdout, stderr) in cases {
        let output = Command::cargo_bin("planrun")
            .unwrap()
            .arg(args[0])
            .arg(root.join("plan.yaml"))
            .args(&args[1..])
            // Prune takes the plan's lock and restore keeps a ledger: never the shared default.
            .args(if matches!(args[0], "prune" | "restore") {
                vec![
                    "--state-dir".to_owned(),
                    root.join("state").display().to_string(),
                ]
            } else {
                Vec::new()
            })
            .current_dir(&root)
            .env("PLANRUN_TEST_STORAGE_KEY", SECRET)
            .output()
            .unwrap();
        let (out, err) = (
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        );
        assert!(
            !out.contains(SECRET) && !err.contains(SECRET),
            "{args:?}: {out}{err}"
        );
        assert_eq!(
            (output.status.code(), out.as_str(), err.as_str()),
            (Some(1), stdout, stderr.as_str()),
            "{args:?}"
        );
    }
}

/// Changes a parsed manifest in one way.
type Edit = fn(&mut serde_json::Value);

#[test]
fn manifests_that_contradict_their_place_or_themselves_are_damaged() {
    let fx = Fixture::new();
    let good = fx.complete_set(chrono::Duration::hours(30));
    let edit = |dir: &Path, change: Edit| {
        let path = dir.join("manifest.json");
        let mut manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        change(&mut manifest);
        std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    };
    let cases: [(Edit, &str); 3] = [
        (
            |m| m["plan"]["name"] = "payroll".into(),
            "manifest.json: the manifest is for plan `payroll`, not `crm`",
        ),
        (
            |m| m["missing_sources"] = serde_json::json!(["db"]),
            "manifest.json: source `db` is listed as missing but the set holds an artifact of it",
        ),
        (
            |m| m["missing_sources"] = serde_json::json!(["conf", "conf"]),
            "manifest.json: missing source `conf` is listed twice",
        ),
    ];
    let mut forged = Vec::new();
    for (i, (change, why)) in cases.iter().enumerate() {
        let id = set_id(Utc::now() - chrono::Duration::hours(5 - i as i64), "0000");
        edit(&forged_copy(&fx, &good, &id), *change);
        forged.push((id, *why));
    }

    let (code, out, err) = fx.planrun(&["snapshots", "plan.yaml", "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sets = json["storage"][0]["sets"].as_array().unwrap();
    for (id, why) in &forged {
        let set = sets.iter().find(|s| s["id"] == id.as_str()).unwrap();
        assert_eq!(set["status"], "damaged", "{why}: {set:#}");
        assert_eq!(set["damage"], serde_json::json!([why]), "{set:#}");
    }
    // `latest` skips every one of them.
    let (code, out, err) = fx.planrun(&["restore", "plan.yaml", "--source", "db", "--to", "r"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("restored db from local set {good} ")),
        "{out}"
    );
}

/// A manifest too big to be one (a forged 3 GiB file) is not read: it cannot exhaust memory
/// and stop every listing, and `latest` goes on to the good sets.
#[test]
fn an_oversized_manifest_is_damaged_without_being_read() {
    let fx = Fixture::new();
    let good = fx.complete_set(chrono::Duration::hours(30));
    let id = set_id(Utc::now() - chrono::Duration::hours(5), "0001");
    let forged = forged_copy(&fx, &good, &id);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(forged.join("manifest.json"))
        .unwrap();
    file.set_len(3 << 30).unwrap();
    let (code, out, err) = fx.planrun(&["snapshots", "plan.yaml", "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sets = json["storage"][0]["sets"].as_array().unwrap();
    let set = sets.iter().find(|s| s["id"] == id.as_str()).unwrap();
    assert_eq!(set["status"], "damaged", "{set:#}");
    assert_eq!(
        set["damage"],
        serde_json::json!([
            "manifest.json: 3221225472 bytes, more than the 16 MiB a manifest may have"
        ])
    );
    let (code, out, err) = fx.planrun(&["restore", "plan.yaml", "--source", "db", "--to", "r"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("restored db from local set {good} ")),
        "{out}"
    );
}
