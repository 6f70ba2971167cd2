//! Real `nats-server` processes for the remote placement tests: a plain server, servers
//! with user/password or NKey authorization, and a cluster of servers routed to each other,
//! each on free 127.0.0.1 ports, ready to accept clients when its constructor returns.
//!
//! The server comes from the Debian package `nats-server`; when it is missing,
//! `scripts/test-deps.sh` is run once to install it (it does that only as root with apt-get,
//! and nothing otherwise). [`nats_server`] returns `None` when there is still no server,
//! after a loud SKIPPED line on stderr; a test that needs a server starts with
//!
//! ```ignore
//! let Some(_) = nats_server() else { return };
//! ```
//!
//! Each [`Nats`] owns a temporary directory with its config file and its log (the server's
//! stdout and stderr, kept out of the test's terminal and quoted when it fails to start).
//! The process is killed and reaped when the [`Nats`] is dropped, panics included.

// Helpers for the remote tests: not every one is used by every test.
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take to accept clients, and a cluster to route.
const PATIENCE: Duration = Duration::from_secs(10);

/// How many times a server (or a whole cluster) is started on fresh ports before giving
/// up: a port picked free may be taken by someone else before the server binds it.
const ATTEMPTS: usize = 3;

fn find_nats_server() -> Option<PathBuf> {
    // Debian installs it in /usr/sbin, which is not on every user's PATH.
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
}

/// The `nats-server` binary, after installing it with scripts/test-deps.sh (once per test
/// run) if needed, or `None` after a loud SKIPPED line on stderr naming the calling test.
pub fn nats_server() -> Option<PathBuf> {
    static INSTALL: Once = Once::new();
    if let Some(p) = find_nats_server() {
        return Some(p);
    }
    INSTALL.call_once(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/test-deps.sh");
        eprintln!("nats-server is missing: running {}", script.display());
        match Command::new("bash").arg(&script).status() {
            Ok(s) if s.success() => {}
            other => eprintln!("{}: {other:?}", script.display()),
        }
    });
    let found = find_nats_server();
    if found.is_none() {
        let test = std::thread::current()
            .name()
            .unwrap_or("a remote placement test")
            .to_string();
        eprintln!(
            "\n==== SKIPPED {test}: no nats-server, so remote placement was not tested; \
             install with: sudo apt-get install nats-server (or run scripts/test-deps.sh as root) ====\n"
        );
    }
    found
}

/// A fresh user NKey: `(public key "U…", seed "SU…")`. Give the public key to
/// [`Nats::with_nkey`] and the seed to the client.
pub fn user_nkey() -> (String, String) {
    let pair = nkeys::KeyPair::new_user();
    (
        pair.public_key(),
        pair.seed().expect("a user key has a seed"),
    )
}

/// A test certificate authority and a server certificate it signed for 127.0.0.1 (an IP
/// subject alternative name), as PEM files in a temporary directory: for
/// [`Nats::with_tls`] and a client's `tls_ca`.
pub struct TlsFiles {
    /// The CA's certificate: what a client trusts (`tls_ca`).
    pub ca: PathBuf,
    /// The server's certificate, for 127.0.0.1.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
    _dir: tempfile::TempDir,
}

