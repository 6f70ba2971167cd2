//! Exercises every capability from inside the sandbox; the host decides what succeeds.

use std::io::{Read, Write};

wit_bindgen::generate!({ path: "../../wit/probe", world: "probe", generate_all });

use exports::membrane_test::probe::caps::Guest;

struct Probe;

impl Guest for Probe {
    fn read_file(path: String) -> Result<String, String> {
        std::fs::read_to_string(&path).map_err(|e| format!("{e} ({:?})", e.kind()))
    }

    fn write_file(path: String, contents: String) -> Result<(), String> {
        std::fs::write(&path, contents).map_err(|e| format!("{e} ({:?})", e.kind()))
    }

    fn list_dir(path: String) -> Result<Vec<String>, String> {
        let mut names = std::fs::read_dir(&path)
            .map_err(|e| format!("{e} ({:?})", e.kind()))?
            .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        names.sort();
        Ok(names)
    }

    fn get_env(name: String) -> Option<String> {
        std::env::var(name).ok()
    }

    fn env_vars() -> Vec<(String, String)> {
        std::env::vars().collect()
    }

    fn connect(addr: String) -> Result<String, String> {
        let mut stream =
            std::net::TcpStream::connect(&addr).map_err(|e| format!("{e} ({:?})", e.kind()))?;
        stream.write_all(b"ping").map_err(|e| e.to_string())?;
        let mut answer = [0u8; 64];
        let n = stream.read(&mut answer).map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&answer[..n]).into_owned())
    }

    fn resolve(name: String) -> Result<Vec<String>, String> {
        use std::net::ToSocketAddrs;
        (name.as_str(), 0)
            .to_socket_addrs()
            .map(|addrs| addrs.map(|a| a.ip().to_string()).collect())
            .map_err(|e| format!("{e} ({:?})", e.kind()))
    }

    fn spin() {
        let mut x: u64 = 0;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    fn sleep_ms(ms: u64) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }

    fn try_alloc(bytes: u64) -> Result<u64, String> {
        let mut v: Vec<u8> = Vec::new();
        v.try_reserve_exact(bytes as usize)
            .map_err(|e| e.to_string())?;
        v.resize(bytes as usize, 1);
        Ok(v.iter().map(|b| *b as u64).sum())
    }

    fn bomb() -> u64 {
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        loop {
            chunks.push(vec![7u8; 1 << 20]);
            if chunks.len() == usize::MAX {
                return chunks.len() as u64;
            }
        }
    }

    fn print(text: String, to_stderr: bool) {
        if to_stderr {
            let mut err = std::io::stderr();
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        } else {
            let mut out = std::io::stdout();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }

    fn now_ns() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    }

    fn random_u64() -> u64 {
        wasi::random::random::get_random_u64()
    }

    fn bump() -> u64 {
        static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
    }

    fn read_stdin() -> Result<String, String> {
        let mut input = String::new();
        std::io::stdin()
            .read_to_string(&mut input)
            .map(|_| input)
            .map_err(|e| e.to_string())
    }

    fn spin_hostcalls() {
        loop {
            std::hint::black_box(std::time::SystemTime::now());
        }
    }

    fn recurse(depth: u64) -> u64 {
        // Plain values only: the frames live on the wasm stack, not in linear memory.
        if depth == 0 {
            return 0;
        }
        1 + std::hint::black_box(Self::recurse(std::hint::black_box(depth - 1)))
    }

    fn write_then_panic(path: String, contents: String) {
        let mut f = std::fs::File::create(&path).expect("create");
        f.write_all(contents.as_bytes()).expect("write");
        f.flush().expect("flush");
        panic!("crashed in the middle of {path}");
    }

    fn random_bytes(len: u64) -> u64 {
        wasi_random(len)
    }

    fn hardlink(src: String, dst: String) -> Result<(), String> {
        std::fs::hard_link(&src, &dst).map_err(|e| format!("{e} ({:?})", e.kind()))
    }

    fn rename(src: String, dst: String) -> Result<(), String> {
        std::fs::rename(&src, &dst).map_err(|e| format!("{e} ({:?})", e.kind()))
    }

    fn truncate(path: String) -> Result<(), String> {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(0))
            .map_err(|e| format!("{e} ({:?})", e.kind()))
    }

    fn sum(xs: Vec<i64>) -> i64 {
        xs.iter().sum()
    }

    fn length(s: String) -> u64 {
        s.len() as u64
    }

    fn panic(message: String) {
        panic!("{message}");
    }

    fn symlink(target: String, link: String) -> Result<(), String> {
        let (dir, rel) = preopen_for(&link)?;
        dir.symlink_at(&target, &rel).map_err(|e| format!("{e:?}"))
    }

    fn open_many(path: String, n: u32, strict: bool) -> Result<u32, String> {
        let mut opened = 0;
        for _ in 0..n {
            match std::fs::File::open(&path) {
                Ok(f) => {
                    HELD.with(|h| h.borrow_mut().push(Box::new(f)));
                    opened += 1;
                }
                Err(e) if strict => panic!("open {opened} failed: {e}"),
                Err(e) => return Err(format!("{opened} opened, then: {e} ({:?})", e.kind())),
            }
        }
        Ok(opened)
    }

    fn close_all() -> u32 {
        HELD.with(|h| {
            let n = h.borrow().len() as u32;
            h.borrow_mut().clear();
            n
        })
    }

    fn hold_sockets(addr: String, n: u32) -> Result<u32, String> {
        let mut connected = 0;
        for _ in 0..n {
            match std::net::TcpStream::connect(&addr) {
                Ok(s) => {
                    HELD.with(|h| h.borrow_mut().push(Box::new(s)));
                    connected += 1;
                }
                Err(e) => {
                    return Err(format!("{connected} connected, then: {e} ({:?})", e.kind()));
                }
            }
        }
        Ok(connected)
    }

    fn write_bytes(path: String, len: u64) -> Result<u64, String> {
        let mut f = std::fs::File::create(&path).map_err(|e| format!("0 written, then: {e}"))?;
        let chunk = vec![b'q'; 64 << 10];
        let mut written = 0u64;
        while written < len {
            let n = chunk.len().min((len - written) as usize);
            if let Err(e) = f.write_all(&chunk[..n]) {
                return Err(format!("{written} written, then: {e} ({:?})", e.kind()));
            }
            written += n as u64;
        }
        f.flush()
            .map_err(|e| format!("{written} written, then: {e}"))?;
        Ok(written)
    }

    fn create_files(dir: String, n: u32) -> Result<u32, String> {
        for i in 0..n {
            if let Err(e) = std::fs::File::create(format!("{dir}/f{i}")) {
                return Err(format!("{i} created, then: {e} ({:?})", e.kind()));
            }
        }
        Ok(n)
    }

    fn exit(code: u32) {
        std::process::exit(code as i32);
    }
}

std::thread_local! {
    /// Handles `open-many` and `hold-sockets` keep across calls.
    static HELD: std::cell::RefCell<Vec<Box<dyn std::any::Any>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The preopened directory that holds `path`, and the path relative to it.
fn preopen_for(path: &str) -> Result<(wasip2::filesystem::types::Descriptor, String), String> {
    for (dir, guest) in wasip2::filesystem::preopens::get_directories() {
        let prefix = format!("{}/", guest.trim_end_matches('/'));
        if let Some(rel) = path.strip_prefix(&prefix) {
            return Ok((dir, rel.to_string()));
        }
    }
    Err(format!("{path} is under no preopened directory"))
}

/// Calls `wasi:random/random.get-random-bytes` directly, so that the size of one request is
/// the guest's choice (std would split it).
fn wasi_random(len: u64) -> u64 {
    wasi::random::random::get_random_bytes(len).len() as u64
}

export!(Probe);
