//! The accept loop behind [`crate::SimServer`]. Every connection is served in a
//! task of one `JoinSet` owned by the loop, so stopping closes the listener,
//! asks each connection to finish the response it is sending (graceful, for up
//! to a grace period) and then drops what is left: no connection outlives the
//! server. A client holding keep-alive connections sees the server gone, a
//! stalled download is cut, and nothing keeps writing to the archive after a
//! new server opened the same root.

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

/// Binds `addr` with `SO_REUSEADDR`, so a server can start on the address of one just
/// stopped even while the closed connections linger in TIME_WAIT.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Told `true` when a connection opens and `false` when it closes (the stats count them).
pub type ConnectionHook = std::sync::Arc<dyn Fn(bool) + Send + Sync>;

/// Calls the hook with `false` when the connection's task ends, however it ends.
struct Open(ConnectionHook);

impl Drop for Open {
    fn drop(&mut self) {
        (self.0)(false)
    }
}

/// Serves `app` until `stop` fires (or its sender is dropped), then shuts down as above.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    stop: oneshot::Receiver<()>,
    grace: Duration,
    hook: ConnectionHook,
) {
    let (closing, closing_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    hook(true);
                    let open = Open(hook.clone());
                    let served = connection(tcp, app.clone(), closing_rx.clone());
                    connections.spawn(async move {
                        let _open = open;
                        served.await
                    });
                }
                // as axum::serve: a failed handshake is the client's business; anything else
                // (out of file descriptors) gets a pause before the next accept
                Err(e) if is_connection_error(&e) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = closing.send(true);
    let _ = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.shutdown().await;
}

async fn connection(tcp: TcpStream, app: Router, mut closing: watch::Receiver<bool>) {
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(app));
    tokio::pin!(conn);
    let mut asked = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            _ = closing.changed(), if !asked => {
                // idle keep-alive connections close now, busy ones after their response
                asked = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
