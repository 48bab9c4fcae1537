//! A fresh Postgres database per test.
//!
//! `scripts/test` starts one throwaway server for the whole run and exports
//! `TEST_DATABASE_URL`. Without it (plain `cargo test`), the first test of
//! this process starts its own server with `initdb`, and a watchdog stops it
//! when the process exits.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use sqlx::Connection;

use crate::free_port;

/// Creates an empty database and returns its URL.
pub async fn fresh_database() -> String {
    let admin_url = server_url();
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("the test Postgres server accepts connections");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(r#"create database "{name}""#)))
        .execute(&mut admin)
        .await
        .expect("the test role can create databases");
    with_database(&admin_url, &name)
}

/// A fresh database with this release's migrations applied, for testing
/// a table's owner module on its own.
pub async fn migrated_pool() -> sqlx::PgPool {
    let pool = sqlx::PgPool::connect(&fresh_database().await)
        .await
        .expect("the test database accepts connections");
    store::db::migrate(&pool)
        .await
        .expect("the migrations apply");
    pool
}

fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let server = base
        .rsplit_once('/')
        .filter(|(head, _)| head.contains("//") && !head.ends_with('/'))
        .map_or(base, |(head, _)| head);
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

fn server_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => start_server(),
    })
    .clone()
}

/// initdb + pg_ctl into a temp dir, as the `postgres` user when we are root
/// (Postgres refuses to run as root).
fn start_server() -> String {
    let bin = postgres_bin_dir();
    let dir = std::env::temp_dir().join(format!("testkit-pg-{}", std::process::id()));
    let port = free_port();
    std::fs::create_dir_all(&dir).expect("temp dir is writable");
    let as_root = running_as_root();
    if as_root {
        run(Command::new("chown").arg("postgres:").arg(&dir));
    }
    let pg = |tool: &str| {
        let mut command = if as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
            c
        } else {
            Command::new(bin.join(tool))
        };
        command.stdout(Stdio::null());
        command
    };
    run(pg("initdb").arg("-D").arg(&dir).args([
        "-U",
        "postgres",
        "--auth=trust",
        "--no-instructions",
    ]));
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
        dir.display()
    );
    run(pg("pg_ctl")
        .arg("-D")
        .arg(&dir)
        .args(["-o", &options, "-w", "-l"])
        .arg(dir.join("server.log"))
        .arg("start"));
    spawn_watchdog(&pg("pg_ctl"), &dir);
    format!("postgres://postgres@127.0.0.1:{port}/postgres")
}

/// Stops the server and removes its files once this test process is gone.
#[expect(
    clippy::zombie_processes,
    reason = "the watchdog must outlive this process, so it is never waited on"
)]
fn spawn_watchdog(pg_ctl: &Command, dir: &Path) {
    let stop: Vec<String> = std::iter::once(pg_ctl.get_program())
        .chain(pg_ctl.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         {stop} -D '{dir}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        stop = stop.join(" "),
        dir = dir.display(),
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh is available");
}

fn postgres_bin_dir() -> PathBuf {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    candidates.sort_by_key(|bin| {
        bin.parent()
            .and_then(|version| version.file_name())
            .and_then(|name| name.to_str()?.parse::<u32>().ok())
    });
    candidates.pop().unwrap_or_else(|| {
        let output = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .expect("Postgres server binaries are installed (scripts/test installs them)");
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    })
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

fn run(command: &mut Command) {
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(status.success(), "{command:?} failed with {status}");
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_swapped_and_the_query_kept() {
        assert_eq!(
            with_database("postgres://u@h:5/postgres", "t1"),
            "postgres://u@h:5/t1"
        );
        assert_eq!(
            with_database("postgres://u@h:5/postgres?sslmode=disable", "t1"),
            "postgres://u@h:5/t1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h:5", "t1"),
            "postgres://u@h:5/t1"
        );
    }
}
