//! TCP connection racing, per RFC 8305 ("Happy Eyeballs v2") §4–§5: the resolved addresses
//! are interleaved by family (each family rotated by the origin's dial count, so its
//! connections spread over the addresses; see [`interleave`]), an attempt starts every [`ATTEMPT_DELAY`] (or at once when the
//! previous one fails) while earlier attempts keep running, the first to connect wins and the
//! others are dropped, which closes their sockets.
//!
//! hyper-util's `HttpConnector` races only the two families against each other and walks the
//! addresses of one family in turn, each with a share of the connect timeout; with no timeout
//! set, one black-holed address stalls every address after it.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

/// RFC 8305 §8's recommended "Connection Attempt Delay".
pub(crate) const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Socket options set on every attempt.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpOptions {
    pub(crate) nodelay: bool,
    pub(crate) keepalive: Option<Duration>,
}

/// Every address failed: each one with its error, in the order they were tried.
#[derive(Debug)]
pub(crate) struct ConnectAttempts(pub(crate) Vec<(SocketAddr, io::Error)>);

impl ConnectAttempts {
    /// True when every address refused the connection (nothing listens there).
    pub(crate) fn all_refused(&self) -> bool {
        self.0
            .iter()
            .all(|(_, e)| e.kind() == io::ErrorKind::ConnectionRefused)
    }
}

