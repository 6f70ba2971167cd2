//! Resolving a path the way the kernel does, one entry at a time, to learn every directory
//! whose contents decide where it leads.
//!
//! A path such as `work/g/glink.wasm` depends on the entries `work`, `g` and `glink.wasm`,
//! which live in the current directory, in `work` and in `work/g`; when `glink.wasm` is a
//! link, on every entry its target names too. Whoever may change any of those directories
//! (or one above them, by renaming) may make the path lead elsewhere. [`walk`] follows the
//! path entry by entry with `O_NOFOLLOW` lookups, reading links itself (at most
//! [`MAX_LINKS`]), and records each directory it looked an entry up in; the final entry is
//! opened from the very directory handle it was found in, so what was checked is what is
//! read. [`read_regular`] then refuses anything but a regular file of at most a given size
//! before reading a byte: a FIFO, a device or `/dev/zero` never blocks or floods a reader.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use rustix::fs::{CWD, FileType, Mode, OFlags};

/// A directory's identity: device and inode.
pub type DirId = (u64, u64);

/// The identity of the directory (or file) `fd` is open on.
pub fn id_of(fd: &OwnedFd) -> io::Result<DirId> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_dev as u64, st.st_ino as u64))
}

/// The identities of a directory and of every directory above it, up to the root.
pub fn ancestors(fd: OwnedFd) -> io::Result<Vec<DirId>> {
    let mut ids = vec![id_of(&fd)?];
    let mut cur = fd;
    // Deeper than any real tree; stops a loop on a broken file system.
    for _ in 0..4096 {
        let parent = open_dir(&cur, "..")?;
        let id = id_of(&parent)?;
        if ids.last() == Some(&id) {
            break;
        }
        ids.push(id);
        cur = parent;
    }
    Ok(ids)
}

/// Links followed in one path at most, as the kernel's own limit.
pub const MAX_LINKS: usize = 40;

/// What resolving a path found.
pub struct Walked {
    /// The directory the final entry was found in.
    pub parent: OwnedFd,
    /// The final entry's name in it.
    pub name: OsString,
    /// The final entry, opened without following it and without reading it (`O_PATH`).
    pub entry: OwnedFd,
    /// Every directory an entry on the way was looked up in, and every directory above
    /// each: a read-write grant on any of them could change where the path leads.
    pub dirs: Vec<DirId>,
}

fn open_path(dir: &OwnedFd, name: &std::ffi::OsStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn open_dir(dir: impl rustix::fd::AsFd, name: impl rustix::path::Arg) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// The names of `path`, in order, with `.` dropped (`..` is kept: it is resolved from the
/// directory reached so far, as the kernel does).
fn names(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// Resolves `path` entry by entry (see the module docs). The final entry may be of any
/// type but a link (which is followed); every entry before it must be a directory.
pub fn walk(path: &Path) -> io::Result<Walked> {
    let mut cur = if path.is_absolute() {
        open_dir(CWD, "/")?
    } else {
        open_dir(CWD, ".")?
    };
    let mut queue = names(path);
    let mut dirs: Vec<DirId> = Vec::new();
    let mut links = 0;
    while let Some(name) = queue.pop_front() {
        // Every directory an entry is looked up in counts, with all directories above it.
        let here = id_of(&cur)?;
        if !dirs.contains(&here) {
            for id in ancestors(rustix::io::fcntl_dupfd_cloexec(&cur, 0)?)? {
                if !dirs.contains(&id) {
                    dirs.push(id);
                }
            }
        }
        if name == ".." {
            cur = open_dir(&cur, "..")?;
            continue;
        }
        let entry = open_path(&cur, &name)?;
        let st = rustix::fs::fstat(&entry)?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = rustix::fs::readlinkat(&cur, name.as_os_str(), Vec::new())?;
                let target = Path::new(std::ffi::OsStr::from_bytes(target.as_bytes()));
                if target.is_absolute() {
                    cur = open_dir(CWD, "/")?;
                }
                for n in names(target).into_iter().rev() {
                    queue.push_front(n);
                }
            }
            _ if queue.is_empty() => {
                return Ok(Walked {
                    parent: cur,
                    name,
                    entry,
                    dirs,
                });
            }
            FileType::Directory => cur = entry,
            _ => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
        }
    }
    // The path ended in `..` or named nothing: its last directory is the entry.
    let entry = rustix::io::fcntl_dupfd_cloexec(&cur, 0)?;
    Ok(Walked {
        parent: open_dir(&cur, "..")?,
        name: ".".into(),
        entry,
        dirs,
    })
}

