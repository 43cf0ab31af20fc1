//! Keeping a manifest's layout through an edit: where the blank space and
//! comments around a value go when a value is replaced, a key added or
//! removed, or an array entry pushed or taken out.

use toml_edit::{Array, Item, TableLike, Value};

/// Adds `key = item` after the table's last key. Blank space after the
/// last value moves to the new one, so in an inline table the space before
/// the closing brace stays there: `{ a = 1 }` gets `{ a = 1, b = 2 }`, not
/// `{ a = 1 , b = 2}` (a comment after a value stays with it).
pub(super) fn insert_last(table: &mut dyn TableLike, key: &str, item: Item) {
    let mut closing = None;
    if let Some((_, Item::Value(last))) = table.iter_mut().last() {
        let suffix = last.decor().suffix().and_then(|s| s.as_str()).unwrap_or("");
        if !suffix.is_empty() && suffix.trim().is_empty() {
            closing = Some(suffix.to_string());
            last.decor_mut().set_suffix("");
        }
    }
    table.insert(key, item);
    if let (Some(s), Some(Item::Value(v))) = (closing, table.get_mut(key)) {
        v.decor_mut().set_suffix(s);
    }
}

/// Removes `key`; when it was the last, the blank space after it (before
/// an inline table's closing brace) goes to the new last value.
pub(super) fn remove_keeping_close(table: &mut dyn TableLike, key: &str) {
    let last = table.iter().last().map(|(k, _)| k.to_string());
    let Some(Item::Value(removed)) = table.remove(key) else { return };
    let suffix = removed.decor().suffix().and_then(|s| s.as_str()).unwrap_or("").to_string();
    if last.as_deref() == Some(key) && !suffix.is_empty() && suffix.trim().is_empty() {
        if let Some((_, Item::Value(v))) = table.iter_mut().last() {
            if v.decor().suffix().and_then(|s| s.as_str()).is_none_or(str::is_empty) {
                v.decor_mut().set_suffix(suffix);
            }
        }
    }
}

/// Replaces a value, keeping the spaces and comment written around the
/// old one.
pub(super) fn set_keeping_decor(old: Option<&mut Value>, new: impl Into<Value>) {
    let Some(old) = old else { return };
    let decor = old.decor().clone();
    *old = new.into();
    *old.decor_mut() = decor;
}

fn prefix(v: &Value) -> &str {
    v.decor().prefix().and_then(|p| p.as_str()).unwrap_or("")
}

/// Appends `value` laid out like the entries before it. A comment on the
/// last entry's line (kept after its comma) stays on that line.
pub(super) fn push_entry(array: &mut Array, mut value: Value) {
    if let Some(last) = array.iter().last() {
        *value.decor_mut() = last.decor().clone();
        let trailing = array.trailing().as_str().unwrap_or("").to_string();
        if let Some(nl) = trailing.find('\n') {
            let (line, rest) = trailing.split_at(nl);
            if line.contains('#') {
                let indent = prefix(last).rsplit('\n').next().unwrap_or("").to_string();
                value.decor_mut().set_prefix(format!("{line}\n{indent}"));
                array.set_trailing(rest);
            }
        }
    }
    array.push_formatted(value);
}

/// Takes entry `at` out with the comment on its line, keeping every other
/// entry's comments: `["a", "b"]` without "a" is `["b"]`.
pub(super) fn remove_entry(array: &mut Array, at: usize) {
    let removed = array.remove(at);
    let own = prefix(&removed).to_string();
    // The comment on the removed entry's line is kept before the next
    // entry (or in the array's trailing text, after the last).
    let drop_same_line = |text: &str| match text.find('\n') {
        Some(nl) if text[..nl].contains('#') => Some(text[nl..].to_string()),
        _ => None,
    };
    if let Some(next) = array.get_mut(at) {
        let next_prefix = prefix(next).to_string();
        if let Some(rest) = drop_same_line(&next_prefix) {
            // The removed entry's line break and indent, then the rest.
            let head = own.rfind('\n').map_or("", |i| &own[..i]);
            next.decor_mut().set_prefix(format!("{head}{rest}"));
        } else if at == 0 && !next_prefix.contains(['\n', '#']) {
            next.decor_mut().set_prefix(own.clone());
        }
    } else {
        let trailing = array.trailing().as_str().unwrap_or("").to_string();
        if let Some(rest) = drop_same_line(&trailing) {
            array.set_trailing(rest);
        }
    }
}
