//! `notify:` steps: POST the run's state as JSON to a webhook (healthchecks, chat hooks).
//! An empty webhook (e.g. an unset optional variable) sends nothing and says so.
//!
//! A webhook never holds a run: connecting is limited to [`CONNECT_TIMEOUT`], the answer
//! must start within [`IDLE_TIMEOUT`] and keep coming, and the whole call is bounded by
//! [`TOTAL_TIMEOUT`] (and by the step's own `timeout`, which the executor applies).

use super::{AttemptEnd, StepContext};
use crate::event::Event;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// reqwest's read timeout: until the answer starts, then between its chunks.
const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn execute(
    ctx: &mut StepContext<'_>,
    webhook: Option<&str>,
    message: Option<&str>,
) -> AttemptEnd {
    let plan = ctx.plan;
    let message = message.unwrap_or_default().to_owned();
    let Some(url) = webhook.filter(|w| !w.trim().is_empty()) else {
        ctx.output
            .emit(Event::Notified {
                step: ctx.output.step(),
                status: None,
                message,
            })
            .await;
        return AttemptEnd::succeeded();
    };
    let body = serde_json::json!({
        "plan": plan.name,
        "run_id": plan.run_id,
        "host": crate::host::hostname(),
        "message": message,
        "backup_set_complete": ctx.run.set_complete(),
    });
    let client = match reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(IDLE_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .build()
    {
        Ok(client) => client,
        Err(error) => return AttemptEnd::error(format!("notify: {error}")),
    };
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => {
            ctx.output
                .emit(Event::Notified {
                    step: ctx.output.step(),
                    status: Some(response.status().as_u16()),
                    message,
                })
                .await;
            AttemptEnd::succeeded()
        }
        Ok(response) => AttemptEnd::error(format!(
            "notify: the webhook answered {}",
            response.status()
        )),
        // The URL may carry a token; reqwest's message names it, so keep only the kind.
        // Connect first: a connect timeout is both.
        Err(error) if error.is_connect() && error.is_timeout() => AttemptEnd::error(format!(
            "notify: cannot connect to the webhook within {}",
            crate::duration::Duration(CONNECT_TIMEOUT)
        )),
        Err(error) if error.is_connect() => {
            AttemptEnd::error("notify: cannot connect to the webhook")
        }
        Err(error) if error.is_timeout() => AttemptEnd::error(format!(
            "notify: the webhook did not answer within {}",
            crate::duration::Duration(IDLE_TIMEOUT)
        )),
        Err(_) => AttemptEnd::error("notify: the request to the webhook failed"),
    }
}
