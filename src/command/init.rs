//! `planrun init`: a commented starting plan from what the flags name. It never overwrites a
//! file and never writes a password or key: those become `secrets:` entries read from the
//! environment when the plan runs.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{CommandError, CommandResult, Console};
use crate::cli::InitArgs;
use crate::exit_code;
use crate::pipeline;

pub fn run(args: &InitArgs, console: &mut Console) -> CommandResult {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => name_from(&args.plan),
    };
    let text = plan_text(args, &name)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&args.plan)
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::AlreadyExists => CommandError::Usage(format!(
                "{} exists: planrun init never overwrites a file; name another path",
                args.plan.display()
            )),
            _ => CommandError::Write {
                path: args.plan.clone(),
                error,
            },
        })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|error| CommandError::Write {
            path: args.plan.clone(),
            error,
        })?;
    // What was written is checked like any plan, so a flag combination this code gets wrong
    // is reported here and not at 2 a.m.
    let loaded = match pipeline::load(&args.plan) {
        Ok(loaded) => loaded,
        Err(failure) => {
            // A plan init wrote that does not validate is not left behind for someone to
            // run, edit or commit: what was wrong is in the error.
            std::fs::remove_file(&args.plan).ok();
            return Err(failure.into());
        }
    };
    if !console.quiet() {
        console.line(format_args!(
            "wrote {} (plan `{}`, valid)",
            args.plan.display(),
            loaded.plan.name
        ));
        let env: Vec<&str> = loaded
            .plan
            .secrets
            .values()
            .filter_map(|s| match s {
                crate::plan::SecretSource::Env(name) => Some(name.as_str()),
                crate::plan::SecretSource::File(_) => None,
            })
            .collect();
        if !env.is_empty() {
            console.line(format_args!(
                "set before running: {} (secrets are read at run time, never stored in the plan)",
                env.join(", ")
            ));
        }
        console.line(format_args!(
            "next: planrun plan {0}, then planrun execute {0}",
            args.plan.display()
        ));
    }
    Ok(exit_code::SUCCESS)
}

/// A plan name from the file name: lowercase letters, digits, `-` and `_`.
fn name_from(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_start_matches(['-', '_']).to_owned();
    if name.is_empty() || name == "planrun" {
        "backup".into()
    } else {
        name.chars().take(64).collect()
    }
}

/// A YAML double-quoted scalar (JSON's string syntax is YAML's).
fn q(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

fn path_text(path: &Path) -> String {
    q(&std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string())
}

/// The parts of a `postgres://user:password@host:port/db` URL, or a bare database name.
struct Postgres {
    database: String,
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    had_password: bool,
}

fn postgres(text: &str) -> Result<Postgres, CommandError> {
    let Some(rest) = text
        .strip_prefix("postgres://")
        .or_else(|| text.strip_prefix("postgresql://"))
    else {
        // A libpq keyword string (`host=… password=…`) is refused without being repeated:
        // it may hold a password, which must never reach the plan or the terminal.
        if text.contains('=') || text.chars().any(char::is_whitespace) {
            return Err(CommandError::Usage(
                "--postgres takes a database name or a postgres://user@host:port/db URL, not a \
                 keyword string (not repeated here: it may hold a password); the password is \
                 read at run time from the environment variable the plan names (`<PLAN>_DB_PASSWORD`)"
                    .into(),
            ));
        }
        return Ok(Postgres {
            database: text.to_owned(),
            host: None,
            port: None,
            user: None,
            had_password: false,
        });
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, had_password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((user, _)) => (Some(decode(user)), true),
            None => (Some(decode(u)), false),
        },
        None => (None, false),
    };
    // `[::1]:5432` and `[::1]` are IPv6; libpq takes the address without brackets.
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, rest)) => (h, rest.strip_prefix(':')),
            None => (hostport, None),
        },
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| CommandError::Usage(format!("--postgres: `{p}` is not a port number")))
        })
        .transpose()?;
    if database.is_empty() {
        return Err(CommandError::Usage(
            "--postgres: the URL names no database: postgres://user@host:5432/DATABASE".into(),
        ));
    }
    Ok(Postgres {
        database: decode(database),
        host: (!host.is_empty()).then(|| decode(host)),
        port,
        user,
        had_password,
    })
}

