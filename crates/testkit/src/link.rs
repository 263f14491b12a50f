//! A loopback TCP relay between clients and a broker that a test can cut and restore: a network
//! outage as the clients see it, while the broker keeps running with all its state.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// The relay; clients connect to [`Link::addr`], which the broker advertises. It runs on a
/// runtime of its own, so a test's busy or blocked runtime never slows the relay down.
pub struct Link {
    pub addr: SocketAddr,
    state: Arc<State>,
    accept: AbortHandle,
    runtime: Option<tokio::runtime::Runtime>,
}

#[derive(Default)]
struct State {
    down: AtomicBool,
    conns: Mutex<Vec<AbortHandle>>,
}

impl Link {
    /// Relays connections accepted on `listener` (bound to loopback) to `target`.
    pub fn start(listener: std::net::TcpListener, target: SocketAddr) -> Self {
        assert!(target.ip().is_loopback(), "tests talk to loopback only");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("test-link")
            .enable_all()
            .build()
            .unwrap();
        let _entered = runtime.enter();
        listener.set_nonblocking(true).unwrap();
        let listener = TcpListener::from_std(listener).unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback(), "tests listen on loopback only");
        let state = Arc::new(State::default());
        let s = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if s.down.load(Ordering::SeqCst) {
                    drop(client); // refused while cut
                    continue;
                }
                let relay = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let mut client = client;
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                s.conns
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(relay.abort_handle());
            }
        })
        .abort_handle();
        drop(_entered);
        Self {
            addr,
            state,
            accept,
            runtime: Some(runtime),
        }
    }

    /// Cuts every connection and refuses new ones until [`Link::restore`].
    pub fn cut(&self) {
        self.state.down.store(true, Ordering::SeqCst);
        for c in self
            .state
            .conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            c.abort();
        }
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.state.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
        // Dropped inside a test's runtime: shut down without blocking it.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
