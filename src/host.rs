//! The name of the machine planrun runs on, for run records, locks and notifications.

/// The host name, or `unknown-host` when the system will not say.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown-host".to_owned())
}