/// Why a component or manifest file was not read.
#[derive(Debug)]
pub enum Refused {
    /// The path could not be resolved or read.
    Io(io::Error),
    /// It leads to something other than a regular file (its type, as `ls -l` shows it).
    NotRegular(&'static str),
    /// It is larger than the limit (its size).
    TooLarge(u64),
}

impl From<io::Error> for Refused {
    fn from(e: io::Error) -> Self {
        Refused::Io(e)
    }
}

impl From<rustix::io::Errno> for Refused {
    fn from(e: rustix::io::Errno) -> Self {
        Refused::Io(e.into())
    }
}

/// Reads the regular file at `path`, of at most `max` bytes, through the handles [`walk`]
/// found it with; returns its bytes and the directories its path depends on. Nothing but a
/// regular file is ever opened for reading (a FIFO would block, a device could be endless).
pub fn read_regular(path: &Path, max: u64) -> Result<(Vec<u8>, Vec<DirId>), Refused> {
    use std::io::Read as _;
    let w = walk(path)?;
    let st = rustix::fs::fstat(&w.entry)?;
    let kind = FileType::from_raw_mode(st.st_mode);
    if kind != FileType::RegularFile {
        return Err(Refused::NotRegular(type_name(kind)));
    }
    let size = st.st_size as u64;
    if size > max {
        return Err(Refused::TooLarge(size));
    }
    // Opened for reading from the same directory handle, never following a link, never
    // blocking; and it must still be the entry that was checked.
    let fd = rustix::fs::openat(
        &w.parent,
        w.name.as_os_str(),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let now = rustix::fs::fstat(&fd)?;
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) {
        return Err(Refused::Io(io::Error::other(
            "the file was replaced while it was being opened; try again",
        )));
    }
    if FileType::from_raw_mode(now.st_mode) != FileType::RegularFile {
        return Err(Refused::NotRegular(type_name(FileType::from_raw_mode(
            now.st_mode,
        ))));
    }
    let mut bytes = Vec::with_capacity(size.min(max) as usize);
    // A file that grows while it is read is cut at one byte past the limit, and refused.
    std::fs::File::from(fd)
        .take(max.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(Refused::TooLarge(bytes.len() as u64));
    }
    Ok((bytes, w.dirs))
}

fn type_name(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO (named pipe)",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "not a regular file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directories_of_links_on_the_way_count() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::create_dir_all(root.join("work/g")).unwrap();
        std::fs::write(root.join("real/c.wasm"), b"\0asm").unwrap();
        std::os::unix::fs::symlink("../../real/c.wasm", root.join("work/g/glink.wasm")).unwrap();
        std::os::unix::fs::symlink("../real", root.join("work/dlink")).unwrap();
        let id = |p: &Path| {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(p).unwrap();
            (m.dev(), m.ino())
        };
        let (bytes, dirs) = read_regular(&root.join("work/g/glink.wasm"), 100).unwrap();
        assert_eq!(bytes, b"\0asm");
        // The link lives in work/g, its target in real: both count, and what is above.
        for d in ["work/g", "work", "real", ""] {
            assert!(dirs.contains(&id(&root.join(d))), "{d}");
        }
        let (_, dirs) = read_regular(&root.join("work/dlink/c.wasm"), 100).unwrap();
        assert!(dirs.contains(&id(&root.join("work"))));
        assert!(!dirs.contains(&id(&root.join("work/g"))));
        // Nothing but a regular file, and not over the limit.
        assert!(matches!(
            read_regular(Path::new("/dev/zero"), 100),
            Err(Refused::NotRegular(_))
        ));
        let fifo = root.join("fifo");
        rustix::fs::mknodat(CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        assert!(matches!(
            read_regular(&fifo, 100),
            Err(Refused::NotRegular(_))
        ));
        assert!(matches!(
            read_regular(&root.join("real/c.wasm"), 3),
            Err(Refused::TooLarge(4))
        ));
        assert!(matches!(
            read_regular(&root.join("work"), 100),
            Err(Refused::NotRegular(_))
        ));
        // A loop of links ends.
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert!(matches!(
            read_regular(&root.join("loop"), 100),
            Err(Refused::Io(_))
        ));
    }
}
