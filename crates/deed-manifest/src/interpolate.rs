/// Why `${VAR}` interpolation failed, with the byte offset inside the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InterpolateError {
    pub offset: usize,
    pub message: String,
}

/// Replaces `${NAME}` with the variable's value. `$${` writes a literal
/// `${`; any other `$` is kept, so passwords containing `$` survive.
pub(crate) fn interpolate(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(pos) = text[i..].find('$') {
        let at = i + pos;
        out.push_str(&text[i..at]);
        let rest = &text[at..];
        if rest.starts_with("$${") {
            out.push_str("${");
            i = at + 3;
        } else if let Some(body) = rest.strip_prefix("${") {
            let Some(close) = body.find('}') else {
                return Err(InterpolateError {
                    offset: at,
                    message: "unterminated `${`: write `${NAME}`, or `$${` for a literal `${`"
                        .into(),
                });
            };
            let name = &body[..close];
            if !is_var_name(name) {
                return Err(InterpolateError {
                    offset: at,
                    message: format!("`${{{name}}}` is not a valid environment variable name"),
                });
            }
            match lookup(name) {
                Some(value) => out.push_str(&value),
                None => {
                    return Err(InterpolateError {
                        offset: at,
                        message: format!("environment variable {name} is not set"),
                    });
                }
            }
            i = at + 2 + close + 1;
        } else {
            out.push('$');
            i = at + 1;
        }
    }
    out.push_str(&text[i..]);
    Ok(out)
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `${NAME}` references in a value given outside the manifest (a command
/// line flag) resolved the same way as in it.
pub fn resolve_references(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    interpolate(text, lookup).map_err(|e| format!("at byte {}: {}", e.offset + 1, e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "DB").then(|| "postgres://h/db".to_string())
    }

    #[test]
    fn replaces_and_escapes() {
        assert_eq!(interpolate("${DB}?x=1", &env).unwrap(), "postgres://h/db?x=1");
        assert_eq!(interpolate("a$b$${DB}", &env).unwrap(), "a$b${DB}");
        assert_eq!(interpolate("plain", &env).unwrap(), "plain");
    }

    #[test]
    fn reports_offsets() {
        let e = interpolate("xx${NOPE}", &env).unwrap_err();
        assert_eq!(e.offset, 2);
        assert!(e.message.contains("NOPE is not set"));
        assert!(interpolate("${DB", &env).is_err());
        assert!(interpolate("${1X}", &env).is_err());
    }
}
