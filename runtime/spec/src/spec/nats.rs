//! How an app reaches NATS, for its `remote` modules (`[app] nats`, `[app.nats_auth]`).

use std::path::PathBuf;

/// The NATS servers of an app and how to authenticate to them.
///
/// Credentials are never written in the manifest: a password or an NKey seed is read from
/// an environment variable or a file the manifest names, when the app loads. A `tls://`
/// server URL makes the connection use TLS, trusting the system's roots, or only the
/// roots of `tls_ca` when it is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatsSpec {
    /// Server URLs (`nats://host:port`, `tls://host:port`); several for a cluster.
    pub servers: Vec<String>,
    /// The user name for user/password authentication.
    pub user: Option<String>,
    /// Where the password is.
    pub password: Option<Secret>,
    /// Where the NKey seed (`SU...`) is, for NKey authentication.
    pub nkey: Option<Secret>,
    /// A PEM file of the root certificates to trust for `tls://` servers instead of the
    /// system's.
    pub tls_ca: Option<PathBuf>,
}

impl NatsSpec {
    /// Servers at `urls`, without authentication.
    pub fn new<S: Into<String>>(urls: impl IntoIterator<Item = S>) -> NatsSpec {
        NatsSpec {
            servers: urls.into_iter().map(Into::into).collect(),
            ..NatsSpec::default()
        }
    }

    /// Authenticates as `user` with the password found at `password`.
    pub fn user_password(mut self, user: impl Into<String>, password: Secret) -> NatsSpec {
        self.user = Some(user.into());
        self.password = Some(password);
        self
    }

    /// Authenticates with the NKey whose seed is found at `seed`.
    pub fn nkey(mut self, seed: Secret) -> NatsSpec {
        self.nkey = Some(seed);
        self
    }

    /// Trusts the root certificates of a PEM file for `tls://` servers.
    pub fn tls_ca(mut self, pem: impl Into<PathBuf>) -> NatsSpec {
        self.tls_ca = Some(pem.into());
        self
    }
}

/// Where a credential is read from when the app loads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Secret {
    /// An environment variable of the host process.
    Env(String),
    /// A file (its contents, without surrounding whitespace).
    File(PathBuf),
}

impl Secret {
    /// Where the secret is read from, as the suffix of its manifest key: `env` or `file`.
    pub fn form(&self) -> &'static str {
        match self {
            Secret::Env(_) => "env",
            Secret::File(_) => "file",
        }
    }

    /// Reads the credential; the error says where it looked.
    pub fn read(&self) -> std::result::Result<String, String> {
        let value = match self {
            Secret::Env(var) => std::env::var(var)
                .map_err(|_| format!("the environment variable {var} is not set (or not UTF-8)"))?,
            Secret::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        };
        let value = value.trim().to_string();
        if value.is_empty() {
            return Err(format!("{} is empty", self.describe()));
        }
        Ok(value)
    }

    /// Where it is, for messages.
    pub fn describe(&self) -> String {
        match self {
            Secret::Env(var) => format!("the environment variable {var}"),
            Secret::File(path) => format!("the file {}", path.display()),
        }
    }
}
