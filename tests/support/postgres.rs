//! A real PostgreSQL 15 server for tests: initdb into a temp dir, a free port, the unix socket
//! in the temp dir, run as the unprivileged `postgres` user when the tests run as root
//! (PostgreSQL refuses root), stopped when the guard drops.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";
/// The password of the `postgres` role, required over TCP (the socket trusts).
pub const PASSWORD: &str = "s3cret:with\\odd'chars";

pub struct PgServer {
    dir: tempfile::TempDir,
    pub port: u16,
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Runs a PostgreSQL server binary, as `postgres` when we are root.
fn as_server_user(program: &str) -> Command {
    let path = Path::new(BIN_DIR).join(program);
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(path);
        command
    } else {
        Command::new(path)
    }
}

fn check(output: Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl PgServer {
    pub fn start() -> PgServer {
        assert!(
            Path::new(BIN_DIR).join("initdb").exists(),
            "PostgreSQL 15 server binaries are missing from {BIN_DIR}: install the package postgresql-15"
        );
        if is_root() {
            let exists = Command::new("id")
                .arg("postgres")
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if !exists {
                check(
                    Command::new("useradd")
                        .args([
                            "--system",
                            "--no-create-home",
                            "--shell",
                            "/usr/sbin/nologin",
                            "postgres",
                        ])
                        .output()
                        .expect("useradd runs"),
                    "useradd postgres",
                );
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("planrun-pg-")
            .tempdir()
            .expect("temp dir");
        if is_root() {
            let user = nix::unistd::User::from_name("postgres")
                .unwrap()
                .expect("user postgres");
            nix::unistd::chown(dir.path(), Some(user.uid), Some(user.gid)).expect("chown temp dir");
        }
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();
        if is_root() {
            let user = nix::unistd::User::from_name("postgres")
                .unwrap()
                .expect("user postgres");
            nix::unistd::chown(&pwfile, Some(user.uid), Some(user.gid)).unwrap();
        }
        let data = dir.path().join("data");
        check(
            as_server_user("initdb")
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ])
                .arg(format!("--pwfile={}", pwfile.display()))
                .output()
                .expect("initdb runs"),
            "initdb",
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            dir.path().display()
        );
        check(
            as_server_user("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.path().join("server.log"))
                .args(["-w", "-t", "30", "-o", &options, "start"])
                .output()
                .expect("pg_ctl runs"),
            "pg_ctl start",
        );
        PgServer { dir, port }
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// Runs SQL through psql over the socket and returns its unaligned output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let output = Command::new(Path::new(BIN_DIR).join("psql"))
            .env("PGHOST", self.socket_dir())
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", "postgres")
            .args([
                "-X",
                "-A",
                "-t",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                database,
                "-c",
                sql,
            ])
            .output()
            .expect("psql runs");
        check(output.clone(), &format!("psql {sql}"));
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = as_server_user("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
