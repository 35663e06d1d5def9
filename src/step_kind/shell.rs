//! `shell:` steps: a bash script with `set -euo pipefail`.
//!
//! bash, not `sh`: Debian's `/bin/sh` is dash, which rejects `set -o pipefail`, and without
//! pipefail `pg_dump … | gzip` succeeds when pg_dump fails.

use super::{AttemptEnd, StepContext, run_process};

pub async fn execute(ctx: &mut StepContext<'_>, script: &str) -> AttemptEnd {
    let args = vec![
        "-euo".to_owned(),
        "pipefail".to_owned(),
        "-c".to_owned(),
        script.to_owned(),
    ];
    run_process(ctx, "bash", args).await
}
