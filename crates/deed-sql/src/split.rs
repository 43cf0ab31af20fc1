/// 1-based line and column (in characters) of a byte offset in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

/// Each statement of `sql` (a text [`clean_script`](crate::clean_script)
/// made plain) with its byte offset, cut where psql would cut it (at a `;` outside quotes, comments, dollar quotes and the body of
/// a `BEGIN ATOMIC` function), with the comments before it left out.
/// Nothing is dropped: text that is not a valid statement comes out as a
/// statement too, for the parser to reject at its place.
pub fn split_statements(sql: &str) -> Vec<(usize, &str)> {
    let ends = crate::script::statement_ends(sql);
    let mut out = Vec::new();
    let mut start = 0;
    for end in ends.into_iter().chain(std::iter::once(sql.len())) {
        let part = &sql[start..end];
        let skip = leading_comments(part);
        if !part[skip..].trim().is_empty() {
            out.push((start + skip, part[skip..].trim_end()));
        }
        start = (end + 1).min(sql.len());
    }
    out
}

/// Bytes of whitespace and comments before a statement's first token.
fn leading_comments(text: &str) -> usize {
    let b = text.as_bytes();
    let mut at = 0;
    loop {
        while at < b.len() && b[at].is_ascii_whitespace() {
            at += 1;
        }
        if at >= b.len() {
            return at;
        }
        if b[at..].starts_with(b"--") {
            at += b[at..].iter().position(|c| *c == b'\n').map_or(b.len() - at, |n| n + 1);
        } else if b[at..].starts_with(b"/*") {
            // Block comments nest in PostgreSQL.
            let mut depth = 0;
            while at < b.len() {
                if b[at..].starts_with(b"/*") {
                    depth += 1;
                    at += 2;
                } else if b[at..].starts_with(b"*/") {
                    depth -= 1;
                    at += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    at += 1;
                }
            }
        } else {
            return at;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_without_comments() {
        let sql = "-- first\nSELECT 1;\n/* a /* nested */ b */ SELECT 'x;y';";
        let parts = split_statements(sql);
        assert_eq!(parts.iter().map(|(_, p)| *p).collect::<Vec<_>>(), ["SELECT 1", "SELECT 'x;y'"]);
        assert_eq!(&sql[parts[1].0..parts[1].0 + 6], "SELECT");
        // Nothing is dropped, not even what no statement starts with.
        let parts = split_statements("SELEC broken; SELECT 'open");
        assert_eq!(
            parts.iter().map(|(_, p)| *p).collect::<Vec<_>>(),
            ["SELEC broken", "SELECT 'open"]
        );
        // A BEGIN ATOMIC body keeps its semicolons.
        let f = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END; SELECT 3;";
        let parts = split_statements(f);
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert!(parts[0].1.ends_with("END; END"), "{parts:?}");
    }
}
