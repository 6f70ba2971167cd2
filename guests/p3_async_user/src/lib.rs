//! A p3 importer of async functions without streams: its async `relay-async` export calls
//! the `async func`s of the `membrane:p3lib/async-plain` import (p3_lib exports them), and
//! shows what its grants let it see (`env`, `read`).

wit_bindgen::generate!({ path: "../../wit/p3-lib", world: "p3-async-user" });

use exports::membrane::p3lib::relay_async::Guest;
use membrane::p3lib::async_plain;

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
        use wasip3::filesystem::types::{DescriptorFlags, OpenFlags, PathFlags};
        let (dir, rel) = wasip3::filesystem::preopens::get_directories()
            .into_iter()
            .find_map(|(dir, guest)| {
                let rest = path.strip_prefix(&format!("{}/", guest.trim_end_matches('/')))?;
                Some((dir, rest.to_string()))
            })
            .ok_or("no-preopen")?;
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
}

export!(AsyncUser);
