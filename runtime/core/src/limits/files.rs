//! `limits.files`: the host resources holding a file descriptor that one instance may keep
//! open at once: files and directories it opened, directory listings in progress, sockets.
//!
//! File descriptors are a resource of the whole process (`ulimit -n`): without a bound per
//! instance, one module that opens the same file thousands of times and keeps the handles
//! would make its neighbours fail to open their own files. An open past the limit fails
//! inside the guest (`insufficient-memory` for files, as WASI 0.2 has no code for "too many
//! open files"; `new-socket-limit` for sockets), so a careful guest can close something and
//! go on; a call that then traps is reported as [`ErrorKind::FilesLimit`].
//!
//! The handles of granted directories themselves are shared by every instance of the app
//! and are not counted. Per module, the total is at most `files` times `instances`.
//!
//! [`ErrorKind::FilesLimit`]: crate::ErrorKind::FilesLimit

use std::any::Any;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::filesystem::Descriptor;
use wasmtime_wasi::p2::{ReaddirIterator, TcpSocket, UdpSocket};

use crate::error::{Error, ErrorKind, Problems};
use crate::unit::{BlameCx, ModuleCx, Slots, Unit, UnitDef};

pub const DEF: UnitDef = UnitDef { validate, prepare };

fn validate(cx: &ModuleCx<'_>, problems: &mut Problems) {
    if cx.spec.limits.files == 0 {
        problems.push(
            Error::manifest(format!(
                "module `{}`: limits.files must be at least 1",
                cx.name
            ))
            .with_key(cx.key("limits.files")),
        );
    }
}

fn prepare(cx: &ModuleCx<'_>, _: &mut Problems) -> Option<Box<dyn Unit>> {
    Some(Box::new(Files {
        max: cx.spec.limits.files,
    }))
}

#[derive(Debug)]
struct Files {
    max: u32,
}

impl Unit for Files {
    fn new_state(&self) -> Option<Box<dyn Any + Send>> {
        Some(Box::new(OpenFiles::new(self.max)))
    }

    fn reset_state(&self, state: &mut (dyn Any + Send)) {
        if let Some(f) = state.downcast_mut::<OpenFiles>() {
            f.denied = false;
        }
    }

    fn blame(&self, slots: &Slots, cx: &BlameCx<'_>) -> Option<(ErrorKind, String)> {
        slots.get::<OpenFiles>()?.denied.then(|| {
            (
                ErrorKind::FilesLimit,
                format!(
                    "module `{}`: {} failed after opening more than {} files, directories or sockets was refused; \
                     close handles the module no longer needs, or raise [modules.{}.limits] files",
                    cx.module, cx.what, self.max, cx.module
                ),
            )
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// One instance's count of open descriptors.
#[derive(Debug)]
pub struct OpenFiles {
    max: usize,
    /// Set when an open was refused; cleared before every call.
    pub denied: bool,
    /// The shared handles of the granted directories (by address): not the instance's own.
    preopens: Vec<usize>,
}

impl OpenFiles {
    pub fn new(max: u32) -> Self {
        OpenFiles {
            max: max as usize,
            denied: false,
            preopens: Vec::new(),
        }
    }

    /// Remembers a granted directory's handle as handed to the guest.
    pub fn note_preopen(&mut self, d: &Descriptor) {
        if let Descriptor::Dir(dir) = d {
            let at = std::sync::Arc::as_ptr(&dir.dir) as usize;
            if !self.preopens.contains(&at) {
                self.preopens.push(at);
            }
        }
    }

    fn holds_fd(&self, entry: &dyn Any) -> bool {
        if let Some(d) = entry.downcast_ref::<Descriptor>() {
            return match d {
                Descriptor::Dir(dir) => !self
                    .preopens
                    .contains(&(std::sync::Arc::as_ptr(&dir.dir) as usize)),
                Descriptor::File(_) => true,
            };
        }
        entry.is::<ReaddirIterator>() || entry.is::<TcpSocket>() || entry.is::<UdpSocket>()
    }

    /// Whether the instance may open one more; records a refusal.
    pub fn admit(&mut self, table: &mut ResourceTable) -> bool {
        let mut open = 0;
        for entry in table.iter_mut() {
            let entry: &dyn Any = entry;
            if self.holds_fd(entry) {
                open += 1;
            }
        }
        if open >= self.max {
            self.denied = true;
            tracing::debug!(target: "membrane::limits", open, max = self.max, "open refused: files limit");
            return false;
        }
        true
    }
}

/// The soft and hard limits on open file descriptors of this process, if known.
pub fn open_files_limit() -> (Option<u64>, Option<u64>) {
    let r = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    (r.current, r.maximum)
}

/// Raises this process's soft limit on open file descriptors to its hard limit, and returns
/// the new soft limit. The `membrane` command does this at start; an embedding application
/// can call it too. Failures leave the limit as it was.
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let r = getrlimit(Resource::Nofile);
    if r.current != r.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: r.maximum,
                maximum: r.maximum,
            },
        );
    }
    getrlimit(Resource::Nofile).current
}
