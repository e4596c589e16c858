//! The HTTP CONNECT exchange ([RFC 9110 §9.3.6]) that turns a TCP connection to a proxy into a
//! tunnel to the origin: `CONNECT host:port HTTP/1.1`, `Host`, optionally
//! `Proxy-Authorization`, then the proxy's response head, read up to [`MAX_RESPONSE_HEAD`]
//! bytes. A 2xx opens the tunnel; anything else is a refusal carrying the status (as Go's
//! `net/http` and curl treat it). The caller holds the deadline (the connect timeout).
//!
//! Written by hand over the TCP stream rather than with hyper's client connection and
//! `hyper::upgrade` (hyper-util's `Tunnel` connector does that): an upgraded connection is a
//! boxed, type-erased stream, so every read and write of the connection's life would go
//! through a second dynamic dispatch, while this keeps the plain `TcpStream` under TLS. It is
//! safe to read the head with plain reads because after a 2xx the proxy relays only what the
//! origin sends, and a TLS server sends nothing before our ClientHello: bytes past the head
//! are a protocol error, never data to keep. `Tunnel`'s error also does not carry the status.
//!
//! [RFC 9110 §9.3.6]: https://www.rfc-editor.org/rfc/rfc9110#section-9.3.6

use std::io;

use http::{HeaderValue, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::origin::Origin;

/// The largest response head accepted from a proxy (curl allows 100 KiB, Go 1 MiB for all
/// headers; a CONNECT answer is a status line and a few headers).
pub(super) const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// Most header fields in a proxy's response head.
const MAX_HEADERS: usize = 64;

/// Why no tunnel was opened.
#[derive(Debug)]
pub(super) enum TunnelFailure {
    /// The proxy answered with this non-2xx status.
    Refused(StatusCode),
    /// Writing the request or reading the answer failed, or the proxy closed first.
    Io(io::Error),
    /// The answer is not a usable HTTP/1.x response head.
    Malformed(&'static str),
}

/// Sends `CONNECT` for `origin` over `stream` and reads the proxy's answer; on `Ok` the
/// stream is a tunnel to the origin.
pub(super) async fn open<S>(
    stream: &mut S,
    origin: &Origin,
    authorization: Option<&HeaderValue>,
) -> Result<(), TunnelFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream
        .write_all(&request(origin, authorization))
        .await
        .map_err(TunnelFailure::Io)?;
    stream.flush().await.map_err(TunnelFailure::Io)?;

    let mut head = vec![0u8; MAX_RESPONSE_HEAD];
    let mut filled = 0;
    loop {
        let Some(free) = head.get_mut(filled..).filter(|free| !free.is_empty()) else {
            return Err(TunnelFailure::Malformed(
                "the proxy's response head exceeds 8 KiB",
            ));
        };
        let n = stream.read(free).await.map_err(TunnelFailure::Io)?;
        if n == 0 {
            return Err(TunnelFailure::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the proxy closed the connection before answering CONNECT",
            )));
        }
        filled += n;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let parsed = response.parse(&head[..filled]).map_err(|e| {
            TunnelFailure::Malformed(match e {
                httparse::Error::TooManyHeaders => "the proxy's response has over 64 header fields",
                _ => "the proxy's answer is not an HTTP response",
            })
        })?;
        let httparse::Status::Complete(head_len) = parsed else {
            continue;
        };
        let status = response
            .code
            .and_then(|code| StatusCode::from_u16(code).ok())
            .ok_or(TunnelFailure::Malformed(
                "the proxy's response has no valid status",
            ))?;
        if !status.is_success() {
            return Err(TunnelFailure::Refused(status));
        }
        if head_len != filled {
            return Err(TunnelFailure::Malformed(
                "the proxy sent bytes after its 2xx head, before the TLS handshake began",
            ));
        }
        return Ok(());
    }
}

