//! The p3 library provider (world `membrane:p3lib/p3lib`): async exports that return at once,
//! wait on the clock, spin, take or give `stream<u8>`s, and futures (`calc`), a plain export for the p2
//! calling shape (`sync-calc`), and async twins of `plain-calc` (`async-plain`).

wit_bindgen::generate!({ path: "../../wit/p3-lib", world: "p3lib" });

use exports::membrane::p3lib::{async_plain, calc, sync_calc};
use std::sync::atomic::{AtomicU64, Ordering};

use wit_bindgen::{FutureReader, StreamReader, StreamResult};

/// The size of one read or write of a stream.
const CHUNK: usize = 64 * 1024;

/// The bytes `repeat`'s writers have had taken by their readers (`written`).
static WRITTEN: AtomicU64 = AtomicU64::new(0);

struct Lib;

impl calc::Guest for Lib {
    async fn add(a: u32, b: u32) -> u32 {
        a.wrapping_add(b)
    }

    async fn sleep(ms: u32) -> u32 {
        wasip3::clocks::monotonic_clock::wait_for(u64::from(ms) * 1_000_000).await;
        ms
    }

    async fn spin() {
        let mut x: u64 = 0;
        loop {
            x = core::hint::black_box(x.wrapping_add(1));
        }
    }

    async fn upper(text: String) -> String {
        text.to_uppercase()
    }

    async fn count_bytes(mut data: StreamReader<u8>) -> u64 {
        let mut count = 0;
        let mut buf = Vec::with_capacity(CHUNK);
        loop {
            buf.clear();
            let (status, back) = data.read(buf).await;
            buf = back;
            match status {
                StreamResult::Complete(n) => count += n as u64,
                StreamResult::Dropped | StreamResult::Cancelled => return count,
            }
        }
    }

    async fn repeat(byte: u8, n: u64) -> StreamReader<u8> {
        let (mut tx, rx) = wit_stream::new();
        wit_bindgen::spawn_local(async move {
            let mut left = n;
            while left > 0 {
                let len = left.min(CHUNK as u64);
                if !tx.write_all(vec![byte; len as usize]).await.is_empty() {
                    return; // the reader went away
                }
                WRITTEN.fetch_add(len, Ordering::Relaxed);
                left -= len;
            }
        });
        rx
    }

    async fn written() -> u64 {
        WRITTEN.load(Ordering::Relaxed)
    }

    async fn later(v: u32, ms: u32) -> FutureReader<u32> {
        let (tx, rx) = wit_future::new(|| 0);
        wit_bindgen::spawn_local(async move {
            wasip3::clocks::monotonic_clock::wait_for(u64::from(ms) * 1_000_000).await;
            let _ = tx.write(v).await;
        });
        rx
    }

    async fn tick(ms: u32) -> FutureReader<()> {
        let (tx, rx) = wit_future::new(|| ());
        wit_bindgen::spawn_local(async move {
            wasip3::clocks::monotonic_clock::wait_for(u64::from(ms) * 1_000_000).await;
            let _ = tx.write(()).await;
        });
        rx
    }

    async fn upper_later(text: FutureReader<String>) -> String {
        text.await.to_uppercase()
    }
}

impl sync_calc::Guest for Lib {
    fn double(x: u32) -> u32 {
        x.wrapping_mul(2)
    }
}

impl async_plain::Guest for Lib {
    async fn add(a: u32, b: u32) -> u32 {
        a.wrapping_add(b)
    }

    async fn upper(text: String) -> String {
        text.to_uppercase()
    }
}

export!(Lib);