/// The `s3://bucket/prefix` of `--s3`.
fn s3(text: &str) -> Result<(String, String), CommandError> {
    // Keys in the URL (`s3://KEY:SECRET@bucket`) would be written into the plan: refused
    // without repeating the text, since it holds them.
    if text.contains('@') {
        return Err(CommandError::Usage(
            "--s3 holds `@`: keys never go in the URL (not repeated here); write s3://bucket/prefix, \
             and set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY where the plan runs"
                .into(),
        ));
    }
    let rest = text.strip_prefix("s3://").ok_or_else(|| {
        CommandError::Usage(format!("--s3 `{text}`: write it as s3://bucket/prefix"))
    })?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(CommandError::Usage(format!(
            "--s3 `{text}` names no bucket: s3://bucket/prefix"
        )));
    }
    let prefix = prefix.trim_matches('/');
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    Ok((bucket.to_owned(), prefix))
}

/// A name the plan can use for a source, from a path's last part.
fn source_name(path: &Path, taken: &[String]) -> String {
    let base: String = path
        .file_name()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let base = if base.is_empty() { "dir".into() } else { base };
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}_{n}");
        n += 1;
    }
    name
}

/// The host's zone, when it says (Debian's /etc/timezone), for the schedule.
fn host_zone() -> String {
    std::fs::read_to_string("/etc/timezone")
        .ok()
        .map(|z| z.trim().to_owned())
        .filter(|z| z.parse::<chrono_tz::Tz>().is_ok())
        .unwrap_or_else(|| "UTC".into())
}

