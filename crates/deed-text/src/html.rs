//! Text into HTML and Markdown: every report page and Markdown report
//! deed writes escapes through here.

/// `&`, `<`, `>`, `"` and `'` as entities: safe in element text and in a
/// quoted attribute.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escaped, with each `` `span` `` (deed's messages quote commands that
/// way) as `<code>span</code>`; an unpaired backtick stays as it is.
pub fn html_with_code(text: &str) -> String {
    let parts: Vec<&str> = text.split('`').collect();
    // An even number of parts means one backtick has no partner: the
    // last one is kept literally.
    let paired = if parts.len() % 2 == 0 { parts.len() - 1 } else { parts.len() };
    let mut out = String::with_capacity(text.len() + 16);
    for (i, part) in parts.iter().enumerate() {
        if i >= paired {
            out.push('`');
            out.push_str(&escape_html(part));
        } else if i % 2 == 1 {
            out.push_str("<code>");
            out.push_str(&escape_html(part));
            out.push_str("</code>");
        } else {
            out.push_str(&escape_html(part));
        }
    }
    out
}

/// Text for Markdown (a table cell or a list item): `|` escaped, `<` and
/// `>` as entities so no tag is read into it, on one line.
pub fn escape_markdown(text: &str) -> String {
    text.replace('|', "\\|").replace('<', "&lt;").replace('>', "&gt;").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_code_spans() {
        assert_eq!(escape_html("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
        assert_eq!(
            html_with_code("run `deed split <s>` now"),
            "run <code>deed split &lt;s&gt;</code> now"
        );
        assert_eq!(html_with_code("a `b` c `d"), "a <code>b</code> c `d");
        assert_eq!(html_with_code("plain"), "plain");
        assert_eq!(escape_markdown("a|b <c>\nd"), "a\\|b &lt;c&gt; d");
    }
}
