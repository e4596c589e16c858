//! Noticing that a server asked for a client certificate the pool could not give, so a TLS 1.2
//! refusal, a bare `handshake_failure` alert, can still be reported as
//! [`Error::ClientCertificateRequired`](crate::Error::ClientCertificateRequired).
//!
//! rustls asks the configuration's [`ResolvesClientCert`] for an identity only when the server
//! sends a `CertificateRequest`, and it does so inside the handshake future's poll, on the
//! thread polling it. [`Unanswered`] wraps the resolver and raises a thread-local flag when it
//! had nothing to give; [`WatchedHandshake`] clears the flag before each poll of its handshake
//! and reads it after, so the flag is attributed to exactly that connection.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;

thread_local! {
    /// Set by [`Unanswered::resolve`] during one poll of a [`WatchedHandshake`].
    static UNANSWERED: Cell<bool> = const { Cell::new(false) };
}

/// A client-certificate resolver that notes when a server asked and it had no identity.
#[derive(Debug)]
pub(super) struct Unanswered(pub(super) Arc<dyn ResolvesClientCert>);

impl ResolvesClientCert for Unanswered {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let chosen = self.0.resolve(root_hint_subjects, sigschemes);
        if chosen.is_none() {
            UNANSWERED.with(|flag| flag.set(true));
        }
        chosen
    }

    fn only_raw_public_keys(&self) -> bool {
        self.0.only_raw_public_keys()
    }

    fn has_certs(&self) -> bool {
        self.0.has_certs()
    }
}

/// A TLS handshake, and whether the server asked for a client certificate that was not sent.
pub(super) struct WatchedHandshake<F> {
    handshake: F,
    unanswered: bool,
}

impl<F> WatchedHandshake<F> {
    pub(super) fn new(handshake: F) -> Self {
        WatchedHandshake {
            handshake,
            unanswered: false,
        }
    }
}

impl<F: Future + Unpin> Future for WatchedHandshake<F> {
    /// The handshake's result, and whether a certificate request went unanswered.
    type Output = (F::Output, bool);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        UNANSWERED.with(|flag| flag.set(false));
        let polled = Pin::new(&mut self.handshake).poll(cx);
        if UNANSWERED.with(|flag| flag.replace(false)) {
            self.unanswered = true;
        }
        let output = ready!(polled);
        Poll::Ready((output, self.unanswered))
    }
}
