//! The loop that acts on [`decide`](super::decide): acquire a slot where the placement allows,
//! reshape the request for that connection, send it, and ask again if it fails.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::Response;
use tracing::debug;

use super::{Budgets, Decision, GiveUp, Resend, decide};
use crate::body::Body;
use crate::error::Error;
use crate::exchange::{self, Exchange, SendFailure};
use crate::lease::LeaseRef;
use crate::origin_pool::OriginPool;
use crate::outgoing::{self, Outgoing};
use crate::priority::Priority;
use crate::timeouts::RequestLimits;

/// Awaits the response of `exchange`, sent on connection `sent_on`; a failure goes to
/// [`after_failure`]. Failures are not counted here; callers count them once.
pub(crate) async fn complete(
    pool: &Arc<OriginPool>,
    mut exchange: Exchange,
    sent_on: u64,
    max_retries: usize,
    limits: RequestLimits,
) -> Result<Response<Body>, Error> {
    match (&mut exchange).await {
        Ok(response) => Ok(response),
        Err(failure) => after_failure(pool, failure, sent_on, max_retries, limits).await,
    }
}

/// What becomes of a request whose exchange on connection `sent_on` failed: sent again while
/// [`decide`] says so, or the error. Boxed (and built in a plain function) so that nothing of
/// this rare path is laid out in the common path's future.
pub(crate) fn after_failure(
    pool: &Arc<OriginPool>,
    failure: SendFailure,
    sent_on: u64,
    max_retries: usize,
    limits: RequestLimits,
) -> Pin<Box<dyn Future<Output = Result<Response<Body>, Error>> + Send + '_>> {
    let mut budgets = Budgets::new(max_retries);
    match act_on(pool, decide(failure, sent_on, &mut budgets), sent_on) {
        Ok(resend) => Box::pin(resend_loop(pool, resend, budgets, limits)),
        Err(error) => Box::pin(std::future::ready(Err(error))),
    }
}

/// Sends `resend` again, and again while [`decide`] says so.
async fn resend_loop(
    pool: &Arc<OriginPool>,
    mut resend: Resend,
    mut budgets: Budgets,
    limits: RequestLimits,
) -> Result<Response<Body>, Error> {
    let origin = pool.origin();
    let mut resends = 0;
    loop {
        let Resend {
            request,
            mut placement,
            cause: _,
        } = resend;
        placement.settle().await;
        // A retry is served ahead of every urgency (see `RetryTarget`); its own urgency only
        // files its time in queue.
        let urgency = request
            .head
            .extensions
            .get::<Priority>()
            .map_or(Priority::DEFAULT_URGENCY, Priority::urgency);
        let lease = loop {
            let lease = match pool
                .acquire(Some(placement.target()), urgency, limits.end_at())
                .await
            {
                Ok(lease) => lease,
                Err(error) => {
                    pool.counters().acquires_failed.add(1);
                    return Err(error);
                }
            };
            // No await between this check and the send.
            if placement.admits(lease.conn()) {
                break lease;
            }
        };
        let sent_on = lease.conn().id;
        resends += 1;
        crate::otel::span::record_resend(resends, sent_on);
        // Shaped for the failed connection's protocol; reshape for this one.
        let Outgoing { head, body } = *request;
        let request = outgoing::shape(origin, lease.conn().protocol, head, body)?;
        let failure =
            match exchange::start(LeaseRef::Owned(lease), request, true, limits.clone()).await {
                Ok(response) => return Ok(response),
                Err(failure) => failure,
            };
        resend = act_on(pool, decide(failure, sent_on, &mut budgets), sent_on)?;
    }
}

/// Carries out the parts of a decision that are not the re-send itself: forgets a coalescing
/// target that answered 421, counts and logs.
fn act_on(pool: &OriginPool, decision: Decision, sent_on: u64) -> Result<Resend, Error> {
    let Decision {
        next,
        stop_coalescing_onto,
    } = decision;
    if let Some(other) = &stop_coalescing_onto {
        // Sent again on this origin's own connection, never on `other` again.
        pool.refuse_coalescing(other);
    }
    match next {
        Ok(resend) => {
            pool.counters().requests_retried.add(1);
            debug!(
                origin = %pool.origin(),
                conn_id = sent_on,
                error = %resend.cause,
                "retrying a request the server never processed"
            );
            Ok(resend)
        }
        Err(GiveUp {
            error,
            budget_spent,
        }) => {
            if budget_spent {
                debug!(
                    origin = %pool.origin(),
                    conn_id = sent_on,
                    error = %error,
                    "not retrying again: the request's retries are spent"
                );
            }
            Err(error)
        }
    }
}