/// Makes a fresh CA and a server certificate for 127.0.0.1 with the `openssl` command, or
/// returns `None` after a loud SKIPPED line on stderr naming the calling test when there is
/// no `openssl` (a failure of `openssl` itself panics with its output).
pub fn tls_files() -> Option<TlsFiles> {
    let test = std::thread::current()
        .name()
        .unwrap_or("a remote placement test")
        .to_string();
    if Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!(
            "\n==== SKIPPED {test}: no openssl command, so NATS over TLS was not tested; \
             install with: sudo apt-get install openssl ====\n"
        );
        return None;
    }
    let dir = tempfile::tempdir().expect("a directory for certificates");
    let at = |name: &str| dir.path().join(name);
    std::fs::write(
        at("server.ext"),
        "subjectAltName = IP:127.0.0.1\n\
         basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature, keyEncipherment\n\
         extendedKeyUsage = serverAuth\n",
    )
    .expect("write server.ext");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let steps: [Vec<&str>; 3] = [
        [
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
            &["-subj", "/CN=membrane test CA"],
            &["-addext", "basicConstraints=critical,CA:TRUE"],
            &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ]
        .concat(),
        [
            &["req"][..],
            &ec,
            &["-keyout", "server.key", "-out", "server.csr"],
            &["-subj", "/CN=127.0.0.1"],
        ]
        .concat(),
        vec![
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {}: {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Some(TlsFiles {
        ca: at("ca.pem"),
        cert: at("server.pem"),
        key: at("server.key"),
        _dir: dir,
    })
}

/// The JetStream block of a server's config; `$STORE_DIR` becomes a directory of its own.
const JETSTREAM: &str =
    "jetstream {\n  store_dir: $STORE_DIR\n  max_memory_store: 64MB\n  max_file_store: 1GB\n}\n";

/// A running `nats-server` on 127.0.0.1, killed when dropped.
pub struct Nats {
    /// `nats://127.0.0.1:<port>`, for clients.
    pub url: String,
    /// The client port.
    pub port: u16,
    /// The HTTP monitoring port (`/varz`, `/connz`, `/routez`…).
    pub monitor_port: u16,
    /// The route port, for a member of a [`Nats::cluster`].
    pub cluster_port: Option<u16>,
    /// The server's name (`server_name`), unique per test run.
    pub name: String,
    exe: PathBuf,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

/// The ports one server listens on.
struct Ports {
    client: u16,
    monitor: u16,
    cluster: u16,
}

/// A port free on 127.0.0.1 now (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

impl Ports {
    fn pick() -> Ports {
        Ports {
            client: free_port(),
            monitor: free_port(),
            cluster: free_port(),
        }
    }
}

/// A server name no other server of this test run has.
fn unique_name() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "membrane-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `text` as a quoted string of the NATS config format (JSON's escapes are a subset of its).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

impl Nats {
    /// A server without authorization on a free 127.0.0.1 port.
    pub fn start() -> Nats {
        Nats::single("")
    }

    /// A server that accepts only the given `(user, password)` pairs.
    pub fn with_users(users: &[(&str, &str)]) -> Nats {
        let users: Vec<String> = users
            .iter()
            .map(|(user, password)| {
                format!(
                    "    {{ user: {}, password: {} }}\n",
                    quoted(user),
                    quoted(password)
                )
            })
            .collect();
        Nats::single(&format!(
            "authorization {{\n  users = [\n{}  ]\n}}\n",
            users.concat()
        ))
    }

    /// A server that accepts only the user NKey `public_key` ("U…", see [`user_nkey`]).
    pub fn with_nkey(public_key: &str) -> Nats {
        Nats::single(&format!(
            "authorization {{\n  users = [\n    {{ nkey: {} }}\n  ]\n}}\n",
            quoted(public_key)
        ))
    }

    /// A server without authorization that requires TLS of its clients, with the
    /// certificate and key of `tls` ([`tls_files`]). Its [`Nats::url`] still says
    /// `nats://`: a client that wants TLS says `tls://127.0.0.1:<port>`.
    pub fn with_tls(tls: &TlsFiles) -> Nats {
        Nats::single(&format!(
            "tls {{\n  cert_file: {}\n  key_file: {}\n  timeout: 2\n}}\n",
            quoted(&tls.cert.to_string_lossy()),
            quoted(&tls.key.to_string_lossy())
        ))
    }

    /// A server without authorization with JetStream on, its store in the server's
    /// temporary directory (kept across [`Nats::restart`]).
    pub fn with_jetstream() -> Nats {
        Nats::single(JETSTREAM)
    }

    /// A server without authorization that carries messages of up to `bytes` (its
    /// `max_payload`: 1 MiB by default, at most 64 MiB), as an operator may raise it.
    pub fn with_max_payload(bytes: usize) -> Nats {
        Nats::single(&format!("max_payload: {bytes}\n"))
    }

    /// `n` servers routed to each other (a full mesh of explicit routes), returned once every
    /// one has a route to each of the others.
    pub fn cluster(n: usize) -> Vec<Nats> {
        Nats::cluster_with(n, "")
    }

    /// A cluster of `n` servers with JetStream on, each its store in its own directory,
    /// waited for until JetStream has a meta leader (streams can be made).
    pub fn jetstream_cluster(n: usize) -> Vec<Nats> {
        let mut servers = Nats::cluster_with(n, JETSTREAM);
        // Electing the meta leader follows the routes; a loaded machine may take a while.
        let deadline = Instant::now() + 3 * PATIENCE;
        for s in &mut servers {
            if let Err(e) = s.wait_jetstream(deadline) {
                panic!("{e}");
            }
        }
        servers
    }

    /// Waits until the server's JetStream knows its cluster's meta leader.
    fn wait_jetstream(&mut self, deadline: Instant) -> Result<(), String> {
        loop {
            let leader = http_get(self.monitor_port, "/jsz")
                .ok()
                .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
                .and_then(|v| v["meta_cluster"]["leader"].as_str().map(str::to_string))
                .filter(|l| !l.is_empty());
            if leader.is_some() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.failure("has no JetStream meta leader in time"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn cluster_with(n: usize, extra: &str) -> Vec<Nats> {
        assert!(n >= 2, "a cluster has at least 2 servers");
        let exe = nats_server().expect("nats-server: call nats_server() first and skip without it");
        let cluster = unique_name();
        let mut failures = Vec::new();
        for _ in 0..ATTEMPTS {
            let ports: Vec<Ports> = (0..n).map(|_| Ports::pick()).collect();
            let mut servers: Vec<Nats> = (0..n)
                .map(|i| {
                    let routes: Vec<String> = (0..n)
                        .filter(|&j| j != i)
                        .map(|j| quoted(&format!("nats-route://127.0.0.1:{}", ports[j].cluster)))
                        .collect();
                    let config = format!(
                        "cluster {{\n  name: {}\n  listen: \"127.0.0.1:{}\"\n  routes = [\n    {}\n  ]\n}}\n{extra}",
                        quoted(&cluster),
                        ports[i].cluster,
                        routes.join("\n    ")
                    );
                    Nats::prepare(&exe, &ports[i], Some(ports[i].cluster), &config)
                })
                .collect();
            // All started before any is waited for: they come up (and route) in parallel.
            let started = servers.iter_mut().try_for_each(|s| s.spawn());
            let deadline = Instant::now() + PATIENCE;
            let ready = started.and_then(|()| {
                servers
                    .iter_mut()
                    .try_for_each(|s| s.wait_ready(deadline))?;
                servers
                    .iter_mut()
                    .try_for_each(|s| s.wait_routes(n - 1, deadline))
            });
            match ready {
                Ok(()) => return servers,
                Err(e) => failures.push(e),
            }
        }
        panic!(
            "a cluster of {n} nats-servers did not come up in {ATTEMPTS} attempts:\n{}",
            failures.join("\n")
        );
    }

    /// One server with `config` (authorization), on fresh ports until it starts.
    fn single(config: &str) -> Nats {
        let exe = nats_server().expect("nats-server: call nats_server() first and skip without it");
        let mut failures = Vec::new();
        for _ in 0..ATTEMPTS {
            let mut server = Nats::prepare(&exe, &Ports::pick(), None, config);
            let started = server
                .spawn()
                .and_then(|()| server.wait_ready(Instant::now() + PATIENCE));
            match started {
                Ok(()) => return server,
                Err(e) => failures.push(e),
            }
        }
        panic!(
            "nats-server did not start in {ATTEMPTS} attempts:\n{}",
            failures.join("\n")
        );
    }

    /// A server not started yet: its directory and config file.
    fn prepare(exe: &Path, ports: &Ports, cluster_port: Option<u16>, config: &str) -> Nats {
        let dir = tempfile::tempdir().expect("a directory for nats-server");
        let name = unique_name();
        let path = dir.path().join("nats.conf");
        let config = config.replace(
            "$STORE_DIR",
            &quoted(&dir.path().join("js").to_string_lossy()),
        );
        std::fs::write(
            &path,
            format!(
                "# Written by tests/remote/nats.rs; the ports are on the command line:\n\
                 # -a 127.0.0.1 -p {} -m {}\n\
                 server_name: {}\n{config}",
                ports.client,
                ports.monitor,
                quoted(&name)
            ),
        )
        .expect("write nats.conf");
        Nats {
            url: format!("nats://127.0.0.1:{}", ports.client),
            port: ports.client,
            monitor_port: ports.monitor,
            cluster_port,
            name,
            exe: exe.to_path_buf(),
            config: path,
            log: dir.path().join("nats.log"),
            child: None,
            dir,
        }
    }

    /// Starts the process (its output appended to the log), without waiting for it.
    fn spawn(&mut self) -> Result<(), String> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&self.exe)
            .arg("-c")
            .arg(&self.config)
            .args(["-a", "127.0.0.1"])
            .args(["-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string()])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.exe.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until the client port answers with this server's INFO, then checks the process
    /// is still there; the error quotes the log.
    fn wait_ready(&mut self, deadline: Instant) -> Result<(), String> {
        loop {
            if let Some(status) = self.exited() {
                return Err(self.failure(&format!("exited ({status}) before accepting clients")));
            }
            if self.answers_info() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(self.failure("did not accept clients in time"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        match self.exited() {
            Some(status) => {
                Err(self.failure(&format!("exited ({status}) after accepting clients")))
            }
            None => Ok(()),
        }
    }

    /// Whether the client port accepts a connection and sends INFO naming this server (and
    /// not some other server that took the port).
    fn answers_info(&self) -> bool {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut line = String::new();
        let _ = BufReader::new(stream).read_line(&mut line);
        line.starts_with("INFO {")
            && line.contains(&format!("\"server_name\":{}", quoted(&self.name)))
    }

    /// The process's exit status, if it has exited (or was never started).
    fn exited(&mut self) -> Option<String> {
        match self.child.as_mut().map(|c| c.try_wait()) {
            None => Some("not running".into()),
            Some(Ok(None)) => None,
            Some(Ok(Some(status))) => Some(status.to_string()),
            Some(Err(e)) => Some(e.to_string()),
        }
    }

    /// A failure message: what happened, and the server's log.
    fn failure(&self, what: &str) -> String {
        format!(
            "nats-server {} on 127.0.0.1:{} {what}; its log:\n{}",
            self.name,
            self.port,
            self.log()
        )
    }

    /// Everything the server wrote (stdout and stderr), across restarts.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// How many routes the server has now (`num_routes` of `/routez`), `None` when the
    /// monitoring endpoint does not answer.
    pub fn num_routes(&self) -> Option<usize> {
        let body = http_get(self.monitor_port, "/routez").ok()?;
        let routez: serde_json::Value = serde_json::from_str(&body).ok()?;
        routez["num_routes"].as_u64().map(|n| n as usize)
    }

    /// Waits (up to 10 s) until the server has `n` routes, for a cluster member after a
    /// [`Nats::restart`] (of it or of a peer); panics with the log when it does not.
    pub fn wait_for_routes(&mut self, n: usize) {
        if let Err(e) = self.wait_routes(n, Instant::now() + PATIENCE) {
            panic!("{e}");
        }
    }

    fn wait_routes(&mut self, n: usize, deadline: Instant) -> Result<(), String> {
        loop {
            if let Some(status) = self.exited() {
                return Err(self.failure(&format!("exited ({status}) before routing")));
            }
            let routes = self.num_routes();
            if routes == Some(n) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.failure(&format!("has {routes:?} routes, not {n}, in time")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's process id while it runs (to stop it with SIGSTOP, say).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Kills the server now (SIGKILL: no goodbye to clients or routes) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again with the same ports and config (killing it first if it is
    /// running), and waits until it accepts clients. A cluster member's routes come back
    /// within a second or so: [`Nats::wait_for_routes`].
    pub fn restart(&mut self) {
        self.kill();
        let started = self
            .spawn()
            .and_then(|()| self.wait_ready(Instant::now() + PATIENCE));
        if let Err(e) = started {
            self.kill();
            panic!("restarting: {e}");
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The body of `GET path` on 127.0.0.1:`port`, over plain HTTP/1.0.
fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.lines().next().unwrap_or_default();
    if !status.contains(" 200 ") {
        return Err(std::io::Error::other(format!("GET {path}: {status}")));
    }
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body);
    Ok(body.unwrap_or_default().to_string())
}

/// A raw NATS protocol connection, std only.
struct Wire {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Wire {
    /// Connects to `port` and returns the connection with its INFO line.
    fn connect(port: u16) -> (Wire, String) {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let writer = stream.try_clone().unwrap();
        let mut wire = Wire {
            reader: BufReader::new(stream),
            writer,
        };
        let info = wire.line();
        (wire, info)
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("a protocol line");
        line
    }

    /// Sends CONNECT with `options` and a PING, and returns the first answer that is not
    /// INFO: `PONG` when accepted, `-ERR …` when not.
    fn hello(&mut self, options: &serde_json::Value) -> String {
        let mut connect = serde_json::json!({"verbose": false, "pedantic": false});
        connect
            .as_object_mut()
            .unwrap()
            .extend(options.as_object().unwrap().clone());
        write!(self.writer, "CONNECT {connect}\r\nPING\r\n").unwrap();
        loop {
            let line = self.line();
            if !line.starts_with("INFO ") {
                return line.trim_end().to_string();
            }
        }
    }
}

/// The INFO object a server sends first, checking it is one.
fn info(port: u16) -> serde_json::Value {
    let (_, line) = Wire::connect(port);
    assert!(line.starts_with("INFO {"), "not a NATS INFO line: {line:?}");
    serde_json::from_str(line["INFO ".len()..].trim_end()).expect("INFO is JSON")
}

/// URL-safe base64 without padding: how a client sends its NKey signature.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[test]
fn nats_server_starts_and_answers() {
    let Some(_) = nats_server() else { return };

    let t = Instant::now();
    let plain = Nats::start();
    let plain_took = t.elapsed();
    assert_eq!(info(plain.port)["server_name"], plain.name.as_str());
    assert_eq!(plain.url, format!("nats://127.0.0.1:{}", plain.port));
    let (mut wire, _) = Wire::connect(plain.port);
    assert_eq!(wire.hello(&serde_json::json!({})), "PONG");

    let t = Instant::now();
    let cluster = Nats::cluster(3);
    let cluster_took = t.elapsed();
    for server in &cluster {
        assert_eq!(info(server.port)["server_name"], server.name.as_str());
        assert_eq!(server.num_routes(), Some(2), "{}", server.log());
    }
    eprintln!("nats-server ready in {plain_took:?}; a routed cluster of 3 in {cluster_took:?}");

    let users = Nats::with_users(&[("alice", "s3cret \"quoted\""), ("bob", "pw")]);
    let (mut wire, _) = Wire::connect(users.port);
    assert_eq!(
        wire.hello(&serde_json::json!({})),
        "-ERR 'Authorization Violation'"
    );
    let (mut wire, _) = Wire::connect(users.port);
    assert_eq!(
        wire.hello(&serde_json::json!({"user": "alice", "pass": "wrong"})),
        "-ERR 'Authorization Violation'"
    );
    let (mut wire, _) = Wire::connect(users.port);
    assert_eq!(
        wire.hello(&serde_json::json!({"user": "alice", "pass": "s3cret \"quoted\""})),
        "PONG"
    );
}

#[test]
fn nats_server_checks_nkey_signatures() {
    let Some(_) = nats_server() else { return };
    let (public, seed) = user_nkey();
    assert!(public.starts_with('U') && seed.starts_with("SU"));
    let server = Nats::with_nkey(&public);

    let (mut wire, _) = Wire::connect(server.port);
    assert_eq!(
        wire.hello(&serde_json::json!({})),
        "-ERR 'Authorization Violation'"
    );

    // Another key signing the nonce is refused; the right one is accepted.
    let sign = |seed: &str, public: &str| {
        let (mut wire, line) = Wire::connect(server.port);
        let info: serde_json::Value = serde_json::from_str(&line["INFO ".len()..]).unwrap();
        let nonce = info["nonce"]
            .as_str()
            .expect("INFO has a nonce for NKey users");
        let pair = nkeys::KeyPair::from_seed(seed).unwrap();
        let sig = base64url(&pair.sign(nonce.as_bytes()).unwrap());
        wire.hello(&serde_json::json!({"nkey": public, "sig": sig}))
    };
    let (other_public, other_seed) = user_nkey();
    assert_eq!(
        sign(&other_seed, &other_public),
        "-ERR 'Authorization Violation'"
    );
    assert_eq!(sign(&seed, &public), "PONG", "{}", server.log());
}

#[test]
fn nats_server_restarts_on_its_port() {
    let Some(_) = nats_server() else { return };
    let mut server = Nats::start();
    server.kill();
    assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, server.port)).is_err());
    server.restart();
    assert_eq!(info(server.port)["server_name"], server.name.as_str());

    // A cluster member killed and restarted routes to its peers again.
    let mut cluster = Nats::cluster(3);
    cluster[0].kill();
    cluster[1].wait_for_routes(1);
    cluster[0].restart();
    for server in &mut cluster {
        server.wait_for_routes(2);
    }
}

#[test]
fn base64url_encodes() {
    assert_eq!(base64url(b""), "");
    assert_eq!(base64url(b"f"), "Zg");
    assert_eq!(base64url(b"fo"), "Zm8");
    assert_eq!(base64url(b"foo"), "Zm9v");
    assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
}
