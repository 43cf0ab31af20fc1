use pg_query::FingerprintOptions;

use crate::error::SqlError;

/// A statement's shape: equal for statements that differ only in constants
/// and formatting. Schema and full relation names stay significant, so
/// `a.t` and `b.t` never share a group.
pub fn fingerprint(text: &str) -> Result<u64, SqlError> {
    let options = FingerprintOptions::RANGEVAR_PG17_COMPAT | FingerprintOptions::FULL_RELNAME;
    pg_query::fingerprint(text, 0, options)
        .map(|f| f.value)
        .map_err(|e| SqlError { message: message(e), offset: crate::ffi::error_offset(text) })
}

/// The parser's message, with the text it quotes (`at or near "…"`) cut
/// short and escaped: the offending token can be anything the input holds,
/// a secret included.
pub(crate) fn message(e: pg_query::Error) -> String {
    let m = match e {
        pg_query::Error::Parse(m) => m,
        other => other.to_string(),
    };
    match m.split_once(" at or near \"") {
        Some((head, quoted)) => {
            let token = quoted.strip_suffix('"').unwrap_or(quoted);
            format!("{head} at or near \"{}\"", deed_text::excerpt(token, 40))
        }
        None => deed_text::excerpt(&m, 300),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_do_not_matter_but_schemas_do() {
        let a = fingerprint("SELECT name FROM public.products WHERE id = 1").unwrap();
        let b = fingerprint("select  name from public.products where id = 42").unwrap();
        let c = fingerprint("SELECT name FROM legacy.products WHERE id = 1").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn syntax_errors_have_positions() {
        // "id FORM" reads as "id AS form", so the parser trips on the table.
        let e = fingerprint("SELECT id FORM products").unwrap_err();
        assert!(e.message.contains("syntax error at or near \"products\""), "{e:?}");
        assert_eq!(e.offset, Some(15));
        let long = format!("SELECT id FROM products WHERE x = 1 ghp_{}", "a".repeat(200));
        let e = fingerprint(&long).unwrap_err();
        assert!(e.message.ends_with(&format!("\"ghp_{}…\"", "a".repeat(36))), "{e:?}");
    }
}
