//! `manual:` steps: an instruction a person carries out. They run only in `recover`, where a
//! person is there to answer (done, skip with a reason, or abort); `execute` refuses them
//! before anything starts. This module words the instruction and names who answered.

/// The instruction as shown to the person on call: what to do, and whose job it is.
pub fn instruction(text: &str, owner: Option<&str>) -> String {
    let mut out = String::new();
    for line in text.lines() {
        out.push_str(&format!("  >> {line}\n"));
    }
    if let Some(owner) = owner {
        out.push_str(&format!("  owner: {owner}\n"));
    }
    out.trim_end().to_owned()
}

/// The account that answered: the login name behind the terminal (`SUDO_USER` when run
/// through sudo, since the record must say who, not which account), else the OS user.
pub fn os_user() -> String {
    let uid = nix::unistd::getuid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid {uid}"));
    match std::env::var("SUDO_USER") {
        Ok(sudo) if !sudo.is_empty() && uid.is_root() => format!("{sudo} (as {name})"),
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::instruction;

    #[test]
    fn the_instruction_names_its_owner() {
        assert_eq!(
            instruction(
                "Put the CRM in maintenance mode\nand say so",
                Some("Systems administrator, ops@example.com")
            ),
            "  >> Put the CRM in maintenance mode\n  >> and say so\n  owner: Systems administrator, ops@example.com"
        );
    }
}
