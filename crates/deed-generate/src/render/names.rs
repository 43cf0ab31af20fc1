//! Names in generated code: type names from services, contracts and
//! events (`catalog` + `products` + 1 → `CatalogProductsV1`), and member
//! names from column names, made valid in each language. A column whose
//! name is not a valid member name keeps its own name where the language
//! lets a member say what it maps to.

/// `catalog_api`, `Order Items` → `CatalogApi`, `OrderItems`: words split
/// on anything not a letter or digit, each capitalised.
pub fn pascal(parts: &[&str]) -> String {
    let mut out = String::new();
    for part in parts {
        for word in part.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                out.push(first.to_ascii_uppercase());
                out.extend(chars);
            }
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'T');
    }
    out
}

/// Python's reserved words (and the soft keywords that matter as names).
const PYTHON_RESERVED: &[&str] = &[
    "False",
    "None",
    "True",
    "and",
    "as",
    "assert",
    "async",
    "await",
    "break",
    "class",
    "continue",
    "def",
    "del",
    "elif",
    "else",
    "except",
    "finally",
    "for",
    "from",
    "global",
    "if",
    "import",
    "in",
    "is",
    "lambda",
    "nonlocal",
    "not",
    "or",
    "pass",
    "raise",
    "return",
    "try",
    "while",
    "with",
    "yield",
    "metadata",
    "registry",
    "model_config",
    "model_fields",
];

/// A Python attribute for column `name`: itself when it is a valid,
/// unreserved identifier; else its letters and digits with `_` for the
/// rest, and a trailing `_` when reserved. `taken` keeps names unique.
pub fn python_member(name: &str, taken: &mut Vec<String>) -> String {
    let mut out: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if PYTHON_RESERVED.contains(&out.as_str()) || out.starts_with("__") {
        out.push('_');
    }
    unique(out, taken, "_")
}

/// `base`, or `base` + `separator` + 2, 3, … until no name in `taken`
/// has it; the name returned is recorded in `taken`.
pub fn unique(base: String, taken: &mut Vec<String>, separator: &str) -> String {
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}{separator}{n}");
        n += 1;
    }
    taken.push(name.clone());
    name
}

/// The package's name in every language that has one: `deed-models`, or
/// `deed-models-<service>` for one service's models.
pub fn package_name(service: Option<&str>) -> String {
    let suffix = service.map(|s| format!("-{s}")).unwrap_or_default();
    format!("deed-models{suffix}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c.to_ascii_lowercase() } else { '-' })
        .collect()
}

/// A string literal in Python (and JSON, and TypeScript): double-quoted,
/// with escapes.
pub fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_and_unique() {
        assert_eq!(pascal(&["catalog", "products", "v1"]), "CatalogProductsV1");
        assert_eq!(pascal(&["order items", "2x"]), "OrderItems2x");
        assert_eq!(pascal(&["9lives"]), "T9lives");
        let mut taken = Vec::new();
        assert_eq!(python_member("class", &mut taken), "class_");
        assert_eq!(python_member("Order Items", &mut taken), "Order_Items");
        assert_eq!(python_member("Order-Items", &mut taken), "Order_Items_2");
        assert_eq!(python_member("1st", &mut taken), "_1st");
        assert_eq!(python_member("metadata", &mut taken), "metadata_");
    }
}
