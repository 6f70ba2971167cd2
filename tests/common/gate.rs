//! A call that stays in flight until the test lets it go.
//!
//! The probe's `connect(addr)` opens a TCP connection, sends `ping` and waits for the
//! answer. Pointed at a [`Gate`], that call tells the test when it is running (the gate
//! accepts it) and ends only when the test answers or drops it. Tests wait on that instead
//! of starting a call that sleeps and hoping it is still running a moment later, which a
//! busy machine does not promise.

use std::net::SocketAddr;

use membrane::{ModuleSpec, Val};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::wait::HANG_GUARD;

/// A listener on 127.0.0.1 that holds the probe's `connect` calls.
pub struct Gate {
    listener: TcpListener,
    addr: SocketAddr,
}

/// A call that reached the gate: it runs until [`Held::release`] or until this is dropped
/// (then `connect` returns an empty answer).
pub struct Held(TcpStream);

impl Gate {
    pub async fn new() -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("gate binds");
        let addr = listener.local_addr().unwrap();
        Gate { listener, addr }
    }

    /// The gate's address, as the probe's `connect` and a network grant take it.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// `m` with the network grant that lets it reach the gate.
    pub fn grant(&self, m: ModuleSpec) -> ModuleSpec {
        m.network(self.addr())
    }

    /// The arguments of the probe's `connect` to this gate.
    pub fn args(&self) -> Vec<Val> {
        vec![Val::String(self.addr())]
    }

    /// Waits until a call is at the gate: it connected and sent its `ping`.
    pub async fn arrived(&self) -> Held {
        let wait = async {
            let (mut stream, _) = self.listener.accept().await.expect("gate accepts");
            let mut ping = [0u8; 4];
            stream
                .read_exact(&mut ping)
                .await
                .expect("the call says ping");
            assert_eq!(&ping, b"ping");
            Held(stream)
        };
        tokio::time::timeout(HANG_GUARD, wait)
            .await
            .expect("no call reached the gate")
    }
}

impl Held {
    /// Lets the call go: its `connect` returns `Ok("pong")`.
    pub async fn release(mut self) {
        // The guest may be gone already (its call ended some other way): nothing to tell.
        let _ = self.0.write_all(b"pong").await;
    }
}
