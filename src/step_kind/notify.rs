//! `notify:` steps: POST how the run went to a webhook (a chat hook, an alerting system).
//! The body is planrun's JSON summary of the run, a Slack/Mattermost `{"text": …}` line
//! (`format: slack`), or the step's own templated `body:`. An empty webhook (e.g. an unset
//! optional variable) sends nothing and says so.
//!
//! In `on_failure` and `always` the summary holds the run's outcome; in `steps` it says
//! `running` and lists the steps ended so far. A notification that cannot be sent is a
//! warning (the render stage gives every notify step `on_failure: ignore`), and its message
//! names the webhook's host only. The request is bounded as `monitor::post` says, and by the
//! step's own `timeout`, which the executor applies.

use chrono::Utc;

use super::{AttemptEnd, StepContext};
use crate::event::Event;
use crate::monitor;
use crate::plan::NotifyFormat;

/// The body a notify step sends and its content type.
pub struct Notification<'a> {
    pub webhook: Option<&'a str>,
    pub message: Option<&'a str>,
    pub body: Option<&'a str>,
    pub format: NotifyFormat,
}

pub async fn execute(ctx: &mut StepContext<'_>, notification: Notification<'_>) -> AttemptEnd {
    let message = notification.message.unwrap_or_default().to_owned();
    let Some(url) = notification.webhook.filter(|w| !w.trim().is_empty()) else {
        ctx.output
            .emit(Event::Notified {
                step: ctx.output.step(),
                status: None,
                message,
            })
            .await;
        return AttemptEnd::succeeded();
    };
    let outcome = ctx.run.outcome();
    let now = Utc::now();
    let (body, content_type) = match (notification.body, notification.format) {
        (Some(body), _) => {
            let json = serde_json::from_str::<serde_json::Value>(body).is_ok();
            let kind = if json {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            (body.to_owned(), kind)
        }
        (None, NotifyFormat::Slack) => (
            serde_json::json!({ "text": outcome.line(ctx.plan, &message, now) }).to_string(),
            "application/json",
        ),
        (None, NotifyFormat::Json) => (
            outcome.summary(ctx.plan, &message, now).to_string(),
            "application/json",
        ),
    };
    match monitor::post(url, body.into_bytes(), content_type).await {
        Ok(status) => {
            ctx.output
                .emit(Event::Notified {
                    step: ctx.output.step(),
                    status: Some(status),
                    message,
                })
                .await;
            AttemptEnd::succeeded()
        }
        Err(error) => AttemptEnd::error(format!("notify: {error}")),
    }
}
