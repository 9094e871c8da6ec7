//! Real `nats-server` processes for tests: one server, or a three-server
//! JetStream cluster, each on its own loopback ports with its own storage
//! directory, stopped (and the directory removed) when dropped.
//!
//! The binary is `$SHEP_NATS_SERVER`, else `nats-server` on the `PATH` or in
//! `/usr/sbin` / `/usr/bin` (Debian's package). Without one, [`available`]
//! says so: a test then skips with a message, unless `SHEP_REQUIRE_NATS` is
//! set (CI sets it), in which case it fails.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `nats-server` binary, if there is one.
pub fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SHEP_NATS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into()])
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
}

/// Whether tests can start a `nats-server`; prints why not, and panics
/// instead when `SHEP_REQUIRE_NATS` is set.
pub fn available(test: &str) -> bool {
    if binary().is_some() {
        return true;
    }
    assert!(
        std::env::var_os("SHEP_REQUIRE_NATS").is_none(),
        "{test}: SHEP_REQUIRE_NATS is set but no nats-server binary was found \
         (install Debian's `nats-server`, or set SHEP_NATS_SERVER)"
    );
    eprintln!(
        "{test}: SKIPPED: no nats-server binary (install Debian's `nats-server`, or set SHEP_NATS_SERVER)"
    );
    false
}

/// A free loopback port (free when asked; taken by the server soon after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// One `nats-server` with JetStream.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    /// Client port.
    pub port: u16,
    /// Cluster port, in a cluster.
    pub cluster_port: Option<u16>,
    /// HTTP monitoring port (`/jsz`).
    pub monitor_port: u16,
    name: String,
    store: PathBuf,
    routes: Vec<u16>,
}

impl NatsServer {
    /// A single server with JetStream, on a free port.
    pub fn start() -> Self {
        let mut server = Self::new("single", None, Vec::new());
        server.spawn();
        server
    }

    fn new(name: &str, cluster_port: Option<u16>, routes: Vec<u16>) -> Self {
        let store = std::env::temp_dir().join(format!(
            "shep-nats-{name}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&store).expect("a storage directory for nats-server");
        Self {
            child: None,
            port: free_port(),
            cluster_port,
            monitor_port: free_port(),
            name: name.to_owned(),
            store,
            routes,
        }
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts (or restarts) the process and waits for its client port.
    pub fn spawn(&mut self) {
        let binary = binary().expect("a nats-server binary");
        let mut command = Command::new(binary);
        command
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(&self.store)
            .args(["-n", &self.name])
            .arg("-m")
            .arg(self.monitor_port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(cluster_port) = self.cluster_port {
            let routes: Vec<String> = self
                .routes
                .iter()
                .map(|port| format!("nats://127.0.0.1:{port}"))
                .collect();
            command
                .args(["--cluster_name", "shep-test", "--cluster"])
                .arg(format!("nats://127.0.0.1:{cluster_port}"))
                .arg("--routes")
                .arg(routes.join(","));
        }
        self.child = Some(command.spawn().expect("starting nats-server"));
        let address: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {address}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's name (`-n`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// GETs `path` from the monitoring port: the JSON body, if it answered.
    pub fn monitor(&self, path: &str) -> Option<serde_json::Value> {
        use std::io::{Read as _, Write as _};
        let address: SocketAddr = ([127, 0, 0, 1], self.monitor_port).into();
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (_, body) = response.split_once("\r\n\r\n")?;
        serde_json::from_str(body).ok()
    }

    /// Kills the process (SIGKILL), keeping its storage for a restart.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// Three `nats-server`s routed into one JetStream cluster on loopback.
#[derive(Debug)]
pub struct NatsCluster {
    pub servers: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts three servers and waits until their JetStream has a leader.
    pub fn start() -> Self {
        let cluster_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut servers: Vec<NatsServer> = (0..3)
            .map(|index| {
                let routes = cluster_ports
                    .iter()
                    .enumerate()
                    .filter(|(other, _)| *other != index)
                    .map(|(_, port)| *port)
                    .collect();
                NatsServer::new(&format!("n{index}"), Some(cluster_ports[index]), routes)
            })
            .collect();
        for server in &mut servers {
            server.spawn();
        }
        let cluster = Self { servers };
        cluster.wait_for_meta_leader();
        cluster
    }

    /// Waits until every server knows the JetStream meta leader, so a
    /// stream can be created at once.
    fn wait_for_meta_leader(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let known = self.servers.iter().all(|server| {
                server.monitor("/jsz").is_some_and(|jsz| {
                    jsz["meta_cluster"]["leader"]
                        .as_str()
                        .is_some_and(|leader| !leader.is_empty())
                })
            });
            if known {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the JetStream cluster elected no meta leader"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The index of the server leading `stream`'s replicas, as the servers'
    /// monitoring endpoints report it.
    pub fn stream_leader(&self, stream: &str) -> Option<usize> {
        let leader = self.servers.iter().find_map(|server| {
            let jsz = server.monitor("/jsz?accounts=true&streams=true")?;
            jsz["account_details"]
                .as_array()?
                .iter()
                .flat_map(|account| {
                    account["stream_detail"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .find(|detail| detail["name"] == stream)
                .and_then(|detail| detail["cluster"]["leader"].as_str().map(str::to_owned))
        })?;
        self.servers
            .iter()
            .position(|server| server.name() == leader)
    }

    /// Every client URL, comma-separated (a client fails over between them).
    pub fn urls(&self) -> String {
        self.servers
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}
