/// The same server URL (or `key=value` string) pointing at another
/// database; query parameters such as `sslmode` are kept.
pub fn url_with_database(url: &str, database: &str) -> String {
    match url.find("://") {
        Some(scheme) => {
            let rest = &url[scheme + 3..];
            let path = rest.find(['/', '?']).map_or(url.len(), |p| scheme + 3 + p);
            let query = url[path..].find('?').map(|q| &url[path + q..]).unwrap_or("");
            format!("{}/{database}{query}", &url[..path])
        }
        None => {
            let kept: Vec<&str> =
                url.split_whitespace().filter(|kv| !kv.starts_with("dbname=")).collect();
            format!("{} dbname={database}", kept.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::url_with_database as w;

    #[test]
    fn swaps_the_database() {
        assert_eq!(
            w("postgres://u:p@h:5/a?sslmode=require", "b"),
            "postgres://u:p@h:5/b?sslmode=require"
        );
        assert_eq!(w("postgres://h", "b"), "postgres://h/b");
        assert_eq!(w("postgres://h?sslmode=disable", "b"), "postgres://h/b?sslmode=disable");
        assert_eq!(w("host=h dbname=a user=u", "b"), "host=h user=u dbname=b");
    }
}
