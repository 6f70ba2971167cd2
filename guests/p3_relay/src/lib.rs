//! The p3 importer (world `membrane:p3lib/p3relay`): each `relay` export calls the imported
//! async `calc` (p3_lib, through a link), passing a `stream<u8>` in (`count-via`) or reading
//! one back (`sum-repeat`).

wit_bindgen::generate!({ path: "../../wit/p3-lib", world: "p3relay" });

use exports::membrane::p3lib::relay::Guest;
use membrane::p3lib::calc;
use wit_bindgen::StreamResult;

/// The size of one read or write of a stream.
const CHUNK: usize = 64 * 1024;

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
}

export!(Relay);
