//! Which table a `SELECT count(*) FROM t` query counts, so that `matches_backup` can compare
//! it with the row count recorded for `t` at backup time.

/// The table of `SELECT count(*) FROM [schema.]table` (any case and spacing, an optional
/// trailing `;`, quoted or bare names), or `None` for any other query: such a query has no
/// recorded fact to match.
pub fn counted_table(sql: &str) -> Option<String> {
    let text = sql.trim().trim_end_matches(';').trim();
    let mut rest = eat_word(text, "select")?;
    rest = eat_word(rest, "count")?;
    rest = rest.trim_start().strip_prefix('(')?.trim_start();
    rest = rest.strip_prefix('*')?.trim_start();
    rest = rest.strip_prefix(')')?;
    rest = eat_word(rest, "from")?;
    let name = rest.trim();
    let mut parts = Vec::new();
    for part in split_name(name)? {
        parts.push(part);
    }
    match parts.as_slice() {
        [table] => Some(table.clone()),
        [schema, table] => Some(format!("{schema}.{table}")),
        _ => None,
    }
}

/// `text` after the keyword `word` (case-insensitive), which must be followed by a
/// non-identifier character.
fn eat_word<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let text = text.trim_start();
    let head = text.get(..word.len())?;
    if !head.eq_ignore_ascii_case(word) {
        return None;
    }
    let rest = &text[word.len()..];
    match rest.chars().next() {
        Some(c) if c.is_alphanumeric() || c == '_' => None,
        _ => Some(rest),
    }
}

/// `a.b`, `"A"."b"`, `a`: the parts, bare names folded to lowercase as PostgreSQL and
/// SQLite read them; anything after the name (a `WHERE`, a join) makes it `None`.
fn split_name(name: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut chars = name.chars().peekable();
    loop {
        let mut part = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next()? {
                    '"' if chars.next_if_eq(&'"').is_some() => part.push('"'),
                    '"' => break,
                    c => part.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| c.is_alphanumeric() || *c == '_') {
                part.push(c.to_ascii_lowercase());
            }
        }
        if part.is_empty() {
            return None;
        }
        parts.push(part);
        match chars.next() {
            None => return Some(parts),
            Some('.') => {}
            Some(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::counted_table;

    #[test]
    fn count_queries_name_their_table() {
        for (sql, table) in [
            ("SELECT count(*) FROM auth_user", Some("auth_user")),
            ("select COUNT( * )  from   Auth_User ;", Some("auth_user")),
            (
                "SELECT count(*) FROM public.sales_sale",
                Some("public.sales_sale"),
            ),
            ("SELECT count(*) FROM \"Sales\".\"Big\"", Some("Sales.Big")),
            ("SELECT\n  count(*)\nFROM\n  t", Some("t")),
            ("SELECT count(*) FROM t WHERE x > 1", None),
            ("SELECT count(id) FROM t", None),
            ("SELECT count(*) FROM a, b", None),
            ("SELECT max(id) FROM t", None),
            ("SELECT count(*) FROMt", None),
        ] {
            assert_eq!(counted_table(sql).as_deref(), table, "{sql}");
        }
    }
}
