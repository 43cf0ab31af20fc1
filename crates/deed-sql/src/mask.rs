//! A cache key, not a parser: two statement texts with the same mask differ
//! only inside literal constants (or in how many constants a list holds),
//! so they have the same relations and columns. The caller parses a mask's
//! first text with PostgreSQL's grammar and reuses that analysis for every
//! later text with the same mask, which makes a log's cost grow with the
//! number of distinct statement shapes rather than its number of lines.

/// Writes `sql` into `out` with string, number and dollar-quoted constants
/// replaced by `?`, runs of `?, ?` folded into one `?`, comments dropped and
/// whitespace collapsed. Quoted identifiers and `$1` parameters are kept.
pub fn mask_literals(sql: &str, out: &mut String) {
    out.clear();
    let b = sql.as_bytes();
    let mut o: Vec<u8> = std::mem::take(out).into_bytes();
    let mut i = 0;
    let mut pending_space = false;
    // Start of the identifier-like word that ends at `i`, for E'..' strings.
    let mut word_start: Option<usize> = None;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            pending_space = !o.is_empty();
            word_start = None;
            i += 1;
            continue;
        }
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            i = b[i..].iter().position(|&x| x == b'\n').map_or(b.len(), |p| i + p);
            pending_space = !o.is_empty();
            word_start = None;
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i = skip_block_comment(b, i);
            pending_space = !o.is_empty();
            word_start = None;
            continue;
        }
        if pending_space {
            o.push(b' ');
            pending_space = false;
        }
        match c {
            b'\'' => {
                let escapes =
                    word_start.is_some_and(|s| i - s == 1 && b[s].eq_ignore_ascii_case(&b'e'));
                i = skip_string(b, i, escapes);
                push_constant(&mut o);
                word_start = None;
            }
            b'"' => {
                let end = skip_quoted_ident(b, i);
                o.extend_from_slice(&b[i..end]);
                i = end;
                word_start = None;
            }
            b'$' if word_start.is_none() => {
                if let Some(end) = dollar_quote_end(b, i) {
                    push_constant(&mut o);
                    i = end;
                } else {
                    // A `$1` parameter: kept, it is part of the shape.
                    let end = i + 1 + b[i + 1..].iter().take_while(|x| x.is_ascii_digit()).count();
                    o.extend_from_slice(&b[i..end]);
                    i = end;
                }
                word_start = None;
            }
            b'0'..=b'9' if word_start.is_none() => {
                i = skip_number(b, i);
                push_constant(&mut o);
            }
            b'.' if word_start.is_none() && b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i = skip_number(b, i);
                push_constant(&mut o);
            }
            _ if is_word_byte(c) => {
                if word_start.is_none() {
                    word_start = Some(i);
                }
                o.push(c);
                i += 1;
            }
            _ => {
                o.push(c);
                i += 1;
                word_start = None;
            }
        }
    }
    // Only ASCII bytes were replaced or dropped, and multi-byte sequences
    // were copied whole or skipped whole, so the bytes are still UTF-8.
    *out = String::from_utf8(o).expect("masking keeps UTF-8 intact");
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// Appends `?`, folding `?, ?` and `?,?` into a single `?`.
fn push_constant(o: &mut Vec<u8>) {
    let trimmed = o.strip_suffix(b" ").unwrap_or(o);
    if trimmed.ends_with(b"?,") {
        let keep = trimmed.len() - 1;
        o.truncate(keep);
        return;
    }
    o.push(b'?');
}

fn skip_block_comment(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

fn skip_string(b: &[u8], mut i: usize, backslash_escapes: bool) -> usize {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' if backslash_escapes => i += 2,
            b'\'' if b.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

fn skip_quoted_ident(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < b.len() {
        if b[i] == b'"' {
            if b.get(i + 1) == Some(&b'"') {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// End of a `$tag$ ... $tag$` constant starting at `i`, if one starts there.
fn dollar_quote_end(b: &[u8], i: usize) -> Option<usize> {
    let tag_len = b[i + 1..]
        .iter()
        .take_while(|&&c| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80)
        .count();
    if b.get(i + 1).is_some_and(u8::is_ascii_digit) || b.get(i + 1 + tag_len) != Some(&b'$') {
        return None;
    }
    let tag = &b[i..i + tag_len + 2];
    let body = i + tag.len();
    let close = b[body..].windows(tag.len()).position(|w| w == tag)?;
    Some(body + close + tag.len())
}

fn skip_number(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        let c = b[i];
        let exponent_sign = (c == b'+' || c == b'-') && matches!(b[i - 1], b'e' | b'E');
        if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exponent_sign {
            i += 1;
        } else {
            break;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(s: &str) -> String {
        let mut out = String::new();
        mask_literals(s, &mut out);
        out
    }

    #[test]
    fn constants_become_placeholders() {
        assert_eq!(
            mask("SELECT * FROM t1 WHERE a = 'x''y' AND b = 12.5e-3 AND c = E'\\'q'"),
            "SELECT * FROM t1 WHERE a = ? AND b = ? AND c = E?"
        );
        assert_eq!(mask("select $body$ it's $body$, $1"), "select ?, $1");
        assert_eq!(
            mask("SELECT .5, x2, \"Col 1\" FROM \"T\"\"9\""),
            "SELECT ?, x2, \"Col 1\" FROM \"T\"\"9\""
        );
    }

    #[test]
    fn lists_of_constants_fold() {
        assert_eq!(mask("WHERE id IN (1, 2, 3)"), mask("WHERE id IN (7)"));
        assert_eq!(mask("VALUES (1,'a'), (2,'b')"), "VALUES (?), (?)");
    }

    #[test]
    fn comments_and_whitespace_vanish() {
        assert_eq!(mask("SELECT  a -- why\n FROM /* x /* nested */ */ t"), "SELECT a FROM t");
    }

    #[test]
    fn identifiers_with_digits_and_dollars_stay() {
        assert_eq!(
            mask("SELECT a$1, t_2024_01.x FROM t_2024_01"),
            "SELECT a$1, t_2024_01.x FROM t_2024_01"
        );
    }

    #[test]
    fn unicode_survives() {
        assert_eq!(mask("SELECT 'héllo', \"naïve\" FROM café"), "SELECT ?, \"naïve\" FROM café");
    }
}