/// The CONNECT request head. The target and `Host` are the origin's authority, IPv6 literals
/// in brackets (RFC 9110 §9.3.6: authority-form).
fn request(origin: &Origin, authorization: Option<&HeaderValue>) -> Vec<u8> {
    let authority = origin.authority();
    let mut request = Vec::with_capacity(128);
    request.extend_from_slice(b"CONNECT ");
    request.extend_from_slice(authority.as_bytes());
    request.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    request.extend_from_slice(authority.as_bytes());
    request.extend_from_slice(b"\r\n");
    if let Some(value) = authorization {
        request.extend_from_slice(b"Proxy-Authorization: ");
        request.extend_from_slice(value.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    request
}

#[cfg(test)]
mod tests {
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A one-shot peer on 127.0.0.1: reads the request head, writes `answer`, then returns
    /// what it read.
    async fn peer(answer: Vec<u8>) -> (TcpStream, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.expect("accept");
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while !seen.ends_with(b"\r\n\r\n") {
                let n = tcp.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            tcp.write_all(&answer).await.expect("write");
            // Keep the socket open until the client is done reading.
            let _ = tcp.read(&mut buf).await;
            seen
        });
        let client = TcpStream::connect(addr).await.expect("connect");
        (client, task)
    }

    fn origin() -> Origin {
        "https://[::1]:8443".parse().expect("origin")
    }

    /// A 200 opens the tunnel; the request names the origin in authority form, in `Host`
    /// too, with the credentials.
    #[tokio::test]
    async fn a_2xx_opens_the_tunnel() {
        let (mut client, seen) =
            peer(b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec()).await;
        let auth = HeaderValue::from_static("Basic dTpw");
        open(&mut client, &origin(), Some(&auth))
            .await
            .expect("tunnel opens");
        drop(client);
        let seen = String::from_utf8(seen.await.expect("peer")).expect("ascii");
        assert_eq!(
            seen,
            "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\
             Proxy-Authorization: Basic dTpw\r\n\r\n"
        );
    }

    /// Any other status is a refusal carrying it, even with a body after the head.
    #[tokio::test]
    async fn a_non_2xx_is_a_refusal_with_its_status() {
        let answer = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
            Proxy-Authenticate: Basic realm=\"p\"\r\nContent-Length: 5\r\n\r\nnope!";
        let (mut client, _seen) = peer(answer.to_vec()).await;
        match open(&mut client, &origin(), None).await {
            Err(TunnelFailure::Refused(status)) => {
                assert_eq!(status, StatusCode::PROXY_AUTHENTICATION_REQUIRED);
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// Garbage, a head past 8 KiB, bytes after a 2xx head, and a close before any answer
    /// are each a failure, never a tunnel.
    #[tokio::test]
    async fn broken_answers_open_no_tunnel() {
        let long = [
            &b"HTTP/1.1 200 OK\r\n"[..],
            &[&b"X-Pad: "[..], &[b'a'; 1000], b"\r\n"].concat().repeat(9),
            b"\r\n",
        ]
        .concat();
        for (answer, want) in [
            (b"SSH-2.0-OpenSSH\r\n\r\n".to_vec(), "not an HTTP response"),
            (long, "exceeds 8 KiB"),
            (
                b"HTTP/1.1 200 OK\r\n\r\n\x16\x03\x01".to_vec(),
                "bytes after",
            ),
        ] {
            let (mut client, _seen) = peer(answer).await;
            match open(&mut client, &origin(), None).await {
                Err(TunnelFailure::Malformed(reason)) => assert!(reason.contains(want), "{reason}"),
                other => panic!("{want}: got {other:?}"),
            }
        }
        // A peer that reads the request and closes without a word.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 256];
            let _ = tcp.read(&mut buf).await;
        });
        let mut client = TcpStream::connect(addr).await.expect("connect");
        match open(&mut client, &origin(), None).await {
            Err(TunnelFailure::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
            other => panic!("expected EOF, got {other:?}"),
        }
    }
}
