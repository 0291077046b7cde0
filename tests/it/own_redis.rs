//! `redis-server`s of a test's own on free ports: one server, or a cluster of
//! three masters and three replicas. Stopped on drop; the machine's shared
//! Redis is never touched.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port whose cluster bus port (+10000) is free too.
fn free_cluster_port() -> u16 {
    loop {
        let port = 20_000 + (rand_port() % 9_000);
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
        {
            return port;
        }
    }
}

fn rand_port() -> u16 {
    u16::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..2].try_into().unwrap())
}

fn wait_for_port(port: u16) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "redis-server on {port} did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(port: u16, extra: &[&str]) -> Child {
    Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed")
}

pub fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One `redis-server`.
pub struct OwnRedis {
    pub port: u16,
    child: Child,
}

impl OwnRedis {
    pub fn start_on(port: u16) -> Self {
        let child = spawn(port, &[]);
        wait_for_port(port);
        Self { port, child }
    }

    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three masters and three replicas, made with `redis-cli --cluster create`.
pub struct OwnCluster {
    pub ports: Vec<u16>,
    nodes: Vec<Child>,
    _dir: tempfile::TempDir,
}

impl OwnCluster {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut ports: Vec<u16> = Vec::new();
        while ports.len() < 6 {
            let port = free_cluster_port();
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        let dir_arg = dir.path().to_str().unwrap().to_owned();
        let nodes = ports
            .iter()
            .map(|port| {
                let conf = format!("nodes-{port}.conf");
                spawn(
                    *port,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &conf,
                        "--cluster-node-timeout",
                        "2000",
                        "--dir",
                        &dir_arg,
                    ],
                )
            })
            .collect();
        let cluster = Self {
            ports,
            nodes,
            _dir: dir,
        };
        for port in &cluster.ports {
            wait_for_port(*port);
        }
        let addresses: Vec<String> = cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        cluster.wait_until_ok();
        cluster
    }

    /// Every node agrees the cluster is up and every slot is served.
    pub fn wait_until_ok(&self) {
        let started = Instant::now();
        while !self
            .ports
            .iter()
            .all(|p| cli(*p, &["cluster", "info"]).contains("cluster_state:ok"))
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the cluster did not come up"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn url(&self) -> String {
        let seeds: Vec<String> = self.ports[..3].iter().map(|p| format!("127.0.0.1:{p}")).collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// The master serving `key`, and its replica.
    pub fn master_and_replica_of(&self, key: &str) -> (u16, u16) {
        let slot: u16 = cli(self.ports[0], &["cluster", "keyslot", key])
            .trim()
            .parse()
            .unwrap();
        let nodes = cli(self.ports[0], &["cluster", "nodes"]);
        let port_of = |addr: &str| -> u16 {
            addr.split(['@'])
                .next()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        let master = nodes
            .lines()
            .find(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                fields[2].contains("master")
                    && fields[8..].iter().any(|range| match range.split_once('-') {
                        Some((lo, hi)) => (lo.parse::<u16>().unwrap()..=hi.parse().unwrap()).contains(&slot),
                        None => range.parse::<u16>().ok() == Some(slot),
                    })
            })
            .expect("a master serves the slot");
        let fields: Vec<&str> = master.split_whitespace().collect();
        let replica = nodes
            .lines()
            .find(|line| line.split_whitespace().nth(3) == Some(fields[0]))
            .expect("the master has a replica");
        (
            port_of(fields[1]),
            port_of(replica.split_whitespace().nth(1).unwrap()),
        )
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}
