//! The p3 importer (world `membrane:p3lib/p3relay`): each `relay` export calls the imported
//! async `calc` (p3_lib, through a link), passing a `stream<u8>` in (`count-via`) or reading
//! one back (`sum-repeat`), and futures either way (`later-via`, `tick-via`,
//! `upper-later-via`).

wit_bindgen::generate!({ path: "../../wit/p3-lib", world: "p3relay" });

use exports::membrane::p3lib::relay::Guest;
use membrane::p3lib::calc;
use std::sync::atomic::{AtomicBool, Ordering};

use wit_bindgen::{StreamReader, StreamResult};

/// The size of one read or write of a stream.
const CHUNK: usize = 64 * 1024;

/// Set by `release`: `hold-repeat` reads on.
static RELEASED: AtomicBool = AtomicBool::new(false);

struct Relay;

impl Guest for Relay {
    async fn add_via(a: u32, b: u32) -> u32 {
        calc::add(a, b).await
    }

    async fn sleep_via(ms: u32) -> u32 {
        calc::sleep(ms).await
    }

    async fn count_via(n: u64) -> u64 {
        let (mut tx, rx) = wit_stream::new();
        wit_bindgen::spawn_local(async move {
            let mut left = n;
            while left > 0 {
                let len = left.min(CHUNK as u64);
                if !tx.write_all(vec![b'a'; len as usize]).await.is_empty() {
                    return; // the callee stopped reading
                }
                left -= len;
            }
        });
        calc::count_bytes(rx).await
    }

    async fn sum_repeat(n: u64) -> u64 {
        let mut data = calc::repeat(b'z', n).await;
        read_to_end(&mut data, u64::MAX).await
    }

    async fn hold_repeat(n: u64) -> u64 {
        let mut data = calc::repeat(b'z', n).await;
        let first = read_to_end(&mut data, 1).await;
        while !RELEASED.load(Ordering::Relaxed) {
            wasip3::clocks::monotonic_clock::wait_for(1_000_000).await;
        }
        first + read_to_end(&mut data, u64::MAX).await
    }

    async fn release() {
        RELEASED.store(true, Ordering::Relaxed);
    }

    async fn later_via(v: u32, ms: u32) -> u32 {
        calc::later(v, ms).await.await
    }

    async fn tick_via(ms: u32) -> bool {
        calc::tick(ms).await.await;
        true
    }

    async fn upper_later_via(text: String, ms: u32) -> String {
        let (tx, rx) = wit_future::new(String::new);
        wit_bindgen::spawn_local(async move {
            wasip3::clocks::monotonic_clock::wait_for(u64::from(ms) * 1_000_000).await;
            let _ = tx.write(text).await;
        });
        calc::upper_later(rx).await
    }
}

/// Reads `data` until it ends or `reads` reads completed: how many bytes came.
async fn read_to_end(data: &mut StreamReader<u8>, reads: u64) -> u64 {
    let mut count = 0;
    let mut buf = Vec::with_capacity(CHUNK);
    for _ in 0..reads {
        buf.clear();
        let (status, back) = data.read(buf).await;
        buf = back;
        match status {
            StreamResult::Complete(n) => count += n as u64,
            StreamResult::Dropped | StreamResult::Cancelled => break,
        }
    }
    count
}

export!(Relay);
