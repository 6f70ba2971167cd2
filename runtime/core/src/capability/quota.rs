//! Disk quotas of read-write grants: `quota` (bytes) and `quota_files` (names) per granted
//! directory.
//!
//! Without a quota a module may fill the disk under its read-write grant. With one, every
//! write, file creation, directory, symlink and hard link under the grant is charged before
//! it happens; past the quota it fails inside the guest with `insufficient-space` (the
//! error a program sees on a full disk; a write through a stream, which is how wasi-libc
//! writes files, arrives as an I/O error because wasi-libc does not ask for the stream
//! error's code), and a call that then traps is reported as
//! [`ErrorKind::DiskQuota`](crate::ErrorKind::DiskQuota).
//!
//! Accounting: the grant's tree is measured (allocated blocks of every distinct inode, and
//! every name) the first time it is charged; each write then counts in full, as if it only
//! added data. When a charge would pass the quota the tree is measured again, which finds
//! what was overwritten, truncated or removed since, and the charge is decided on the fresh
//! figure. Usage can therefore never pass the quota, and a module far from its quota pays
//! only a counter update per write; a module working close to it pays a walk of its tree
//! (time proportional to its number of files) for some writes.

use std::collections::{HashMap, HashSet};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use wasmtime_wasi::filesystem::Descriptor;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// A quota on one granted directory, shared by every instance of the module.
pub struct Quota {
    /// The grant's path as written, for messages.
    pub host: PathBuf,
    /// The grant's handle, opened at load.
    root: Arc<OwnedFd>,
    max_bytes: Option<u64>,
    max_files: Option<u64>,
    usage: Mutex<Usage>,
}

impl std::fmt::Debug for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quota")
            .field("host", &self.host)
            .field("max_bytes", &self.max_bytes)
            .field("max_files", &self.max_files)
            .finish()
    }
}

#[derive(Debug, Default)]
struct Usage {
    measured: bool,
    bytes: u64,
    files: u64,
}

impl Quota {
    pub fn new(
        host: PathBuf,
        root: Arc<OwnedFd>,
        max_bytes: Option<u64>,
        max_files: Option<u64>,
    ) -> Self {
        Quota {
            host,
            root,
            max_bytes,
            max_files,
            usage: Mutex::new(Usage::default()),
        }
    }

    /// Makes this quota's use readable by [`usage_of`] its grant's path (the status of the
    /// operator's page), for as long as the quota lives.
    pub fn register(self: &Arc<Self>) {
        let mut map = REGISTERED.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, q| q.strong_count() > 0);
        map.insert(self.host.clone(), Arc::downgrade(self));
    }

    /// What the grant holds, as last measured or charged (bytes, names); `None` until the
    /// first write measured it.
    pub fn used(&self) -> Option<(u64, u64)> {
        let u = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        u.measured.then_some((u.bytes, u.files))
    }

    fn fits(&self, u: &Usage, bytes: u64, files: u64) -> bool {
        self.max_bytes
            .is_none_or(|m| u.bytes.saturating_add(bytes) <= m)
            && self
                .max_files
                .is_none_or(|m| u.files.saturating_add(files) <= m)
    }

    /// Charges `bytes` of data and `files` new names; false (and nothing charged) when that
    /// would pass the quota.
    pub fn charge(&self, bytes: u64, files: u64) -> bool {
        let mut u = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        if !u.measured || !self.fits(&u, bytes, files) {
            match measure(&self.root) {
                Ok((b, f)) => {
                    u.bytes = b;
                    u.files = f;
                    u.measured = true;
                }
                Err(e) => {
                    tracing::warn!(target: "membrane::limits", grant = %self.host.display(), error = %e, "cannot measure a grant with a quota; refusing the write");
                    return false;
                }
            }
        }
        if !self.fits(&u, bytes, files) {
            tracing::debug!(target: "membrane::limits", grant = %self.host.display(), used = u.bytes, files = u.files, "write refused: quota");
            return false;
        }
        u.bytes = u.bytes.saturating_add(bytes);
        u.files = u.files.saturating_add(files);
        true
    }
}

/// The quotas alive, by their grant's path.
static REGISTERED: Mutex<std::collections::BTreeMap<PathBuf, std::sync::Weak<Quota>>> =
    Mutex::new(std::collections::BTreeMap::new());

