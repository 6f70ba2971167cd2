//! A p3 importer of async functions without streams: its async `relay-async` export calls
//! the `async func`s of the `membrane:p3lib/async-plain` import (p3_lib exports them), and
//! shows what its grants let it see (`env`, `read`).

wit_bindgen::generate!({ path: "../../wit/p3-lib", world: "p3-async-user" });

use exports::membrane::p3lib::relay_async::Guest;
use membrane::p3lib::async_plain;
use wasip3::filesystem::types::{DescriptorFlags, OpenFlags, PathFlags};

struct AsyncUser;

impl Guest for AsyncUser {
    async fn add_twice(a: u32, b: u32) -> u32 {
        async_plain::add(async_plain::add(a, b).await, b).await
    }

    async fn shout(text: String) -> String {
        async_plain::upper(text).await
    }

    async fn env(name: String) -> Option<String> {
        wasip3::cli::environment::get_environment()
            .into_iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }

    async fn read(path: String) -> Result<String, String> {
        let (dir, rel) = preopen(&path)?;
        let opened = dir
            .open_at(
                PathFlags::SYMLINK_FOLLOW,
                rel,
                OpenFlags::empty(),
                DescriptorFlags::READ,
            )
            .await
            .map_err(|e| format!("{e:?}"))?;
        let (contents, done) = opened.read_via_stream(0);
        let contents = contents.collect().await;
        done.await.map_err(|e| format!("{e:?}"))?;
        String::from_utf8(contents).map_err(|e| e.to_string())
    }

    async fn write(path: String, size: u64) -> Result<(), String> {
        let (dir, rel) = preopen(&path)?;
        let file = dir
            .open_at(
                PathFlags::empty(),
                rel,
                OpenFlags::CREATE | OpenFlags::TRUNCATE,
                DescriptorFlags::WRITE,
            )
            .await
            .map_err(|e| format!("{e:?}"))?;
        let (mut tx, rx) = wasip3::wit_stream::new();
        let done = file.write_via_stream(rx, 0);
        let mut left = size;
        while left > 0 {
            let n = left.min(64 * 1024);
            if !tx.write_all(vec![b'x'; n as usize]).await.is_empty() {
                break; // the host stopped reading: the result says why
            }
            left -= n;
        }
        drop(tx);
        done.await.map_err(|e| format!("{e:?}"))
    }

    async fn mkdir(path: String) -> Result<(), String> {
        let (dir, rel) = preopen(&path)?;
        dir.create_directory_at(rel)
            .await
            .map_err(|e| format!("{e:?}"))
    }
}

/// The preopened directory `path` is under, and the rest of `path` relative to it.
fn preopen(path: &str) -> Result<(wasip3::filesystem::types::Descriptor, String), String> {
    wasip3::filesystem::preopens::get_directories()
        .into_iter()
        .find_map(|(dir, guest)| {
            let rest = path.strip_prefix(&format!("{}/", guest.trim_end_matches('/')))?;
            Some((dir, rest.to_string()))
        })
        .ok_or_else(|| "no-preopen".to_string())
}

export!(AsyncUser);
