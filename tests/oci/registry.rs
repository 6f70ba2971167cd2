//! A real OCI registry for the tests: the CNCF distribution registry from Debian's
//! `docker-registry` package (`/usr/bin/docker-registry`), on a free 127.0.0.1 port, its
//! storage in a temporary directory of its own, ready when [`Registry::start`] returns
//! (its `/v2/` answers), killed and reaped when dropped.
//!
//! When the binary is missing, `scripts/test-deps.sh` is run once to install it (it does
//! that only as root with apt-get); [`Registry::start`] returns `None` when there is still
//! none, after a loud SKIPPED line on stderr. A test that needs a registry starts with
//!
//! ```ignore
//! let Some(reg) = Registry::start() else { return };
//! ```
//!
//! Besides the registry, a small HTTP/1.1 client ([`Registry::http`]) that puts blobs and
//! manifests by hand, as another tool would, and reaches into the storage directory
//! ([`Registry::blob_data`]) to alter what the registry serves.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

/// How long a registry may take to answer `/v2/` after it starts: a hang guard.
const PATIENCE: Duration = Duration::from_secs(20);

/// Fresh ports tried before giving up (a port picked free may be taken before the
/// registry binds it).
const ATTEMPTS: usize = 3;

fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("docker-registry"))
        .find(|p| p.is_file())
}

/// The registry binary, after installing it with scripts/test-deps.sh (once per test run)
/// if needed, or `None` after a loud SKIPPED line naming the calling test.
fn binary() -> Option<PathBuf> {
    static INSTALL: Once = Once::new();
    if let Some(p) = find() {
        return Some(p);
    }
    INSTALL.call_once(|| {
        let script = crate::common::repo_root().join("scripts/test-deps.sh");
        eprintln!("docker-registry is missing: running {}", script.display());
        match Command::new("bash").arg(&script).status() {
            Ok(s) if s.success() => {}
            other => eprintln!("{}: {other:?}", script.display()),
        }
    });
    let found = find();
    if found.is_none() {
        let test = std::thread::current()
            .name()
            .unwrap_or("an OCI registry test")
            .to_string();
        eprintln!(
            "\n==== SKIPPED {test}: no docker-registry, so pulling from OCI registries was not tested; \
             install with: sudo apt-get install docker-registry (or run scripts/test-deps.sh as root) ====\n"
        );
    }
    found
}

/// An HTTP answer: status, headers (lowercase names) and body.
pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// A running registry, killed when dropped.
pub struct Registry {
    /// Its port on 127.0.0.1.
    pub port: u16,
    exe: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Registry {
    /// A registry without authentication.
    pub fn start() -> Option<Registry> {
        Registry::with_auth("")
    }

    /// A registry that asks for HTTP basic credentials: `user` with the bcrypt `hash` of
    /// its password (htpasswd's format).
    pub fn with_htpasswd(user: &str, hash: &str) -> Option<Registry> {
        Registry::with_auth(&format!("{user}:{hash}\n"))
    }

    fn with_auth(htpasswd: &str) -> Option<Registry> {
        let exe = binary()?;
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            let dir = tempfile::tempdir().expect("a directory for the registry");
            let auth = if htpasswd.is_empty() {
                String::new()
            } else {
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, htpasswd).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: membrane-test\n    path: {}\n",
                    file.display()
                )
            };
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .expect("a free port on 127.0.0.1")
                .port();
            // No blob descriptor cache: what the tests change in the storage shows at once.
            let config = format!(
                "version: 0.1\n\
                 log:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: membrane-test\n{auth}",
                dir.path().join("storage").display()
            );
            std::fs::write(dir.path().join("config.yml"), config).expect("write config.yml");
            let mut reg = Registry {
                port,
                exe: exe.clone(),
                dir,
                child: None,
            };
            match reg.spawn() {
                Ok(()) => return Some(reg),
                Err(e) => last = e,
            }
        }
        panic!("the registry did not start in {ATTEMPTS} attempts: {last}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::File::create(self.dir.path().join("registry.log"))
            .map_err(|e| e.to_string())?;
        let child = Command::new(&self.exe)
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.exe.display()))?;
        self.child = Some(child);
        let end = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!("the registry exited ({status}): {}", self.log()));
            }
            if let Ok((status, _, _)) = self.http("GET", "/v2/", &[], b"")
                && (status == 200 || status == 401)
            {
                return Ok(());
            }
            if Instant::now() > end {
                return Err(format!(
                    "no answer on /v2/ within {PATIENCE:?}: {}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the registry wrote to stdout and stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `oci://127.0.0.1:<port>/<rest>`.
    pub fn reference(&self, rest: &str) -> String {
        format!("oci://127.0.0.1:{}/{rest}", self.port)
    }

    /// The file holding blob `digest` (`sha256:<hex>`) in the registry's storage.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Stops the registry (its storage stays until the `Registry` is dropped).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// One HTTP/1.1 request to the registry. Headers come back with lowercase names.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Answer> {
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))?;
        s.set_read_timeout(Some(PATIENCE))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)?;
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("no end of head"))?;
        let head = String::from_utf8_lossy(&answer[..split]).into_owned();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other("no status"))?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Ok((status, headers, answer[split + 4..].to_vec()))
    }

    /// Uploads `bytes` as a blob of `repository` (POST, then PUT with the digest), as any
    /// client of the distribution API does. Returns the digest.
    pub fn put_blob(&self, repository: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let (status, headers, _) = self
            .http(
                "POST",
                &format!("/v2/{repository}/blobs/uploads/"),
                &[],
                b"",
            )
            .expect("start an upload");
        assert_eq!(status, 202, "start an upload");
        let location = header(&headers, "location").expect("an upload location");
        let path = location
            .split_once("://")
            .map_or(location.as_str(), |(_, rest)| {
                &rest[rest.find('/').unwrap_or(0)..]
            })
            .to_string();
        let sep = if path.contains('?') { '&' } else { '?' };
        let (status, _, body) = self
            .http(
                "PUT",
                &format!("{path}{sep}digest={digest}"),
                &[("Content-Type", "application/octet-stream")],
                bytes,
            )
            .expect("finish an upload");
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        digest
    }

    /// Puts `manifest` (JSON of `media_type`) under `reference` (a tag) of `repository`;
    /// returns the answer's status.
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        manifest: &[u8],
    ) -> u16 {
        self.http(
            "PUT",
            &format!("/v2/{repository}/manifests/{reference}"),
            &[("Content-Type", media_type)],
            manifest,
        )
        .expect("put a manifest")
        .0
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The value of header `name` (lowercase).
pub fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let hex: String = sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}