/// What the live quota of the grant at `host` holds (see [`Quota::used`]).
pub fn usage_of(host: &std::path::Path) -> Option<(u64, u64)> {
    let map = REGISTERED.lock().unwrap_or_else(|p| p.into_inner());
    map.get(host)?.upgrade()?.used()
}

/// The allocated bytes (of distinct inodes) and the names below a directory.
fn measure(root: &OwnedFd) -> std::io::Result<(u64, u64)> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut stack = vec![rustix::fs::openat(root, ".", flags, Mode::empty())?];
    let mut seen = HashSet::new();
    let (mut bytes, mut files) = (0u64, 0u64);
    while let Some(dir) = stack.pop() {
        for entry in rustix::fs::Dir::read_from(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_bytes() == b"." || name.to_bytes() == b".." {
                continue;
            }
            let Ok(st) = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
                // Removed while we looked.
                continue;
            };
            files += 1;
            if st.st_nlink <= 1 || seen.insert((st.st_dev, st.st_ino)) {
                bytes = bytes.saturating_add(st.st_blocks as u64 * 512);
            }
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory
                && let Ok(sub) = rustix::fs::openat(&dir, name, flags, Mode::empty())
            {
                stack.push(sub);
            }
        }
    }
    Ok((bytes, files))
}

/// Which quota a guest's descriptors are charged to, for one instance.
#[derive(Debug)]
pub struct QuotaMap {
    /// Granted directories with a quota, by guest path.
    grants: Arc<Vec<(String, Arc<Quota>)>>,
    /// Descriptors below those grants, by the address of their host file.
    tracked: HashMap<usize, (Weak<std::fs::File>, Arc<Quota>)>,
    /// Set when a write was refused; cleared before every call. Shared with the streams.
    pub denied: Arc<AtomicBool>,
}

fn file_of(d: &Descriptor) -> &Arc<std::fs::File> {
    match d {
        Descriptor::File(f) => &f.file,
        Descriptor::Dir(d) => &d.dir,
    }
}

impl QuotaMap {
    pub fn new(grants: Arc<Vec<(String, Arc<Quota>)>>) -> Self {
        QuotaMap {
            grants,
            tracked: HashMap::new(),
            denied: Arc::default(),
        }
    }

    /// Notes the guest path of a granted directory as handed to the guest.
    pub fn note_preopen(&mut self, d: &Descriptor, guest: &str) {
        if let Some((_, q)) = self.grants.iter().find(|(g, _)| g == guest) {
            self.track(d, q.clone());
        }
    }

    /// The quota a descriptor is charged to, if any.
    pub fn quota_of(&self, d: &Descriptor) -> Option<Arc<Quota>> {
        let file = file_of(d);
        let (weak, q) = self.tracked.get(&(Arc::as_ptr(file) as usize))?;
        weak.upgrade()
            .filter(|f| Arc::ptr_eq(f, file))
            .map(|_| q.clone())
    }

    /// Charges descriptors opened below `d` to the same quota.
    pub fn track(&mut self, d: &Descriptor, q: Arc<Quota>) {
        if self.tracked.len() >= 1024 {
            self.tracked.retain(|_, (w, _)| w.strong_count() > 0);
        }
        let file = file_of(d);
        self.tracked
            .insert(Arc::as_ptr(file) as usize, (Arc::downgrade(file), q));
    }

    /// Charges a write, recording a refusal.
    pub fn charge(&self, q: &Quota, bytes: u64, files: u64) -> bool {
        let ok = q.charge(bytes, files);
        if !ok {
            self.denied.store(true, Ordering::Relaxed);
        }
        ok
    }
}

/// A file's output stream whose writes are charged to a quota first.
pub struct QuotaStream {
    pub inner: Box<dyn OutputStream>,
    pub quota: Arc<Quota>,
    pub denied: Arc<AtomicBool>,
}

impl QuotaStream {
    fn charge(&self, n: usize) -> StreamResult<()> {
        if self.quota.charge(n as u64, 0) {
            return Ok(());
        }
        self.denied.store(true, Ordering::Relaxed);
        Err(StreamError::LastOperationFailed(
            std::io::Error::from_raw_os_error(rustix::io::Errno::NOSPC.raw_os_error()).into(),
        ))
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for QuotaStream {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for QuotaStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.charge(bytes.len())?;
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    fn write_zeroes(&mut self, nelem: usize) -> StreamResult<()> {
        self.charge(nelem)?;
        self.inner.write_zeroes(nelem)
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}
