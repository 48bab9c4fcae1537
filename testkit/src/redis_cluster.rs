//! A private Redis Cluster per test, from `redis-server` processes joined
//! by `redis-cli --cluster create`, as an operator would build one.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// A running cluster: `primaries` shards, each with `replicas` replicas;
/// every node is killed when dropped.
pub struct RedisCluster {
    nodes: Vec<Node>,
    /// How many primaries serve the slots when all is well.
    shards: usize,
    dir: PathBuf,
}

struct Node {
    port: u16,
    child: Option<Child>,
}

impl RedisCluster {
    /// Starts the nodes, joins them, and waits until every node reports the
    /// cluster `ok` with all 16,384 slots served.
    pub fn start(primaries: usize, replicas: usize) -> Self {
        assert!(
            primaries >= 3,
            "redis-cli creates clusters of 3 primaries or more"
        );
        let dir =
            std::env::temp_dir().join(format!("testkit-redis-cluster-{}", uuid::Uuid::new_v4()));
        let nodes = (0..primaries * (1 + replicas))
            .map(|_| {
                let port = free_port();
                let node_dir = dir.join(port.to_string());
                std::fs::create_dir_all(&node_dir).expect("temp dir is writable");
                let child = Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--save", "", "--appendonly", "no"])
                    .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
                    // A replica syncs at once rather than after 5 s: one
                    // that never synced may not take over.
                    .args(["--repl-diskless-sync-delay", "0"])
                    .arg("--dir")
                    .arg(&node_dir)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("redis-server is installed (scripts/test installs it)");
                Node {
                    port,
                    child: Some(child),
                }
            })
            .collect::<Vec<_>>();
        let cluster = Self {
            nodes,
            shards: primaries,
            dir,
        };
        for node in &cluster.nodes {
            wait_for_port(node.port);
        }
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("redis-cli is installed with redis-server");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        cluster.wait_until_ok();
        cluster.wait_for_replicas();
        cluster
    }

    /// `REDIS_CLUSTER_NODES`: every node's URL, comma-separated.
    pub fn nodes(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("redis://127.0.0.1:{}", node.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The ports of the nodes that are primaries now.
    pub fn primaries(&self) -> Vec<u16> {
        self.live_ports()
            .into_iter()
            .filter(|&port| cli(port, &["role"]).starts_with("master"))
            .collect()
    }

    /// Runs `redis-cli` against the node on `port` and returns its output.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        cli(port, args)
    }

    /// Kills the node on `port`, as a crashed host would.
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|node| node.port == port)
            .expect("a node of this cluster");
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until as many live primaries as shards serve every slot and
    /// every live node says the cluster is `ok`: after a primary was
    /// killed, until its replica is promoted and known by all.
    pub fn wait_until_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = self.primaries().len() == self.shards
                && self.live_ports().iter().all(|&port| {
                    let info = cli(port, &["cluster", "info"]);
                    info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
                });
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "the cluster did not become ok");
            // Polling: the cluster gives no other sign that its slots are agreed.
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every replica has synced with its primary, so that it
    /// is eligible to take over.
    fn wait_for_replicas(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.live_ports().into_iter().all(|port| {
            let replication = cli(port, &["info", "replication"]);
            replication.contains("role:master") || replication.contains("master_link_status:up")
        }) {
            assert!(Instant::now() < deadline, "the replicas did not sync");
            // Polling: the replicas give no other sign that they synced.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|node| node.child.is_some())
            .map(|node| node.port)
            .collect()
    }
}

fn cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli is installed with redis-server");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        // Polling: redis-server gives no other sign that it listens.
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