fn plan_text(args: &InitArgs, name: &str) -> Result<String, CommandError> {
    let env_prefix: String = name
        .to_uppercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let mut secrets = Vec::new();
    let mut sources = String::new();
    let mut backups: Vec<String> = Vec::new();
    let mut kinds: Vec<(String, &str)> = Vec::new();
    if let Some(text) = &args.postgres {
        let pg = postgres(text)?;
        write!(
            sources,
            "  db:\n    postgres:\n      database: {}\n",
            q(&pg.database)
        )
        .ok();
        if let Some(host) = &pg.host {
            writeln!(sources, "      host: {}", q(host)).ok();
        }
        if let Some(port) = pg.port {
            writeln!(sources, "      port: {port}").ok();
        }
        if let Some(user) = &pg.user {
            writeln!(sources, "      user: {}", q(user)).ok();
        }
        let env = format!("{env_prefix}_DB_PASSWORD");
        if pg.had_password {
            // The URL's password is not copied: the plan reads it from the environment.
            secrets.push(("db_password".to_owned(), env));
            sources.push_str("      password: \"{{secrets.db_password}}\"\n");
        } else {
            writeln!(
                sources,
                "      # No password given: libpq's peer auth or ~/.pgpass is used. Else add\n      # `db_password: {{ env: {env} }}` under secrets and `password: \"{{{{secrets.db_password}}}}\"`."
            )
            .ok();
        }
        sources.push_str(
            "      # count_rows: [auth_user]   # tables whose row counts drills compare\n",
        );
        backups.push("db".into());
        kinds.push(("db".into(), "postgres"));
    }
    if let Some(path) = &args.sqlite {
        let id = if backups.contains(&"db".to_owned()) {
            "sqlite"
        } else {
            "db"
        };
        write!(
            sources,
            "  {id}:\n    sqlite: {{ path: {} }}\n",
            path_text(path)
        )
        .ok();
        backups.push(id.into());
        kinds.push((id.into(), "sqlite"));
    }
    for path in &args.dir {
        let id = source_name(path, &backups);
        write!(
            sources,
            "  {id}:\n    directory:\n      path: {}\n      exclude: []   # globs, e.g. [\"cache/**\"]\n",
            path_text(path)
        )
        .ok();
        kinds.push((id.clone(), "directory"));
        backups.push(id);
    }
    if !args.files.is_empty() {
        let id = source_name(Path::new("config"), &backups);
        write!(sources, "  {id}:\n    files:\n").ok();
        for path in &args.files {
            writeln!(sources, "      - {}", path_text(path)).ok();
        }
        kinds.push((id.clone(), "files"));
        backups.push(id);
    }
    if let Some(path) = &args.git {
        let id = source_name(Path::new("code"), &backups);
        write!(
            sources,
            "  {id}:\n    git: {{ repo: {} }}\n",
            path_text(path)
        )
        .ok();
        kinds.push((id.clone(), "directory"));
        backups.push(id);
    }
    if backups.is_empty() {
        return Err(CommandError::Usage(
            "name at least one thing to back up: --postgres, --sqlite, --dir, --files or --git"
                .into(),
        ));
    }
    let local = match &args.to {
        Some(path) => path_text(path),
        None => q(&format!("/var/backups/planrun/{name}")),
    };
    let offsite = args.s3.as_deref().map(s3).transpose()?;
    if offsite.is_some() {
        secrets.push(("s3_key_id".into(), "AWS_ACCESS_KEY_ID".into()));
        secrets.push(("s3_secret".into(), "AWS_SECRET_ACCESS_KEY".into()));
    }

    let mut out = String::new();
    writeln!(
        out,
        "# yaml-language-server: $schema=https://planrun.dev/schemas/plan.schema.json\n# Written by `planrun init`. Check it with `planrun validate`, preview with `planrun plan`,\n# run it with `planrun execute`, and schedule it with `planrun schedule --emit systemd`.\nversion: 1\nname: {name}\n"
    )
    .ok();
    if !secrets.is_empty() {
        out.push_str(
            "# Secrets are read when the plan runs and masked as *** in every output; their values\n# never belong in this file. `{ file: /etc/planrun/NAME }` reads one from a file instead.\nsecrets:\n",
        );
        for (key, env) in &secrets {
            writeln!(out, "  {key}: {{ env: {env} }}").ok();
        }
        out.push('\n');
    }
    out.push_str("# What to back up, by name.\nsources:\n");
    out.push_str(&sources);
    out.push_str("\n# Where backup sets go: a local folder");
    out.push_str(if offsite.is_some() {
        ", and an off-site copy (3-2-1).\n"
    } else {
        ". Add an off-site copy (S3) for 3-2-1.\n"
    });
    writeln!(out, "storage:\n  local:\n    local: {{ path: {local} }}").ok();
    if let Some((bucket, prefix)) = &offsite {
        writeln!(
            out,
            "  offsite:\n    s3:\n      bucket: {}\n      prefix: {}\n      region: us-east-1   # your bucket's region; add `endpoint:` for other S3 services\n      access_key_id: \"{{{{secrets.s3_key_id}}}}\"\n      secret_access_key: \"{{{{secrets.s3_secret}}}}\"",
            q(bucket),
            q(prefix)
        )
        .ok();
    }
    writeln!(
        out,
        "\n# Grandfather-father-son: how many sets to keep. `planrun retention simulate` previews it.\nretention: {{ keep_last: 3, keep_daily: 14, keep_weekly: 8, keep_monthly: 12 }}\n\n# When it runs: `planrun plan` shows the next times, `planrun schedule` writes the cron\n# line or systemd timer.\nschedule: {{ cron: \"0 2 * * *\", timezone: {} }}\n",
        q(&host_zone())
    )
    .ok();
    let mut drill = String::from(
        "\n# `planrun drill` restores the newest set into scratch places and checks it, proving\n# the backups restore: monthly here.\ndrill:\n  schedule: { cron: \"0 4 1 * *\" }\n  restore:\n",
    );
    for (id, kind) in &kinds {
        match *kind {
            "postgres" => writeln!(
                drill,
                "    {id}: {{ database: \"planrun_drill_{{{{run.id}}}}\" }}   # never the live database"
            ),
            _ => writeln!(drill, "    {id}: {{ path: \"{{{{run.scratch}}}}/{id}\" }}"),
        }
        .ok();
    }
    out.push_str("# What `planrun execute` does, as a graph through `needs`.\nsteps:\n");
    for id in &backups {
        writeln!(out, "  - {{ id: {id}, backup: {id}, timeout: 1h }}").ok();
    }
    let needs = backups.join(", ");
    writeln!(
        out,
        "  - {{ id: verify, verify: {{ storage: local }}, needs: [{needs}] }}"
    )
    .ok();
    if offsite.is_some() {
        writeln!(
            out,
            "  - {{ id: offsite, copy: {{ to: offsite }}, needs: [verify], timeout: 2h, retries: 2 }}\n  - {{ id: prune, prune: [local, offsite], needs: [offsite] }}"
        )
        .ok();
    } else {
        writeln!(out, "  - {{ id: prune, prune: [local], needs: [verify] }}").ok();
    }
    out.push_str(&drill);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::postgres;

    #[test]
    fn postgres_urls_and_names() {
        let pg = postgres("postgres://crm:pw@db:5433/crm").unwrap();
        assert_eq!(
            (
                pg.database.as_str(),
                pg.host.as_deref(),
                pg.port,
                pg.user.as_deref()
            ),
            ("crm", Some("db"), Some(5433), Some("crm"))
        );
        assert!(pg.had_password);
        let pg = postgres("postgresql://[::1]/app?sslmode=require").unwrap();
        assert_eq!((pg.host.as_deref(), pg.port), (Some("::1"), None));
        let pg = postgres("postgres://u@[::1]:6000/app").unwrap();
        assert_eq!(
            (pg.host.as_deref(), pg.port, pg.had_password),
            (Some("::1"), Some(6000), false)
        );
        assert_eq!(postgres("crm").unwrap().database, "crm");
        assert!(postgres("postgres://db/").is_err());
        assert!(postgres("postgres://db:x/app").is_err());
    }
}