impl fmt::Display for ConnectAttempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "all {} addresses failed:", self.0.len())?;
        for (i, (addr, error)) in self.0.iter().enumerate() {
            let sep = if i == 0 { " " } else { "; " };
            write!(f, "{sep}{addr}: {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConnectAttempts {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The last error, so a cause-chain walk finds an io::Error.
        self.0
            .last()
            .map(|(_, e)| e as &(dyn std::error::Error + 'static))
    }
}

/// Puts the addresses in racing order for an origin's `nth` dial (counted from 0): the first
/// address's family first, then alternating families (RFC 8305 §4), each family in the
/// resolver's order rotated left by `nth` (modulo the family's size).
///
/// The rotation spreads an origin's connections over the addresses its name has: with three
/// addresses of one family, dials 0, 1 and 2 start their races at the first, second and third,
/// and each wins where it starts unless that address is slow or down, when the race moves on
/// as usual. Rotating within each family keeps the resolver's family preference (the family of
/// its first answer is tried first, RFC 8305 §4) for every dial.
pub(crate) fn interleave(addrs: Vec<SocketAddr>, nth: usize) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return addrs;
    };
    let first_v6 = first.is_ipv6();
    let (mut preferred, mut other): (Vec<_>, Vec<_>) =
        addrs.into_iter().partition(|a| a.is_ipv6() == first_v6);
    for family in [&mut preferred, &mut other] {
        if !family.is_empty() {
            let start = nth % family.len();
            family.rotate_left(start);
        }
    }
    let mut out = Vec::with_capacity(preferred.len() + other.len());
    let (mut p, mut o) = (preferred.into_iter(), other.into_iter());
    loop {
        match (p.next(), o.next()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

type Attempt = Pin<Box<dyn Future<Output = (SocketAddr, io::Result<TcpStream>)> + Send>>;

fn attempt(addr: SocketAddr, options: TcpOptions) -> Attempt {
    Box::pin(async move {
        let result = async {
            let socket = if addr.is_ipv6() {
                TcpSocket::new_v6()?
            } else {
                TcpSocket::new_v4()?
            };
            let stream = socket.connect(addr).await?;
            stream.set_nodelay(options.nodelay)?;
            if let Some(idle) = options.keepalive {
                let keepalive = socket2::TcpKeepalive::new().with_time(idle);
                socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
            }
            Ok(stream)
        }
        .await;
        (addr, result)
    })
}

/// Connects to the first of `addrs` (already in racing order) that answers, starting a new
/// attempt every `delay`. Unbounded in time: the caller holds the connect deadline.
pub(crate) async fn race(
    addrs: &[SocketAddr],
    options: TcpOptions,
    delay: Duration,
) -> Result<(TcpStream, SocketAddr), ConnectAttempts> {
    let mut pending = addrs.iter().copied();
    let mut running: Vec<Attempt> = Vec::with_capacity(addrs.len().min(4));
    let mut failures = Vec::new();
    let next_start = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(next_start);

    std::future::poll_fn(|cx| {
        loop {
            // Start the next attempt when nothing runs, or when its delay is up (polling the
            // timer registers for that moment).
            let due = running.is_empty()
                || (pending.len() > 0 && next_start.as_mut().poll(cx).is_ready());
            if due {
                match pending.next() {
                    Some(addr) => {
                        running.push(attempt(addr, options));
                        next_start.as_mut().reset(Instant::now() + delay);
                    }
                    // `due` with nothing left to start means nothing runs either.
                    None => {
                        return Poll::Ready(Err(ConnectAttempts(std::mem::take(&mut failures))));
                    }
                }
            }
            let mut failed = false;
            let mut i = 0;
            while i < running.len() {
                match running[i].as_mut().poll(cx) {
                    Poll::Pending => i += 1,
                    Poll::Ready((addr, Ok(stream))) => return Poll::Ready(Ok((stream, addr))),
                    Poll::Ready((addr, Err(error))) => {
                        drop(running.swap_remove(i));
                        failures.push((addr, error));
                        failed = true;
                    }
                }
            }
            if failed {
                // A failure frees the next address to start now (RFC 8305 §5).
                next_start.as_mut().reset(Instant::now());
            } else if !due {
                return Poll::Pending;
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter()
            .map(|a| a.parse().expect("socket address"))
            .collect()
    }

    /// Families alternate, starting with the resolver's first, each in its own order.
    #[test]
    fn interleaves_families() {
        let given = addrs(&[
            "[::1]:1",
            "[::1]:2",
            "[::1]:3",
            "127.0.0.1:1",
            "127.0.0.1:2",
        ]);
        let want = addrs(&[
            "[::1]:1",
            "127.0.0.1:1",
            "[::1]:2",
            "127.0.0.1:2",
            "[::1]:3",
        ]);
        assert_eq!(interleave(given, 0), want);
        assert_eq!(interleave(Vec::new(), 3), Vec::<SocketAddr>::new());
    }

    /// Dial k starts at address k mod n of each family; the families still alternate, the
    /// resolver's first family first.
    #[test]
    fn the_nth_dial_starts_at_the_nth_address_of_each_family() {
        let one_family = addrs(&["127.0.0.1:1", "127.0.0.2:1", "127.0.0.3:1"]);
        let firsts: Vec<SocketAddr> = (0..6)
            .map(|k| interleave(one_family.clone(), k)[0])
            .collect();
        let want = addrs(&[
            "127.0.0.1:1",
            "127.0.0.2:1",
            "127.0.0.3:1",
            "127.0.0.1:1",
            "127.0.0.2:1",
            "127.0.0.3:1",
        ]);
        assert_eq!(firsts, want);
        assert_eq!(
            interleave(one_family.clone(), 2),
            addrs(&["127.0.0.3:1", "127.0.0.1:1", "127.0.0.2:1"])
        );

        let mixed = addrs(&[
            "[::1]:1",
            "[::1]:2",
            "127.0.0.1:1",
            "127.0.0.2:1",
            "127.0.0.3:1",
        ]);
        let want = addrs(&[
            "[::1]:2",
            "127.0.0.2:1",
            "[::1]:1",
            "127.0.0.3:1",
            "127.0.0.1:1",
        ]);
        assert_eq!(interleave(mixed, 1), want);
    }

    /// Two addresses of one family, the first dropping SYNs: the second attempt starts after
    /// the delay, while the first still hangs, and wins. (hyper-util's `HttpConnector` tries
    /// one family's addresses in turn, so without a per-address timeout it never got there.)
    #[tokio::test]
    async fn a_black_holed_address_is_raced_past_within_its_family() {
        let hole = https_pool_testkit::SynDropListener::bind("127.0.0.1:0".parse().expect("addr"))
            .expect("black hole");
        let live = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let live_addr = live.local_addr().expect("addr");
        let options = TcpOptions {
            nodelay: true,
            keepalive: Some(Duration::from_secs(60)),
        };
        let raced = tokio::time::timeout(
            Duration::from_secs(5),
            race(&[hole.addr(), live_addr], options, ATTEMPT_DELAY),
        )
        .await
        .expect("the race ends before the test's bound");
        let (_stream, winner) = raced.expect("the live address connects");
        assert_eq!(winner, live_addr);
    }

    /// With nothing listening anywhere, every address is tried and named in the error.
    #[tokio::test]
    async fn every_failure_is_listed() {
        // Bound then dropped: ports that refuse.
        let mut targets = Vec::new();
        for _ in 0..3 {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            targets.push(listener.local_addr().expect("addr"));
        }
        let options = TcpOptions {
            nodelay: true,
            keepalive: None,
        };
        let error = race(&targets, options, ATTEMPT_DELAY)
            .await
            .expect_err("nothing listens");
        assert!(error.all_refused(), "{error}");
        let tried: Vec<SocketAddr> = error.0.iter().map(|(a, _)| *a).collect();
        assert_eq!(tried.len(), 3);
        let message = error.to_string();
        for target in &targets {
            assert!(message.contains(&target.to_string()), "{message}");
        }
    }
}
