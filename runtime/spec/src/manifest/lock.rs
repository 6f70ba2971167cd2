//! `membrane.lock`: the digests `membrane lock` resolved each `oci://` component to, kept
//! beside the manifest. Reading a manifest that has one pins every `oci://` component to
//! its locked digests, so a tag that moves later is not followed.
//!
//! The format (TOML, written by `membrane lock`, read strictly: unknown keys are errors):
//!
//! ```toml
//! version = 1
//!
//! [modules.api]
//! reference = "oci://registry.example/acme/api:1.2.0"   # as the manifest writes it
//! manifest = "sha256:…"                                   # the artifact's manifest
//! component = "sha256:…"                                  # its component layer
//! ```
//!
//! A module of the manifest whose reference differs from the lock's, or that the lock
//! does not list, is a problem to fix by running `membrane lock` again: with a lock, no
//! `oci://` component is left unpinned. Entries of modules that are gone are ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, ErrorKind, Location, Problems, Result};
use crate::spec::{AppSpec, ComponentSource, Digest, Locked, OciRef};

/// The lock file's name, beside the manifest.
pub const LOCK_FILE: &str = "membrane.lock";

/// The largest lock file read.
pub const MAX_LOCK_SIZE: u64 = 4 << 20;

/// The format version this build writes and reads.
const VERSION: u32 = 1;

/// What a lock file pins: per module, its reference and digests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lock {
    /// Module name -> what its `oci://` component is pinned to.
    pub modules: BTreeMap<String, LockEntry>,
}

