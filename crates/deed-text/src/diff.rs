//! A line diff, for showing how a definition changed (a view someone
//! redefined by hand). Definitions are short, so the plain longest common
//! subsequence is enough.

/// The lines of `old` and `new`, each marked `' '` (in both), `'-'` (only
/// in `old`) or `'+'` (only in `new`), in order.
pub fn line_diff<'a>(old: &'a str, new: &'a str) -> Vec<(char, &'a str)> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] =
                if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(('-', a[i]));
            i += 1;
        } else {
            out.push(('+', b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::line_diff;

    #[test]
    fn marks_what_changed() {
        let old = " SELECT id,\n    name\n   FROM products;";
        let new = " SELECT id,\n    name,\n    cost_cents\n   FROM products;";
        let d: Vec<String> = line_diff(old, new).iter().map(|(m, l)| format!("{m}{l}")).collect();
        assert_eq!(
            d,
            ["  SELECT id,", "-    name", "+    name,", "+    cost_cents", "    FROM products;"]
        );
    }
}
