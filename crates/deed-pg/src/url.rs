use crate::conn_string::ConnString;

/// The same server URL (or `key=value` string) pointing at another
/// database; query parameters such as `sslmode` are kept.
pub fn url_with_database(url: &str, database: &str) -> String {
    match ConnString::parse(url) {
        Ok(mut conn) => {
            conn.set("dbname", database);
            conn.to_conninfo()
        }
        Err(_) => format!("{url} dbname={database}"),
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
        assert_eq!(w("host=h dbname=a user=u", "b"), "host='h' dbname='b' user='u'");
    }
}