/// One module's pinned component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockEntry {
    /// The reference as the manifest wrote it when it was locked.
    pub reference: OciRef,
    /// Its manifest and component digests.
    pub locked: Locked,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LockFile {
    version: Spanned<u32>,
    #[serde(default)]
    modules: BTreeMap<String, Spanned<EntrySection>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntrySection {
    reference: Spanned<String>,
    manifest: Spanned<String>,
    component: Spanned<String>,
}

impl Lock {
    /// The lock file beside `manifest`.
    pub fn beside(manifest: &Path) -> PathBuf {
        manifest
            .parent()
            .map_or_else(|| PathBuf::from(LOCK_FILE), |d| d.join(LOCK_FILE))
    }

    /// Reads the lock file at `path`; `None` when there is none. Like the manifest, it
    /// must be a regular file (of at most [`MAX_LOCK_SIZE`] bytes).
    pub fn read(path: &Path) -> Result<Option<Lock>> {
        use crate::walk::{Refused, read_regular};
        let shown = path.display();
        let bytes = match read_regular(path, MAX_LOCK_SIZE) {
            Ok((bytes, _)) => bytes,
            Err(Refused::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(Refused::Io(e)) => {
                return Err(Error::io(format!("cannot read the lock file {shown}"), e));
            }
            Err(Refused::NotRegular(what)) => {
                return Err(Error::manifest(format!(
                    "the lock file {shown} is {what}, not a regular file"
                )));
            }
            Err(Refused::TooLarge(size)) => {
                return Err(Error::manifest(format!(
                    "the lock file {shown} is {}, more than a lock file may be ({}); run `membrane lock` to write it again",
                    crate::units::format_size(size),
                    crate::units::format_size(MAX_LOCK_SIZE)
                )));
            }
        };
        let text = String::from_utf8(bytes).map_err(|e| {
            Error::manifest(format!("the lock file {shown} is not UTF-8 text")).with_source(e)
        })?;
        Lock::parse(&text, path).map(Some)
    }

    /// Parses lock file text; `path` names the file in messages. Every malformed entry is
    /// reported, each with its key and line.
    pub fn parse(text: &str, path: &Path) -> Result<Lock> {
        let at = |offset: usize| {
            Some(Location {
                file: path.to_path_buf(),
                line: crate::manifest::line_of(text, offset),
            })
        };
        let file: LockFile = toml::from_str(text).map_err(|e| {
            let message = format!(
                "{}; run `membrane lock` to write the lock file again",
                e.message().trim_end()
            );
            Error::manifest(message).at(e.span().and_then(|s| at(s.start)))
        })?;
        if *file.version.get_ref() != VERSION {
            return Err(Error::manifest(format!(
                "the lock file is version {}, and this build reads version {VERSION}; run `membrane lock` to write it again",
                file.version.get_ref()
            ))
            .with_key("version")
            .at(at(file.version.span().start)));
        }
        let mut problems = Problems::default();
        let mut lock = Lock::default();
        for (name, entry) in file.modules {
            let entry = entry.into_inner();
            let mut field = |key: &str, v: &Spanned<String>, r: std::result::Result<(), String>| {
                if let Err(msg) = r {
                    problems.push(
                        Error::manifest(format!("modules.{name}.{key}: {msg}"))
                            .with_key(format!("modules.{name}.{key}"))
                            .at(at(v.span().start)),
                    );
                }
            };
            let reference = OciRef::parse(entry.reference.get_ref());
            let manifest = Digest::parse(entry.manifest.get_ref());
            let component = Digest::parse(entry.component.get_ref());
            field(
                "reference",
                &entry.reference,
                reference.as_ref().map(|_| ()).map_err(Clone::clone),
            );
            field(
                "manifest",
                &entry.manifest,
                manifest.as_ref().map(|_| ()).map_err(Clone::clone),
            );
            field(
                "component",
                &entry.component,
                component.as_ref().map(|_| ()).map_err(Clone::clone),
            );
            if let (Ok(reference), Ok(manifest), Ok(component)) = (reference, manifest, component) {
                lock.modules.insert(
                    name,
                    LockEntry {
                        reference,
                        locked: Locked {
                            manifest,
                            component,
                        },
                    },
                );
            }
        }
        problems.into_result()?;
        Ok(lock)
    }

    /// The lock file's text.
    pub fn to_toml(&self) -> String {
        let quoted = |s: &str| toml::Value::String(s.to_string()).to_string();
        let mut out = String::from(
            "# membrane.lock: the digests `membrane lock` resolved each oci:// component to.\n\
             # Loading the manifest beside it pulls exactly these; run `membrane lock` to update.\n",
        );
        out.push_str(&format!("version = {VERSION}\n"));
        for (name, entry) in &self.modules {
            let bare = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            let key = if bare { name.clone() } else { quoted(name) };
            out.push_str(&format!(
                "\n[modules.{key}]\nreference = {}\nmanifest = {}\ncomponent = {}\n",
                quoted(&entry.reference.to_string()),
                quoted(entry.locked.manifest.as_str()),
                quoted(entry.locked.component.as_str()),
            ));
        }
        out
    }

    /// Pins every `oci://` component of `app` to this lock's digests. A module whose
    /// reference is not the one locked, or that the lock does not list, is a problem at
    /// its `component` key; so is a reference pinned to a digest the lock contradicts.
    pub fn apply(&self, app: &mut AppSpec, lock_path: &Path) -> Result<()> {
        let mut problems = Problems::default();
        let shown = lock_path.display();
        for (name, module) in app.modules.iter_mut() {
            let ComponentSource::Oci(r) = &module.source else {
                continue;
            };
            let key = format!("modules.{name}.component");
            let problem = |msg: String| {
                Error::new(ErrorKind::Manifest, format!("module `{name}`: {msg}"))
                    .with_module(name.as_str())
                    .with_key(key.clone())
            };
            let Some(entry) = self.modules.get(name) else {
                problems.push(problem(format!(
                    "{r} is not pinned in {shown}; run `membrane lock` to pin it (a lock pins every oci:// component)"
                )));
                continue;
            };
            if entry.reference != *r {
                problems.push(problem(format!(
                    "{shown} pins {} but the manifest now says {r}; run `membrane lock` to pin the new reference",
                    entry.reference
                )));
                continue;
            }
            if let Some(d) = r.digest()
                && *d != entry.locked.manifest
            {
                problems.push(problem(format!(
                    "{r} names manifest {d} but {shown} pins {}; run `membrane lock` again",
                    entry.locked.manifest
                )));
                continue;
            }
            module.source = ComponentSource::Oci(r.clone().with_locked(entry.locked.clone()));
        }
        if let Some(locations) = app.locations.as_deref() {
            for p in problems.iter_mut() {
                if let Some(at) = p.key().and_then(|k| locations.find(k)) {
                    p.set_location(at);
                }
            }
        }
        problems.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;

    const A: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const B: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn entry(reference: &str) -> LockEntry {
        LockEntry {
            reference: OciRef::parse(reference).unwrap(),
            locked: Locked {
                manifest: Digest::parse(A).unwrap(),
                component: Digest::parse(B).unwrap(),
            },
        }
    }

    #[test]
    fn the_written_lock_reads_back() {
        let mut lock = Lock::default();
        lock.modules
            .insert("api".into(), entry("oci://127.0.0.1:5000/acme/api:1.0"));
        lock.modules
            .insert("odd name".into(), entry("oci://r.example/x:v1"));
        let text = lock.to_toml();
        assert_eq!(
            Lock::parse(&text, Path::new("membrane.lock")).unwrap(),
            lock
        );
    }

    #[test]
    fn a_lock_file_is_read_only_within_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        assert_eq!(Lock::read(&path).unwrap(), None);
        let mut text = "version = 1\n".to_string();
        text.push_str(&"#".repeat(MAX_LOCK_SIZE as usize));
        std::fs::write(&path, text).unwrap();
        let e = Lock::read(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Manifest);
        assert!(e.message().contains("more than a lock file may be"), "{e}");
    }

    #[test]
    fn malformed_entries_name_key_and_line() {
        let text = format!(
            "version = 1\n[modules.api]\nreference = \"oci://h/r:1\"\nmanifest = \"md5:x\"\ncomponent = \"{B}\"\n"
        );
        let e = Lock::parse(&text, Path::new("membrane.lock")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Manifest);
        assert_eq!(e.key(), Some("modules.api.manifest"));
        assert_eq!(e.location().map(|l| l.line), Some(4));
        let e = Lock::parse("version = 2\n", Path::new("membrane.lock")).unwrap_err();
        assert!(e.message().contains("version 2"), "{e}");
        let e = Lock::parse("version = 1\nextra = 1\n", Path::new("membrane.lock")).unwrap_err();
        assert!(e.message().contains("extra"), "{e}");
    }

    #[test]
    fn applying_pins_or_says_to_lock_again() {
        let text = "[modules.api]\ncomponent = \"oci://127.0.0.1:5000/acme/api:1.0\"\n\
                    [modules.web]\ncomponent = \"oci://127.0.0.1:5000/acme/web:2.0\"\n\
                    [modules.local]\ncomponent = \"local.wasm\"\n";
        let m = Manifest::parse(text, Path::new("/a/membrane.toml"), Path::new("/a")).unwrap();
        let mut lock = Lock::default();
        lock.modules
            .insert("api".into(), entry("oci://127.0.0.1:5000/acme/api:1.0"));
        lock.modules
            .insert("web".into(), entry("oci://127.0.0.1:5000/acme/web:1.0"));
        lock.modules
            .insert("gone".into(), entry("oci://127.0.0.1:5000/acme/gone:1.0"));
        let mut app = m.app.clone();
        let e = lock
            .apply(&mut app, Path::new("/a/membrane.lock"))
            .unwrap_err();
        assert_eq!(e.problems().len(), 1, "{e}");
        assert_eq!(e.key(), Some("modules.web.component"));
        assert_eq!(e.module(), Some("web"));
        assert_eq!(e.location().map(|l| l.line), Some(4));
        assert!(e.message().contains("membrane lock"), "{e}");

        lock.modules
            .insert("web".into(), entry("oci://127.0.0.1:5000/acme/web:2.0"));
        let mut app = m.app.clone();
        lock.apply(&mut app, Path::new("/a/membrane.lock")).unwrap();
        let ComponentSource::Oci(r) = &app.modules["api"].source else {
            panic!("not oci")
        };
        assert_eq!(r.pinned().map(Digest::as_str), Some(A));
        assert_eq!(r.locked().unwrap().component.as_str(), B);

        lock.modules.remove("web");
        let mut app = m.app.clone();
        let e = lock
            .apply(&mut app, Path::new("/a/membrane.lock"))
            .unwrap_err();
        assert!(e.message().contains("not pinned"), "{e}");
    }
}
