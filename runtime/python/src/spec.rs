//! An app declared in Python (`membrane.AppSpec`, or a dict of the same shape) as a
//! `membrane::AppSpec`, through the builders of `AppSpec` and `ModuleSpec`.
//!
//! ```text
//! {"entry": "cli", "name": "demo",
//!  "modules": {"cli": {"component": "cli.wasm",              # a path, or the bytes
//!                      "env": {"K": "v"}, "config": {"K": "v"},
//!                      "dirs": [("data", "/data", "rw")],   # or {"host", "guest", "mode"}
//!                      "network": ["127.0.0.1:6379"], "http": ["https://api.example.com"],
//!                      "stdout": "log", "stderr": "inherit",
//!                      "memory": "64MiB", "timeout": 0.5,   # bytes or a size; seconds or a duration
//!                      "fuel": 1_000_000, "hostcall": "1MiB", "output": "1MiB", "files": 16,
//!                      "instances": 4, "queue": 8, "lifecycle": "per-call",
//!                      "links": {"acme:kv/store": "host"}}}}
//! ```
//!
//! A module's keys may also be grouped under `grants` and `limits`, as in a manifest.
//! An unknown key or a bad value is a `Manifest` error naming the key.

use std::path::PathBuf;
use std::time::Duration;

use membrane::{
    AppSpec, ConfigValue, DirMode, Error, Lifecycle, ModuleSpec, OutputRoute, parse_duration,
    parse_size,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyInt, PyString};

type Result<T> = std::result::Result<T, Error>;

/// The app `obj` declares.
pub fn app(obj: &Bound<'_, PyAny>) -> Result<AppSpec> {
    let dict = obj
        .cast::<PyDict>()
        .map_err(|_| Error::manifest("an app spec must be a membrane.AppSpec or a dict"))?;
    let mut spec = AppSpec::new();
    for (key, value) in dict.iter() {
        let key = text(&key, "app spec key")?;
        spec = match key.as_str() {
            "modules" => {
                let modules = value
                    .cast::<PyDict>()
                    .map_err(|_| bad("modules", "expected a dict of module name -> module spec"))?;
                let mut spec = spec;
                for (name, m) in modules.iter() {
                    let name = text(&name, "module name")?;
                    let module = module(&name, &m).map_err(|e| e.with_module(&name))?;
                    spec = spec.module(name, module);
                }
                spec
            }
            "entry" => spec.entry(text(&value, "entry")?),
            "name" => spec.name(text(&value, "name")?),
            _ => {
                return Err(bad(
                    &key,
                    "unknown key of an app spec (known: modules, entry, name)",
                ));
            }
        };
    }
    Ok(spec)
}

fn module(name: &str, obj: &Bound<'_, PyAny>) -> Result<ModuleSpec> {
    let at = |key: &str| format!("modules.{name}.{key}");
    let dict = obj.cast::<PyDict>().map_err(|_| {
        bad(
            &format!("modules.{name}"),
            "expected a membrane.ModuleSpec or a dict",
        )
    })?;
    let component = dict
        .get_item("component")
        .ok()
        .flatten()
        .ok_or_else(|| bad(&at("component"), "missing: the component's path (or bytes)"))?;
    let mut m = if let Ok(bytes) = component.cast::<PyBytes>() {
        ModuleSpec::from_bytes(bytes.as_bytes().to_vec())
    } else {
        let path: PathBuf = component
            .extract()
            .map_err(|_| bad(&at("component"), "expected a path or bytes"))?;
        ModuleSpec::from_file(path)
    };
    // `grants` and `limits` group keys as a manifest does; flatten them.
    let mut entries = Vec::new();
    for (key, value) in dict.iter() {
        let key = text(&key, "module spec key")?;
        match key.as_str() {
            "component" => {}
            "grants" | "limits" => {
                let group = value
                    .cast::<PyDict>()
                    .map_err(|_| bad(&at(&key), "expected a dict"))?;
                for (k, v) in group.iter() {
                    entries.push((format!("{key}.{}", text(&k, "key")?), text(&k, "key")?, v));
                }
            }
            _ => entries.push((key.clone(), key, value)),
        }
    }
    for (shown, key, v) in entries {
        let key_at = at(&shown);
        let fail = |why: &str| bad(&key_at, why);
        m = match key.as_str() {
            "env" => pairs(&v, &key_at)?
                .into_iter()
                .fold(m, |m, (k, val)| m.env(k, val)),
            "config" => pairs(&v, &key_at)?
                .into_iter()
                .fold(m, |m, (k, val)| m.config(k, ConfigValue::Value(val))),
            "links" => pairs(&v, &key_at)?
                .into_iter()
                .fold(m, |m, (k, val)| m.link(k, val)),
            "network" => strings(&v, &key_at)?
                .into_iter()
                .fold(m, |m, d| m.network(d)),
            "http" => strings(&v, &key_at)?
                .into_iter()
                .fold(m, |m, origin| m.http(origin)),
            "dirs" => {
                let mut m = m;
                for d in list(&v, &key_at)? {
                    let (host, guest, mode) = dir(&d).map_err(|why| fail(&why))?;
                    m = m.dir(host, guest, mode);
                }
                m
            }
            "stdout" => m.stdout(route(&v).map_err(|why| fail(&why))?),
            "stderr" => m.stderr(route(&v).map_err(|why| fail(&why))?),
            "memory" => m.memory(size(&v).map_err(|why| fail(&why))?),
            "hostcall" => m.hostcall(size(&v).map_err(|why| fail(&why))?),
            "output" => m.output(size(&v).map_err(|why| fail(&why))?),
            "timeout" => m.timeout(duration(&v).map_err(|why| fail(&why))?),
            "fuel" => m.fuel(count(&v).map_err(|why| fail(&why))?),
            "files" => m.files(
                u32::try_from(count(&v).map_err(|why| fail(&why))?)
                    .map_err(|_| fail("too large"))?,
            ),
            "instances" => {
                let n = count(&v).map_err(|why| fail(&why))? as usize;
                let queue = m.limits.queue;
                m.concurrency(n, queue)
            }
            "queue" => {
                let n = count(&v).map_err(|why| fail(&why))? as usize;
                let instances = m.limits.instances;
                m.concurrency(instances, n)
            }
            "lifecycle" => match text(&v, "lifecycle")?.as_str() {
                "reuse" => m.lifecycle(Lifecycle::Reuse),
                "per-call" | "per_call" => m.lifecycle(Lifecycle::PerCall),
                _ => return Err(fail("expected \"reuse\" or \"per-call\"")),
            },
            _ => {
                return Err(fail(
                    "unknown key of a module spec (known: component, env, config, dirs, \
                     network, http, stdout, stderr, links, memory, timeout, fuel, hostcall, \
                     output, files, instances, queue, lifecycle)",
                ));
            }
        };
    }
    Ok(m)
}

