//! Archives built to escape the destination are refused before anything is written, and
//! nothing appears outside the destination.

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

enum Item<'a> {
    File(&'a str, u32),
    Dir(&'a str),
    DirMode(&'a str, u32),
    Symlink(&'a str, &'a str),
    Device(&'a str),
}

/// A tar stream with raw names: the tar crate's safe setters refuse `..`, so the name bytes
/// are written into the header directly.
fn hostile_tar(items: &[Item]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        let mut header = tar::Header::new_old();
        let (name, kind, link, mode, data): (&str, tar::EntryType, Option<&str>, u32, &[u8]) =
            match item {
                Item::File(name, mode) => (name, tar::EntryType::Regular, None, *mode, b"pwned\n"),
                Item::Dir(name) => (name, tar::EntryType::Directory, None, 0o755, b""),
                Item::DirMode(name, mode) => (name, tar::EntryType::Directory, None, *mode, b""),
                Item::Symlink(name, target) => {
                    (name, tar::EntryType::Symlink, Some(target), 0o777, b"")
                }
                Item::Device(name) => (name, tar::EntryType::Char, None, 0o666, b""),
            };
        let raw = header.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// Stores `tar` as the artifact of source `src` in a complete set of plan `app`.
fn store_set(storage: &Path, tar: &[u8]) {
    let artifact = zstd::encode_all(tar, 3).unwrap();
    support::write_set(
        storage,
        "app",
        "20250214T020000Z-3f9a",
        &[("src.tar.zst", "src", &artifact)],
    );
}

/// `planrun restore` of source `src` from `storage` into `dest`, with the plan written beside
/// `storage`; on failure, what the binary printed to stderr.
fn restore(storage: &Path, dest: &Path) -> Result<(), String> {
    let output = restore_cli(storage.parent().unwrap(), storage, dest);
    match output.status.code() {
        Some(0) => Ok(()),
        _ => Err(support::run::stderr(&output)),
    }
}

#[test]
fn escaping_entries_are_refused_and_nothing_is_written() {
    let work = tempfile::tempdir().unwrap();
    let outside = work.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let absolute = outside.join("abs.txt");
    let absolute = absolute.to_str().unwrap();
    let outside_str = outside.to_str().unwrap();
    let cases: Vec<(Vec<Item>, String)> = vec![
        (
            vec![
                Item::File("ok.txt", 0o644),
                Item::File("../../outside/evil.txt", 0o644),
            ],
            "`../../outside/evil.txt`: its path contains `..`".into(),
        ),
        (
            vec![Item::File(absolute, 0o644)],
            format!("`{absolute}`: its path is absolute"),
        ),
        (
            vec![
                Item::Symlink("escape", outside_str),
                Item::File("escape/evil.txt", 0o644),
            ],
            "`escape/evil.txt`: it lies beneath a symlink or file of the archive".into(),
        ),
        (
            vec![
                Item::Symlink("up", "../../outside"),
                Item::File("up/evil.txt", 0o644),
            ],
            "`up/evil.txt`: it lies beneath a symlink or file of the archive".into(),
        ),
        (
            vec![
                Item::Dir("sub"),
                Item::Symlink("sub/here", ".."),
                Item::File("sub/here/evil.txt", 0o644),
            ],
            "`sub/here/evil.txt`: it lies beneath a symlink or file of the archive".into(),
        ),
        (
            vec![
                Item::File("sub/x.txt", 0o644),
                Item::Symlink("sub", outside_str),
            ],
            "`sub`: it is a symlink where the archive has a folder".into(),
        ),
        (
            vec![Item::Device("null")],
            "`null`: it is a device node".into(),
        ),
    ];
    for (i, (items, reason)) in cases.into_iter().enumerate() {
        let storage = work.path().join(format!("store{i}"));
        store_set(&storage, &hostile_tar(&items));
        let dest = work.path().join(format!("dest{i}/tree"));
        let error = restore(&storage, &dest).unwrap_err();
        assert_eq!(
            error,
            format!(
                "planrun: restore of src failed: refusing archive entry {reason}; nothing was written\n"
            ),
            "case {i}"
        );
        assert!(
            !dest.exists(),
            "case {i}: the destination must not be created"
        );
        assert!(
            support::names(&outside).is_empty(),
            "case {i}: something escaped"
        );
        assert!(
            !work.path().join(format!("dest{i}")).exists()
                || support::names(&work.path().join(format!("dest{i}"))).is_empty()
        );
    }
}

/// A tampered directory set that records setuid, setgid and world-writable modes restores
/// with those bits dropped, each named on stderr, and exits 3.
#[test]
fn setuid_setgid_and_world_writable_modes_are_dropped_and_named() {
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("store");
    store_set(
        &storage,
        &hostile_tar(&[
            Item::DirMode("bin", 0o2777),
            Item::File("bin/tool", 0o4755),
            Item::File("bin/group", 0o2750),
            Item::File("open.txt", 0o666),
            Item::DirMode("drop", 0o1777),
            Item::File("plain.txt", 0o640),
        ]),
    );
    let dest = work.path().join("tree");
    let output = restore_cli(work.path(), &storage, &dest);
    let stderr = support::run::stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let why = "since a restore never makes setuid, setgid or world-writable files or folders";
    let d = dest.display();
    assert_eq!(
        stderr,
        format!(
            "planrun: warning: {d}/bin: the set records mode 2777 (setgid, write for others); restored as 0775, {why}\n\
             planrun: warning: {d}/bin/tool: the set records mode 4755 (setuid); restored as 0755, {why}\n\
             planrun: warning: {d}/bin/group: the set records mode 2750 (setgid); restored as 0750, {why}\n\
             planrun: warning: {d}/open.txt: the set records mode 0666 (write for others); restored as 0664, {why}\n\
             planrun: warning: {d}/drop: the set records mode 1777 (write for others); restored as 0775, {why}\n"
        )
    );
    for (path, mode) in [
        ("bin", 0o775),
        ("bin/tool", 0o755),
        ("bin/group", 0o750),
        ("open.txt", 0o664),
        ("drop", 0o775),
        ("plain.txt", 0o640),
    ] {
        assert_eq!(
            std::fs::metadata(dest.join(path)).unwrap().mode() & 0o7777,
            mode,
            "{path}"
        );
    }
}

/// The same for a `files` source, backed up by `planrun execute` from files whose modes are
/// then what a tampered set would record, and restored with `--to`, through the binary.
#[test]
fn a_files_set_never_restores_setuid_or_world_writable_modes() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let app = work.path().join("app");
    std::fs::create_dir_all(app.join("shared")).unwrap();
    for (name, mode) in [
        ("run.sh", 0o4755),
        ("shared/notes.txt", 0o666),
        ("ok.txt", 0o600),
    ] {
        std::fs::write(app.join(name), "data\n").unwrap();
        std::fs::set_permissions(app.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::set_permissions(app.join("shared"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let plan = work.path().join("files.yaml");
    std::fs::write(
        &plan,
        format!(
            "version: 1\nname: app\nsources:\n  conf: {{ files: [{a}/run.sh, {a}/shared/notes.txt, {a}/ok.txt] }}\n\
             storage:\n  local: {{ local: {{ path: {s} }} }}\nsteps:\n  - {{ id: b, backup: conf }}\n",
            a = app.display(),
            s = work.path().join("store").display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_planrun"))
            .args(args)
            .arg(&plan)
            .arg("--state-dir")
            .arg(work.path().join("state"))
            .args(["--source", "conf", "--to"])
            .arg(work.path().join("out"))
            .output()
            .unwrap()
    };
    let backup = std::process::Command::new(env!("CARGO_BIN_EXE_planrun"))
        .arg("execute")
        .arg(&plan)
        .arg("--state-dir")
        .arg(work.path().join("state"))
        .output()
        .unwrap();
    assert_eq!(
        backup.status.code(),
        Some(0),
        "{}",
        support::run::stderr(&backup)
    );
    let output = run(&["restore"]);
    let stderr = support::run::stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let out = work.path().join("out");
    let why = "since a restore never makes setuid, setgid or world-writable files or folders";
    for line in [
        format!(
            "planrun: warning: {}/run.sh: the set records mode 4755 (setuid); restored as 0755, {why}",
            out.display()
        ),
        format!(
            "planrun: warning: {}/shared: the set records mode 0777 (write for others); restored as 0775, {why}",
            out.display()
        ),
        format!(
            "planrun: warning: {}/shared/notes.txt: the set records mode 0666 (write for others); restored as 0664, {why}",
            out.display()
        ),
    ] {
        assert!(stderr.contains(&line), "{line}\n{stderr}");
    }
    // A folder the restore makes gets the recorded mode less the umask.
    let shared = std::fs::metadata(out.join("shared")).unwrap().mode();
    assert_eq!(shared & 0o7002, 0, "shared: {shared:o}");
    for (path, mode) in [
        ("run.sh", 0o755),
        ("shared/notes.txt", 0o664),
        ("ok.txt", 0o600),
    ] {
        assert_eq!(
            std::fs::metadata(out.join(path)).unwrap().mode() & 0o7777,
            mode,
            "{path}"
        );
    }
}

/// A plan whose directory source `src` restores from the local storage `storage`.
fn restore_plan(work: &Path, storage: &Path) -> std::path::PathBuf {
    let plan = work.join("restore.yaml");
    std::fs::write(
        &plan,
        format!(
            "version: 1\nname: app\nsources:\n  src: {{ directory: {{ path: /unused }} }}\n\
             storage:\n  local: {{ local: {{ path: {} }} }}\nsteps:\n  - {{ id: b, backup: src }}\n",
            storage.display()
        ),
    )
    .unwrap();
    plan
}

/// `planrun restore` of the latest set in `storage` into `dest`, through the real binary.
fn restore_cli(work: &Path, storage: &Path, dest: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_planrun"))
        .arg("restore")
        .arg(restore_plan(work, storage))
        .args(["--source", "src", "--to"])
        .arg(dest)
        .output()
        .unwrap()
}

/// Every path under `root`, so a test can show that nothing else appeared.
fn everything(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                stack.push(path.clone());
            }
            out.push(path.strip_prefix(root).unwrap().to_owned());
        }
    }
    out.sort();
    out
}

/// A named archive of links (path, target).
type Case = (String, Vec<(String, String)>);

/// Stores each archive, restores it with the binary and expects it restored with every link
/// exactly as recorded (a link is data, wherever it leads), and nothing new outside the
/// destination: links are made last, so nothing is ever written through one.
fn assert_restored_as_recorded(cases: Vec<Case>) {
    for (name, links) in cases {
        let work = tempfile::tempdir().unwrap();
        let storage = work.path().join("store");
        let mut items: Vec<Item> = vec![Item::Dir("real"), Item::File("real/data.txt", 0o644)];
        items.extend(links.iter().map(|(l, t)| Item::Symlink(l, t)));
        store_set(&storage, &hostile_tar(&items));
        let before = everything(work.path());
        let dest = work.path().join("restored/tree");
        let output = restore_cli(work.path(), &storage, &dest);
        assert_eq!(
            output.status.code(),
            Some(0),
            "case {name}: {}",
            support::run::stderr(&output)
        );
        for (link, target) in &links {
            assert_eq!(
                std::fs::read_link(dest.join(link)).unwrap(),
                Path::new(target),
                "case {name}: {link}"
            );
        }
        let mut after = everything(work.path());
        after.retain(|p| p != Path::new("restore.yaml") && !p.starts_with("restored"));
        let mut before = before;
        before.retain(|p| p != Path::new("restore.yaml"));
        assert_eq!(after, before, "case {name}: something was written outside");
    }
}

fn links(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(l, t)| (l.to_string(), t.to_string()))
        .collect()
}

#[test]
fn symlink_chains_that_lead_outside_restore_as_recorded() {
    let cases = vec![
        ("l1 then l2".into(), links(&[("l1", "."), ("l2", "l1/..")])),
        ("a before b".into(), links(&[("a", "b/.."), ("b", ".")])),
        (
            "through a folder's link".into(),
            links(&[("real/up", ".."), ("esc", "real/up/..")]),
        ),
        (
            "a link to a link to the parent".into(),
            links(&[
                ("real/up", ".."),
                ("real/again", "up/.."),
                ("esc", "real/again"),
            ]),
        ),
        ("absolute".into(), links(&[("abs", "/etc")])),
        ("self-loop".into(), links(&[("me", "me")])),
    ];
    assert_restored_as_recorded(cases);
}

#[test]
fn generated_symlink_chains_up_to_depth_ten_restore_as_recorded() {
    let mut cases = Vec::new();
    for depth in 1..=10usize {
        // c0 -> . and ck -> c(k-1): each link alone stays inside; `esc` climbs out of the top.
        let chain: Vec<(String, String)> = (0..depth)
            .map(|k| {
                let target = if k == 0 {
                    ".".into()
                } else {
                    format!("c{}", k - 1)
                };
                (format!("c{k}"), target)
            })
            .collect();
        let escape = (format!("esc{depth}"), format!("c{}/..", depth - 1));
        let mut forward = chain.clone();
        forward.push(escape.clone());
        cases.push((format!("forward chain of {depth}"), forward));
        let mut reverse = vec![escape];
        reverse.extend(chain.into_iter().rev());
        cases.push((format!("reverse chain of {depth}"), reverse));
        // A loop of depth links.
        let looped: Vec<(String, String)> = (0..depth)
            .map(|k| (format!("o{k}"), format!("o{}", (k + 1) % depth)))
            .collect();
        cases.push((format!("loop of {depth}"), looped));
    }
    assert_restored_as_recorded(cases);
}

/// Links used to write outside are still refused, whichever comes first: an entry beneath a
/// link the archive made, deep in a chain.
#[test]
fn writing_through_a_chain_of_links_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let outside = work.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let storage = work.path().join("store");
    store_set(
        &storage,
        &hostile_tar(&[
            Item::Symlink("l1", "."),
            Item::Symlink("l2", "l1/.."),
            Item::Symlink("l3", "l2/outside"),
            Item::File("l3/evil.txt", 0o644),
        ]),
    );
    let dest = work.path().join("tree");
    let error = restore(&storage, &dest).unwrap_err();
    assert_eq!(
        error,
        "planrun: restore of src failed: refusing archive entry `l3/evil.txt`: it lies beneath a symlink or file of the archive; nothing was written\n"
    );
    assert!(!dest.exists());
    assert!(support::names(&outside).is_empty());
}

#[test]
fn relative_links_that_stay_inside_still_restore() {
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("store");
    store_set(
        &storage,
        &hostile_tar(&[
            Item::Dir("v2"),
            Item::File("v2/a.txt", 0o644),
            Item::Symlink("latest", "v2"),
            Item::Symlink("alias", "latest"),
            Item::Symlink("v2/self", "../latest/a.txt"),
            Item::Symlink("l1", "."),
            Item::Symlink("l2", "l1/v2"),
            Item::Symlink("v2/up", ".."),
            Item::Symlink("v2/round", "up/v2/up/latest/."),
            Item::Symlink("later", "not-yet/../v2"),
        ]),
    );
    let dest = work.path().join("restored/tree");
    let output = restore_cli(work.path(), &storage, &dest);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        support::run::stderr(&output)
    );
    for path in ["alias/a.txt", "v2/self", "l2/a.txt", "v2/round/a.txt"] {
        assert_eq!(
            std::fs::read(dest.join(path)).unwrap(),
            b"pwned\n",
            "{path} resolves to the restored file"
        );
    }
    assert_eq!(
        std::fs::read_link(dest.join("l2")).unwrap(),
        Path::new("l1/v2")
    );
    // A link through a folder the archive does not hold is kept: it can only lead inside.
    assert_eq!(
        std::fs::read_link(dest.join("later")).unwrap(),
        Path::new("not-yet/../v2")
    );
}
