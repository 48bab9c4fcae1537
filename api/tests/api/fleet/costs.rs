//! What a [`Fleet`] spends: CPU of its processes and of Redis, Redis
//! commands, rows Postgres wrote; the load test's per-user costs.

use testkit::{ApiProcess, WorkerProcess};

use super::Fleet;

/// What the deployment has spent so far: CPU seconds of the api and worker
/// processes and of Redis, Redis commands, rows Postgres wrote (inserted,
/// updated or deleted: the test's own polling reads write none).
#[derive(Debug, Clone, Copy, Default)]
pub struct Costs {
    pub api_cpu: f64,
    pub worker_cpu: f64,
    pub redis_cpu: f64,
    pub redis_commands: f64,
    pub postgres_rows: f64,
}

impl Fleet {
    /// The [`Costs`] so far.
    pub async fn costs(&self) -> Costs {
        let redis_ports: Vec<u16> = match &self.cluster {
            Some(cluster) => cluster.primaries(),
            None => vec![self.app.redis.port()],
        };
        let info = |port: u16, field: &str| -> f64 {
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
        };
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
                .map(|&port| info(port, "used_cpu_user") + info(port, "used_cpu_sys"))
                .sum(),
            redis_commands: redis_ports
                .iter()
                .map(|&port| info(port, "total_commands_processed"))
                .sum(),
            postgres_rows: rows as f64,
        }
    }
}

impl std::ops::Sub for Costs {
    type Output = Costs;

    fn sub(self, before: Costs) -> Costs {
        Costs {
            api_cpu: self.api_cpu - before.api_cpu,
            worker_cpu: self.worker_cpu - before.worker_cpu,
            redis_cpu: self.redis_cpu - before.redis_cpu,
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
            redis_commands: self.redis_commands / seconds,
            postgres_rows: self.postgres_rows / seconds,
        }
    }
}
