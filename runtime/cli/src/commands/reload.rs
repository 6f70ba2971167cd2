//! `membrane reload`: ask a running `membrane serve` to reload its manifest.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::membrane::{self, Manifest, TokenSource};
use crate::output::{out, say};

/// Ask a running `membrane serve` to reload its manifest (POST /reload to its admin
/// listener): modules whose component, grants, limits or links changed are upgraded
/// live, after the same checks as at load; a refused reload changes nothing.
///
/// A reload that widens a module's grants (a new directory, rw, a variable, a
/// destination, an origin), raises a limit or quota, or weakens its sandbox is refused
/// unless --grants is given; the answer lists every change.
#[derive(clap::Args)]
pub struct Args {
    /// The admin listener of the server. Default: [app.admin] listen of MANIFEST.
    #[arg(long, value_name = "IP:PORT")]
    admin: Option<String>,
    /// Accept changes that give modules more authority (each is logged on
    /// membrane::audit by the server).
    #[arg(long)]
    grants: bool,
    /// The app's manifest (or a directory holding its membrane.toml), to find the admin
    /// listener.
    #[arg(default_value = "membrane.toml")]
    manifest: PathBuf,
}

/// Runs `membrane reload`.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let Args {
        admin,
        grants,
        manifest,
    } = a;
    // The manifest names the listener and where its token is; with --admin it may
    // be absent (the token is then the one the server made up for that address).
    let spec = match Manifest::from_file(&manifest) {
        Ok(m) => Some(m.app.admin_spec().clone()),
        // The server reads the manifest again and reports its problems itself.
        Err(_) if admin.is_some() => None,
        Err(e) => {
            return Err(anyhow::Error::new(e).context(
                "give the server's admin address with --admin IP:PORT, or the manifest that names it",
            ));
        }
    };
    let admin = match admin {
        Some(a) => a,
        None => spec.as_ref().and_then(|s| s.listen.clone()).with_context(|| {
            format!(
                "{} has no [app.admin] listen; give the server's admin address with --admin IP:PORT",
                manifest.display()
            )
        })?,
    };
    let configured = spec.as_ref().and_then(|s| s.token.as_ref());
    Ok(if ask(&admin, configured, grants)? {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `membrane reload`: POST /reload to a server's admin listener; prints what happened.
/// Returns whether the reload succeeded.
fn ask(admin: &str, configured: Option<&TokenSource>, grants: bool) -> anyhow::Result<bool> {
    let addr = admin
        .to_socket_addrs()
        .with_context(|| format!("--admin {admin:?} is not an address like 127.0.0.1:9090"))?
        .next()
        .with_context(|| format!("--admin {admin:?} resolves to no address"))?;
    let token = crate::token::read(configured, addr)?;
    let authorization = match &token {
        Some(t) if t.bytes().all(|b| b.is_ascii_graphic()) => {
            format!("Authorization: Bearer {t}\r\n")
        }
        Some(_) => bail!(
            "the admin token holds characters a header cannot carry; make it printable ASCII without spaces"
        ),
        None => String::new(),
    };
    let query = if grants { "?grants=accept" } else { "" };
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).with_context(|| {
        format!("cannot reach the admin listener at {addr}: is `membrane serve` running with [app.admin] listen (or --admin) there?")
    })?;
    // Compiling a large module can take a while.
    stream.set_read_timeout(Some(Duration::from_secs(300)))?;
    write!(
        stream,
        "POST /reload{query} HTTP/1.1\r\nHost: {addr}\r\n{authorization}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("the admin listener at {addr} did not answer"))?;
    let raw = String::from_utf8_lossy(&raw);
    let Some((head, body)) = raw.split_once("\r\n\r\n") else {
        bail!("the admin listener at {addr} sent no HTTP answer");
    };
    let status = head.split_whitespace().nth(1).unwrap_or("?");
    if status == "401" {
        bail!(
            "the admin listener at {addr} refused the token{}: give the token the server uses \
             ([app.admin] token_file or token_env of the manifest, or the file `membrane serve` printed at start)",
            if token.is_none() {
                " (none was found)"
            } else {
                ""
            }
        );
    }
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body.trim()) else {
        bail!(
            "the admin listener at {addr} answered {status}: {}",
            membrane::escape(body.trim())
        );
    };
    if v["ok"] == true {
        let mut text = String::new();
        let upgraded = v["upgraded"].as_array().cloned().unwrap_or_default();
        if upgraded.is_empty() {
            text.push_str("reloaded: nothing changed\n");
        }
        for u in upgraded {
            text.push_str(&format!(
                "upgraded {}: generation {} -> {} ({}, {:.1} ms)\n",
                field(&u["module"]),
                u["from"],
                u["to"],
                field(&u["hash"]).get(..19).unwrap_or("?"),
                u["elapsed_ms"].as_f64().unwrap_or(0.0)
            ));
            for g in u["grants"].as_array().into_iter().flatten() {
                text.push_str(&format!(
                    "  {} {} {}: {} -> {}\n",
                    if g["wider"] == true {
                        "widened"
                    } else {
                        "narrowed"
                    },
                    field(&g["kind"]),
                    field(&g["key"]),
                    g["old"].as_str().map_or("none".into(), membrane::escape),
                    g["new"].as_str().map_or("none".into(), membrane::escape),
                ));
            }
        }
        out(&text)?;
        for w in v["warnings"].as_array().into_iter().flatten() {
            say(&format!(
                "warning: {}",
                membrane::escape(w.as_str().unwrap_or(""))
            ));
        }
        return Ok(true);
    }
    say(&format!(
        "error: reload refused ({}); nothing changed",
        field(&v["kind"])
    ));
    for p in v["problems"].as_array().into_iter().flatten() {
        say(&format!("  - {}", field(&p["message"])));
    }
    if v["kind"] == "denied" && !grants {
        say("to accept wider grants, run `membrane reload --grants`");
    }
    Ok(false)
}

/// A string field of the server's answer, safe to print.
fn field(v: &serde_json::Value) -> String {
    membrane::escape(v.as_str().unwrap_or("?")).into_owned()
}
