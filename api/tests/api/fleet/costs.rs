//! What a [`Fleet`] spends: CPU of its processes, of Redis and of
//! Postgres, Redis commands, rows Postgres wrote; the load test's per-user
//! costs.

use testkit::{ApiProcess, WorkerProcess};

use super::Fleet;

/// What the deployment has spent so far: CPU seconds of the api and worker
/// processes, of Redis and of Postgres (every process of its server: the
/// test's own queries too), Redis commands, rows Postgres wrote (inserted,
/// updated or deleted: the test's own polling reads write none).
#[derive(Debug, Clone, Copy, Default)]
pub struct Costs {
    pub api_cpu: f64,
    pub worker_cpu: f64,
    pub redis_cpu: f64,
    pub postgres_cpu: f64,
    pub redis_commands: f64,
    pub postgres_rows: f64,
}

/// Fields of `/proc/<pid>/stat` after the command name (which is in
/// parentheses and may hold spaces): the state is field 0.
fn stat_fields(pid: &str) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Seconds from clock ticks (1/100 s on Linux) in `fields` at `indexes`.
fn ticks(fields: &[String], indexes: &[usize]) -> f64 {
    indexes
        .iter()
        .filter_map(|&index| fields.get(index)?.parse::<f64>().ok())
        .sum::<f64>()
        / 100.0
}

/// CPU seconds of the Postgres server whose postmaster is `postmaster`:
/// its own, its exited children's (reaped, so counted in its `cutime` and
/// `cstime`) and every live child's (backends, writers, autovacuum).
fn postgres_cpu(postmaster: u32) -> f64 {
    let postmaster = postmaster.to_string();
    // utime, stime, cutime, cstime are fields 14–17: 11–14 after the name.
    let own = ticks(&stat_fields(&postmaster), &[11, 12, 13, 14]);
    let children: f64 = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .map(|pid| stat_fields(&pid))
        // The parent's pid is field 4: 1 after the name.
        .filter(|fields| fields.get(1) == Some(&postmaster))
        .map(|fields| ticks(&fields, &[11, 12]))
        .sum();
    own + children
}

impl Fleet {
    /// The [`Costs`] so far.
    pub async fn costs(&self) -> Costs {
        let redis_ports = self.redis_ports();
        // The postmaster: the parent of this connection's backend (0 when
        // Postgres runs on another machine, whose CPU is not ours to read).
        let backend: i32 = sqlx::query_scalar("select pg_backend_pid()")
            .fetch_one(&self.app.pool)
            .await
            .expect("read");
        let postmaster = stat_fields(&backend.to_string())
            .get(1)
            .and_then(|ppid| ppid.parse().ok())
            .unwrap_or(0);
        let rows: i64 = sqlx::query_scalar(
            "select tup_inserted + tup_updated + tup_deleted from pg_stat_database
             where datname = current_database()",
        )
        .fetch_one(&self.app.pool)
        .await
        .expect("read");
        Costs {
            api_cpu: self.api_processes.iter().map(ApiProcess::cpu_seconds).sum(),
            worker_cpu: self.workers.iter().map(WorkerProcess::cpu_seconds).sum(),
            redis_cpu: redis_ports
                .iter()
                .map(|&port| redis_info(port, "used_cpu_user") + redis_info(port, "used_cpu_sys"))
                .sum(),
            postgres_cpu: if postmaster > 1 {
                postgres_cpu(postmaster)
            } else {
                0.0
            },
            redis_commands: redis_ports
                .iter()
                .map(|&port| redis_info(port, "total_commands_processed"))
                .sum(),
            postgres_rows: rows as f64,
        }
    }
}

impl Fleet {
    /// Redis's `used_memory` in bytes, over every primary.
    pub fn redis_used_memory(&self) -> f64 {
        self.redis_ports()
            .into_iter()
            .map(|port| redis_info(port, "used_memory"))
            .sum()
    }

    fn redis_ports(&self) -> Vec<u16> {
        match &self.cluster {
            Some(cluster) => cluster.primaries(),
            None => vec![self.app.redis.port()],
        }
    }
}

/// One numeric field of Redis's `INFO` on `port`; 0 if unreadable.
fn redis_info(port: u16, field: &str) -> f64 {
    let output = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string(), "info", "everything"])
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default();
    output
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

impl std::ops::Sub for Costs {
    type Output = Costs;

    fn sub(self, before: Costs) -> Costs {
        Costs {
            api_cpu: self.api_cpu - before.api_cpu,
            worker_cpu: self.worker_cpu - before.worker_cpu,
            redis_cpu: self.redis_cpu - before.redis_cpu,
            postgres_cpu: self.postgres_cpu - before.postgres_cpu,
            redis_commands: self.redis_commands - before.redis_commands,
            postgres_rows: self.postgres_rows - before.postgres_rows,
        }
    }
}

impl Costs {
    /// These costs less `rate` (costs per second) over `seconds`: what the
    /// work cost beyond what the deployment spends idle.
    pub fn beyond(self, rate: Costs, seconds: f64) -> Costs {
        Costs {
            api_cpu: (self.api_cpu - rate.api_cpu * seconds).max(0.0),
            worker_cpu: (self.worker_cpu - rate.worker_cpu * seconds).max(0.0),
            redis_cpu: (self.redis_cpu - rate.redis_cpu * seconds).max(0.0),
            postgres_cpu: (self.postgres_cpu - rate.postgres_cpu * seconds).max(0.0),
            redis_commands: (self.redis_commands - rate.redis_commands * seconds).max(0.0),
            postgres_rows: (self.postgres_rows - rate.postgres_rows * seconds).max(0.0),
        }
    }

    /// These costs divided by `seconds`: a rate.
    pub fn per_second(self, seconds: f64) -> Costs {
        Costs {
            api_cpu: self.api_cpu / seconds,
            worker_cpu: self.worker_cpu / seconds,
            redis_cpu: self.redis_cpu / seconds,
            postgres_cpu: self.postgres_cpu / seconds,
            redis_commands: self.redis_commands / seconds,
            postgres_rows: self.postgres_rows / seconds,
        }
    }
}
