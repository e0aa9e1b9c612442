//! The HTTP server: accepts connections, hands every request to the service layer
//! ([`HttpService`]) and, on shutdown, stops accepting and drains what is in flight.

pub mod request_id;
mod service;

use std::future::Future;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

pub(crate) use service::method_label;
pub use service::{ClientAddr, Gatekeeper, HttpService};

/// How long a client may take to send a request's headers before the connection is closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How shutdown ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drained {
    /// Every in-flight request finished.
    Completely,
    /// The drain timeout passed with requests still running; they were cut off.
    TimedOut,
}

/// Serves `service` on `listener` until `shutdown` resolves, then stops accepting
/// connections and waits up to `drain_timeout` for in-flight requests to finish.
pub async fn serve(
    listener: TcpListener,
    service: HttpService,
    shutdown: impl Future<Output = ()>,
    drain_timeout: Duration,
) -> Drained {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    on_accept_error(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
        let connection_service = service.for_connection(remote);
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), connection_service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%remote, error = %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let in_flight = service.in_flight();
    tracing::info!(in_flight, timeout = ?drain_timeout, "shutting down: draining in-flight requests");
    match tokio::time::timeout(drain_timeout, graceful.shutdown()).await {
        Ok(()) => Drained::Completely,
        Err(_elapsed) => Drained::TimedOut,
    }
}

/// Accept errors are not fatal: a peer that reset during the handshake is routine, running
/// out of file descriptors passes once connections close.
async fn on_accept_error(error: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Resolves when the process receives SIGINT or SIGTERM.
///
/// The handlers are installed when this is called, not when the future is first polled, so
/// a signal sent as soon as the server says it is listening is not lost (nor does it kill
/// the process with the default action).
pub fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = signal(SignalKind::interrupt()).and_then(|interrupt| {
            signal(SignalKind::terminate()).map(|terminate| (interrupt, terminate))
        });
        async move {
            match handlers {
                Ok((mut interrupt, mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => tracing::info!("received SIGINT"),
                        _ = terminate.recv() => tracing::info!("received SIGTERM"),
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("received Ctrl-C");
    }
}
