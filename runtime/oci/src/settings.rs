//! What the client is allowed and given, read from the environment once:
//!
//! | variable | meaning |
//! |---|---|
//! | `MEMBRANE_OCI_INSECURE` | comma-separated hosts (`host` or `host:port`) spoken to in plain HTTP; loopback hosts always are |
//! | `MEMBRANE_OCI_USERNAME`, `MEMBRANE_OCI_PASSWORD` | credentials, sent only to the registry `MEMBRANE_OCI_REGISTRY` names (all three or none) |
//! | `MEMBRANE_OCI_CA_FILE` | a PEM file of more certificate authorities to trust, beside the Mozilla roots |
//! | `DOCKER_CONFIG` | where docker's `config.json` is (default `~/.docker`); its `auths` entries give credentials per registry (credential helpers are not run) |

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;

use crate::error::OciErrorKind;

/// The largest docker config file read.
const MAX_DOCKER_CONFIG: u64 = 1 << 20;

/// A user name and password for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password, in any log.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// `Basic <base64(user:password)>`.
    pub fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The client's settings: plain-HTTP hosts, credentials and trusted roots.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Settings {
    /// Hosts (`host` or `host:port`) spoken to in plain HTTP besides loopback ones.
    pub insecure: Vec<String>,
    /// Credentials per registry (`host[:port]`).
    pub credentials: BTreeMap<String, Credentials>,
    /// A problem with the credentials the environment gave, reported when a registry is
    /// used (an incomplete set is refused rather than half used).
    pub credentials_problem: Option<String>,
    /// A PEM file of more certificate authorities to trust.
    pub ca_file: Option<PathBuf>,
}

impl Settings {
    /// Settings with nothing but the defaults: HTTPS everywhere but loopback, no
    /// credentials, the Mozilla roots.
    pub fn new() -> Settings {
        Settings::default()
    }

    /// Reads the variables of this module's table, and docker's config for credentials.
    pub fn from_env() -> Settings {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut s = Settings {
            insecure: var("MEMBRANE_OCI_INSECURE")
                .map(|v| {
                    v.split(',')
                        .map(|h| h.trim().to_ascii_lowercase())
                        .filter(|h| !h.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            ca_file: var("MEMBRANE_OCI_CA_FILE").map(PathBuf::from),
            ..Settings::default()
        };
        if let Some(config) = docker_config_path() {
            s.credentials = docker_credentials(&config);
        }
        match (
            var("MEMBRANE_OCI_USERNAME"),
            var("MEMBRANE_OCI_PASSWORD"),
            var("MEMBRANE_OCI_REGISTRY"),
        ) {
            (None, None, _) => {}
            (Some(username), Some(password), Some(registry)) => {
                s.credentials.insert(
                    registry.trim().to_ascii_lowercase(),
                    Credentials { username, password },
                );
            }
            (Some(_), Some(_), None) => {
                s.credentials_problem = Some(
                    "MEMBRANE_OCI_USERNAME and MEMBRANE_OCI_PASSWORD are set but MEMBRANE_OCI_REGISTRY is not: name the registry (host[:port]) they are for, so that they are never sent to another"
                        .into(),
                );
            }
            _ => {
                s.credentials_problem = Some(
                    "only one of MEMBRANE_OCI_USERNAME and MEMBRANE_OCI_PASSWORD is set".into(),
                );
            }
        }
        s
    }

    /// The credentials for `registry` (`host[:port]`), if any.
    pub fn credentials_for(&self, registry: &str) -> Result<Option<&Credentials>, OciErrorKind> {
        if let Some(p) = &self.credentials_problem {
            return Err(OciErrorKind::Credentials { detail: p.clone() });
        }
        Ok(self.credentials.get(&registry.to_ascii_lowercase()))
    }

    /// The roots TLS trusts: the Mozilla roots, and the certificates of
    /// [`Settings::ca_file`].
    pub fn roots(&self) -> Result<tokio_rustls::rustls::RootCertStore, String> {
        use tokio_rustls::rustls::pki_types::CertificateDer;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        let mut roots = tokio_rustls::rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(file) = &self.ca_file {
            let shown = file.display();
            let certs = CertificateDer::pem_file_iter(file)
                .map_err(|e| format!("MEMBRANE_OCI_CA_FILE {shown}: {e}"))?;
            let mut n = 0;
            for cert in certs {
                let cert = cert.map_err(|e| format!("MEMBRANE_OCI_CA_FILE {shown}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("MEMBRANE_OCI_CA_FILE {shown}: {e}"))?;
                n += 1;
            }
            if n == 0 {
                return Err(format!(
                    "MEMBRANE_OCI_CA_FILE {shown} holds no PEM certificate"
                ));
            }
        }
        Ok(roots)
    }
}

fn docker_config_path() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// The `auths` of docker's config: `{"auths": {"host:port": {"auth": base64(user:pass)}}}`
/// (or `username` and `password`). A missing or unreadable file gives none: docker's config
/// is a convenience, never a reason to fail.
fn docker_credentials(path: &std::path::Path) -> BTreeMap<String, Credentials> {
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default)]
        auths: BTreeMap<String, Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        auth: Option<String>,
        username: Option<String>,
        password: Option<String>,
    }
    let mut out = BTreeMap::new();
    let Ok(file) = std::fs::File::open(path) else {
        return out;
    };
    let mut bytes = Vec::new();
    use std::io::Read as _;
    if file
        .take(MAX_DOCKER_CONFIG + 1)
        .read_to_end(&mut bytes)
        .is_err()
        || bytes.len() as u64 > MAX_DOCKER_CONFIG
    {
        tracing::warn!(target: "membrane::oci", path = %path.display(), "docker config not read (unreadable or over 1 MiB)");
        return out;
    }
    let Ok(config) = serde_json::from_slice::<Config>(&bytes) else {
        tracing::warn!(target: "membrane::oci", path = %path.display(), "docker config not read (not the JSON docker writes)");
        return out;
    };
    for (key, entry) in config.auths {
        let registry = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let creds = match (entry.auth, entry.username, entry.password) {
            (Some(auth), _, _) => base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .and_then(|raw| {
                    let (u, p) = raw.split_once(':')?;
                    Some(Credentials {
                        username: u.to_string(),
                        password: p.to_string(),
                    })
                }),
            (None, Some(username), Some(password)) => Some(Credentials { username, password }),
            _ => None,
        };
        if let Some(c) = creds
            && !registry.is_empty()
        {
            out.insert(registry, c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_gives_credentials_per_registry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("ann:s3cret");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths": {{"https://Registry.Example/v1/": {{"auth": "{auth}"}}, "127.0.0.1:5000": {{"username": "bob", "password": "pw"}}, "bad": {{"auth": "!!"}}}}}}"#
            ),
        )
        .unwrap();
        let c = docker_credentials(&path);
        assert_eq!(c["registry.example"].username, "ann");
        assert_eq!(c["registry.example"].password, "s3cret");
        assert_eq!(c["127.0.0.1:5000"].username, "bob");
        assert!(!c.contains_key("bad"));
        assert!(!format!("{:?}", c["registry.example"]).contains("s3cret"));
        std::fs::write(&path, "not json").unwrap();
        assert!(docker_credentials(&path).is_empty());
        // Past its bound, the file is not read at all.
        let padded = format!(
            r#"{{"auths": {{"r.example": {{"auth": "{auth}"}}}}, "pad": "{}"}}"#,
            "x".repeat(MAX_DOCKER_CONFIG as usize)
        );
        std::fs::write(&path, padded).unwrap();
        assert!(docker_credentials(&path).is_empty());
    }
}
