//! The h2 body pipe: writes an [`OutBody`] into an h2 stream under flow control.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::Body;

use crate::error::{BoxError, TimeoutKind};
use crate::timeouts::{Deadline, Limits, PhaseClock};

use super::OutBody;

/// Writes an [`OutBody`] into an h2 stream: each chunk in the pieces h2 grants flow-control
/// capacity for, trailers last. Watches for the peer resetting the stream,
/// and resets it itself when no capacity comes for `write_timeout`.
pub(crate) struct Pipe {
    body: OutBody,
    tx: h2::SendStream<Bytes>,
    /// A chunk taken from the body, waiting for capacity.
    pending: Option<(Bytes, bool)>,
    limits: Limits,
    /// Runs while the pipe waits for capacity (not while it waits for the caller's body).
    clock: PhaseClock,
}

/// Why a pipe stopped early.
#[derive(Debug)]
pub(crate) enum PipeError {
    /// The request body itself failed; the stream was reset with CANCEL.
    Body(BoxError),
    /// h2 refused the data or the peer reset the stream.
    Stream(h2::Error),
    /// No flow-control capacity came before this deadline; the stream was reset with CANCEL.
    Timeout(Deadline),
}

impl Pipe {
    pub(crate) fn new(body: OutBody, tx: h2::SendStream<Bytes>, limits: Limits) -> Pipe {
        Pipe {
            body,
            tx,
            pending: None,
            limits,
            clock: PhaseClock::default(),
        }
    }

    /// Stops writing and resets the stream with `reason`.
    pub(crate) fn reset(&mut self, reason: h2::Reason) {
        self.tx.send_reset(reason);
    }
}

impl Future for Pipe {
    type Output = Result<(), PipeError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            // Registered while waiting for the body or for capacity, so a peer reset wakes us.
            if let Poll::Ready(reset) = this.tx.poll_reset(cx) {
                return Poll::Ready(Err(PipeError::Stream(match reset {
                    Ok(reason) => h2::Error::from(reason),
                    Err(e) => e,
                })));
            }
            if let Some((mut chunk, end)) = this.pending.take() {
                // h2 is handed only what the peer's window has room for, so the body counts as
                // written (and the response head's deadline starts) only once the window took
                // all of it; a window that never opens ends in the write deadline, whatever
                // the chunk's size. Capacity is asked for only with data in hand, so a stalled
                // body never pins connection window (hyper #4003).
                let mut granted = this.tx.capacity();
                if granted == 0 {
                    match this.tx.poll_capacity(cx) {
                        Poll::Pending => {
                            this.pending = Some((chunk, end));
                            if let Poll::Ready(deadline) =
                                this.clock.poll_wait(&this.limits, TimeoutKind::Write, cx)
                            {
                                this.tx.send_reset(h2::Reason::CANCEL);
                                return Poll::Ready(Err(PipeError::Timeout(deadline)));
                            }
                            return Poll::Pending;
                        }
                        Poll::Ready(Some(Ok(n))) => {
                            this.clock.progress();
                            granted = n;
                        }
                        Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(PipeError::Stream(e))),
                        Poll::Ready(None) => {
                            return Poll::Ready(Err(PipeError::Stream(h2::Error::from(
                                h2::Reason::STREAM_CLOSED,
                            ))));
                        }
                    }
                    if granted == 0 {
                        this.pending = Some((chunk, end));
                        continue;
                    }
                }
                let piece = chunk.split_to(granted.min(chunk.len()));
                let last = chunk.is_empty();
                this.tx
                    .send_data(piece, end && last)
                    .map_err(PipeError::Stream)?;
                if !last {
                    this.tx.reserve_capacity(chunk.len());
                    this.pending = Some((chunk, end));
                    continue;
                }
                if end {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            match Pin::new(&mut this.body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    return Poll::Ready(
                        this.tx
                            .send_data(Bytes::new(), true)
                            .map_err(PipeError::Stream),
                    );
                }
                Poll::Ready(Some(Err(e))) => {
                    this.tx.send_reset(h2::Reason::CANCEL);
                    return Poll::Ready(Err(PipeError::Body(e)));
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(mut chunk) => {
                        let end = this.body.is_end_stream();
                        if chunk.remaining() == 0 {
                            if end {
                                return Poll::Ready(
                                    this.tx.send_data(chunk, true).map_err(PipeError::Stream),
                                );
                            }
                            continue;
                        }
                        let chunk = chunk.copy_to_bytes(chunk.remaining());
                        this.tx.reserve_capacity(chunk.len());
                        this.pending = Some((chunk, end));
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            this.tx.reserve_capacity(0);
                            return Poll::Ready(
                                this.tx.send_trailers(trailers).map_err(PipeError::Stream),
                            );
                        }
                    }
                },
            }
        }
    }
}