fn bad(key: &str, why: &str) -> Error {
    Error::manifest(format!("{key}: {why}")).with_key(key)
}

fn text(obj: &Bound<'_, PyAny>, what: &str) -> Result<String> {
    if !obj.is_instance_of::<PyString>() {
        return Err(Error::manifest(format!("{what}: expected a str")));
    }
    obj.extract()
        .map_err(|_| Error::manifest(format!("{what}: expected a str")))
}

/// A dict of str -> str.
fn pairs(obj: &Bound<'_, PyAny>, key: &str) -> Result<Vec<(String, String)>> {
    let dict = obj
        .cast::<PyDict>()
        .map_err(|_| bad(key, "expected a dict of str -> str"))?;
    dict.iter()
        .map(|(k, v)| Ok((text(&k, key)?, text(&v, key)?)))
        .collect()
}

fn list<'py>(obj: &Bound<'py, PyAny>, key: &str) -> Result<Vec<Bound<'py, PyAny>>> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyDict>() {
        return Err(bad(key, "expected a list"));
    }
    let iter = obj.try_iter().map_err(|_| bad(key, "expected a list"))?;
    iter.map(|item| item.map_err(|_| bad(key, "expected a list")))
        .collect()
}

fn strings(obj: &Bound<'_, PyAny>, key: &str) -> Result<Vec<String>> {
    list(obj, key)?.iter().map(|s| text(s, key)).collect()
}

/// `(host, guest)`, `(host, guest, mode)` or `{"host", "guest", "mode"}`.
fn dir(obj: &Bound<'_, PyAny>) -> std::result::Result<(PathBuf, String, DirMode), String> {
    let usage = "expected (host, guest[, mode]) or {\"host\", \"guest\", \"mode\"}";
    let get = |key: &str, index: usize| -> Option<Bound<'_, PyAny>> {
        match obj.cast::<PyDict>() {
            Ok(d) => d.get_item(key).ok().flatten(),
            Err(_) => obj.get_item(index).ok(),
        }
    };
    let host: PathBuf = get("host", 0).and_then(|h| h.extract().ok()).ok_or(usage)?;
    let guest: String = get("guest", 1)
        .and_then(|g| g.extract().ok())
        .ok_or(usage)?;
    let mode = match get("mode", 2) {
        None => DirMode::ReadOnly,
        Some(m) if m.is_none() => DirMode::ReadOnly,
        Some(m) => match m.extract::<String>().as_deref() {
            Ok("ro") => DirMode::ReadOnly,
            Ok("rw") => DirMode::ReadWrite,
            _ => return Err("mode: expected \"ro\" or \"rw\"".into()),
        },
    };
    Ok((host, guest, mode))
}

fn route(obj: &Bound<'_, PyAny>) -> std::result::Result<OutputRoute, String> {
    match obj.extract::<String>().as_deref() {
        Ok("log") => Ok(OutputRoute::Log),
        Ok("inherit") => Ok(OutputRoute::Inherit),
        Ok("discard") => Ok(OutputRoute::Discard),
        _ => Err("expected \"log\", \"inherit\" or \"discard\"".into()),
    }
}

/// Bytes as an int, or a size such as `"64MiB"`.
fn size(obj: &Bound<'_, PyAny>) -> std::result::Result<u64, String> {
    if obj.is_instance_of::<PyString>() {
        return parse_size(&obj.extract::<String>().map_err(|e| e.to_string())?);
    }
    count(obj)
}

/// Seconds as an int or float, a `datetime.timedelta`, or a duration such as `"500ms"`.
fn duration(obj: &Bound<'_, PyAny>) -> std::result::Result<Duration, String> {
    let seconds = if obj.is_instance_of::<PyString>() {
        return parse_duration(&obj.extract::<String>().map_err(|e| e.to_string())?);
    } else if obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>() {
        obj.extract::<f64>().map_err(|e| e.to_string())?
    } else if let Ok(total) = obj.call_method0("total_seconds") {
        total.extract::<f64>().map_err(|e| e.to_string())?
    } else {
        return Err("expected seconds, a timedelta or a duration like \"500ms\"".into());
    };
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("{seconds} is not a duration in seconds"))
}

fn count(obj: &Bound<'_, PyAny>) -> std::result::Result<u64, String> {
    if !obj.is_instance_of::<PyInt>() || obj.is_instance_of::<pyo3::types::PyBool>() {
        return Err("expected a non-negative int".into());
    }
    obj.extract::<u64>()
        .map_err(|_| "expected a non-negative int".into())
}
