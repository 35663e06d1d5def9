//! `Cancel`: a cloneable, awaitable "stop now" flag shared by the scheduler and running steps.

use std::sync::Arc;

use tokio::sync::watch;

/// Why a run or a step was told to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelReason {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (a service manager or `kill`).
    Terminate,
    /// The time allowed for cleanup after a signal ran out.
    CleanupDeadline,
}

/// A cancellation token. Clones share one flag; the first `cancel` wins and is never undone.
///
/// tokio-util's `CancellationToken` would do the same, but a `watch` channel is all it takes
/// and keeps the dependency list short.
#[derive(Clone, Debug)]
pub struct Cancel {
    sender: Arc<watch::Sender<Option<CancelReason>>>,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel::new()
    }
}

impl Cancel {
    pub fn new() -> Self {
        let (sender, _) = watch::channel(None);
        Cancel {
            sender: Arc::new(sender),
        }
    }

    /// Marks the token cancelled; later calls keep the first reason.
    pub fn cancel(&self, reason: CancelReason) {
        self.sender.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }

    pub fn reason(&self) -> Option<CancelReason> {
        *self.sender.borrow()
    }

    /// Whether the token was cancelled: what blocking backup code polls between chunks.
    pub fn is_cancelled(&self) -> bool {
        self.reason().is_some()
    }

    /// Resolves once the token is cancelled (at once if it already is).
    pub async fn cancelled(&self) -> CancelReason {
        let mut receiver = self.sender.subscribe();
        let reason = receiver
            .wait_for(Option::is_some)
            .await
            .map(|reason| reason.unwrap_or(CancelReason::Interrupt));
        match reason {
            Ok(reason) => reason,
            // The sender lives in `self`, so it cannot be dropped while we wait.
            Err(_) => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_reason_wins_and_waiters_wake() {
        let cancel = Cancel::new();
        let waiter = {
            let cancel = cancel.clone();
            tokio::spawn(async move { cancel.cancelled().await })
        };
        cancel.cancel(CancelReason::Terminate);
        cancel.cancel(CancelReason::Interrupt);
        assert_eq!(waiter.await.unwrap(), CancelReason::Terminate);
        assert_eq!(cancel.reason(), Some(CancelReason::Terminate));
        assert_eq!(cancel.cancelled().await, CancelReason::Terminate);
    }
}
