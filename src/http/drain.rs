//! The graceful stop of the HTTP server ("drain") on SIGTERM or SIGINT.
//!
//! actix's own graceful stop waits for every open connection to close, and an idle keep-alive
//! connection only closes when its keep-alive timeout (75 s) runs out, far beyond the grace
//! period: until then the connection goes on serving new requests, and at the end of the grace
//! whatever is in flight is cut. A load balancer in front keeps sending on its pooled
//! connections all that time. So we drain ourselves ([`Drain::begin`]):
//!
//! 1. From the signal on, `/health/ready` answers 503 `shutting_down` (the load balancer takes
//!    this instance out), and every response (the ones in flight and any request that still
//!    arrives on an already-open connection) carries `Connection: close`, so the connection ends
//!    with that response and the client reconnects, to another instance.
//! 2. The accept loop pauses and the listening socket is shut: new connections are refused (a
//!    load balancer retries a refused connection elsewhere, whatever the method, since nothing
//!    was sent).
//! 3. As soon as no request is in flight any more (at once if none was), every idle keep-alive
//!    connection is closed: its read half is shut, so actix reads end-of-stream and closes it
//!    as a client hang-up. Until then an idle connection stays open, so a request a client
//!    sends on it is answered (with `Connection: close`) rather than cut: closing a connection
//!    a client may be writing to at that moment is the one race HTTP/1.1 cannot settle, and it
//!    is no cheaper while the process waits for other requests anyway. Each open connection
//!    serves at most one request after the signal.
//!
//! actix's server is stopped only when the last connection has closed ([`Drain::closed`]), at
//! most `server.shutdown_timeout_secs` after the signal; whatever is still open then is cut.
//!
//! The connections are known from `HttpServer::on_connect` ([`Drain::on_connect`]): each keeps
//! a duplicate of its socket's descriptor (shutting down a duplicate shuts the socket) and a
//! count of requests in flight, kept by the middleware [`track`] from the request's arrival
//! until its response body is done.

use std::any::Any;
use std::collections::HashMap;
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web::{Bytes, Data};

/// The drain state of one server: whether the stop has begun, and its open connections.
#[derive(Debug, Default)]
pub struct Drain {
    draining: AtomicBool,
    in_flight: AtomicUsize,
    next_id: AtomicU64,
    connections: Mutex<HashMap<u64, Weak<Connection>>>,
}

/// What [`Drain::begin`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Begun {
    /// Requests in flight; each closes its connection with its response.
    pub in_flight: usize,
    /// Open connections (busy or idle).
    pub connections: usize,
}

impl Drain {
    /// A drain not begun, with no connection.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Whether the stop has begun.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Begins the drain: readiness fails and responses close their connection from now on;
    /// idle connections are closed once no request is in flight (now, if none is).
    pub fn begin(&self) -> Begun {
        self.draining.store(true, Ordering::SeqCst);
        // Paired with the decrement in `InFlight::drop`: whichever of the two runs second sees
        // the other's write, so the idle connections are closed when the last request ends.
        let in_flight = self.in_flight.load(Ordering::SeqCst);
        if in_flight == 0 {
            self.close_idle();
        }
        Begun {
            in_flight,
            connections: self.open_connections(),
        }
    }

    /// Shuts the read half of every open connection with no request in flight.
    fn close_idle(&self) {
        let open: Vec<Arc<Connection>> = self
            .connections
            .lock()
            .expect("drain registry")
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        for connection in open {
            if connection.busy.load(Ordering::SeqCst) == 0 {
                connection.close_read();
            }
        }
    }

    /// The `HttpServer::on_connect` hook: registers a new TCP connection. Anything else (a
    /// socket type we do not know) is left alone and simply not closed early.
    pub fn on_connect(self: &Arc<Self>, io: &dyn Any, extensions: &mut Extensions) {
        let Some(stream) = io.downcast_ref::<actix_web::rt::net::TcpStream>() else {
            return;
        };
        let socket = match stream.as_fd().try_clone_to_owned() {
            Ok(socket) => socket,
            Err(error) => {
                tracing::warn!(%error, "cannot keep a handle on a new connection; it will not be closed early on stop");
                return;
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection {
            id,
            socket,
            busy: AtomicUsize::new(0),
            drain: Arc::downgrade(self),
        });
        self.connections
            .lock()
            .expect("drain registry")
            .insert(id, Arc::downgrade(&connection));
        extensions.insert(Registered(connection));
    }

    /// Connections open now (for the stop log).
    pub fn open_connections(&self) -> usize {
        self.connections.lock().expect("drain registry").len()
    }

    /// Waits until every connection has closed, at most `limit`; answers whether they did.
    ///
    /// actix's own graceful stop cannot do this: a worker that sees its connection channel
    /// close (the accept thread stops first) ends before it reads its stop message, and ending
    /// stops its thread with every connection on it, requests in flight included.
    pub async fn closed(&self, limit: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if self.open_connections() == 0 {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// One open connection: a duplicate of its socket and its requests in flight.
#[derive(Debug)]
struct Connection {
    id: u64,
    socket: OwnedFd,
    busy: AtomicUsize,
    drain: Weak<Drain>,
}

impl Connection {
    /// Shuts the read half: actix reads end-of-stream and closes the connection once any
    /// response in progress is written (a request already received is still answered).
    fn close_read(&self) {
        if let Err(error) = socket2::SockRef::from(&self.socket).shutdown(Shutdown::Read) {
            // The peer may have gone already; nothing is left to close then.
            tracing::debug!(%error, "closing an idle connection");
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(drain) = self.drain.upgrade() {
            drain
                .connections
                .lock()
                .expect("drain registry")
                .remove(&self.id);
        }
    }
}

/// The connection's entry, kept in its connection data.
#[derive(Clone)]
struct Registered(Arc<Connection>);

/// One request in flight (on a connection), until its response body is done.
struct InFlight {
    connection: Option<Arc<Connection>>,
    drain: Option<Data<Drain>>,
}

impl InFlight {
    fn enter(req: &ServiceRequest) -> Self {
        let connection = req.conn_data::<Registered>().map(|r| r.0.clone());
        if let Some(connection) = &connection {
            connection.busy.fetch_add(1, Ordering::SeqCst);
        }
        let drain = req.app_data::<Data<Drain>>().cloned();
        if let Some(drain) = &drain {
            drain.in_flight.fetch_add(1, Ordering::SeqCst);
        }
        Self { connection, drain }
    }

    fn draining(&self) -> bool {
        self.drain.as_ref().is_some_and(|d| d.draining())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(connection) = &self.connection {
            connection.busy.fetch_sub(1, Ordering::SeqCst);
        }
        if let Some(drain) = &self.drain {
            // The last request of a drain: close the idle connections (among them any whose
            // response left before the stop began, keeping it alive).
            if drain.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 && drain.draining() {
                drain.close_idle();
            }
        }
    }
}

/// Middleware (outermost): counts the request in flight on its connection until the response
/// body is done, and once the drain has begun marks the response `Connection: close`.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let in_flight = InFlight::enter(&req);
    // (No clone of the request may be held across the call: routing needs it unshared.) An
    // error of an inner service is rendered by actix without our header; the connection is
    // then closed with the idle ones.
    let mut res = next.call(req).await?;
    if in_flight.draining() {
        res.response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(res.map_body(|_, body| Tracked {
        body: BoxBody::new(body),
        _in_flight: in_flight,
    }))
}

/// A response body that holds its request's [`InFlight`] until it is done or dropped.
struct Tracked {
    body: BoxBody,
    _in_flight: InFlight,
}

impl MessageBody for Tracked {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}
