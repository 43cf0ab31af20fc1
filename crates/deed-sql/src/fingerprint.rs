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

pub(crate) fn message(e: pg_query::Error) -> String {
    match e {
        pg_query::Error::Parse(m) => m,
        other => other.to_string(),
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
    }
}
