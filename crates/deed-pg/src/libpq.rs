use crate::conn_string::ConnString;

/// Splits a connection string for a libpq program such as `pg_dump`: the
/// string without its password, and the password for `PGPASSWORD`, so it
/// never appears in the process list.
pub fn split_password(url: &str) -> (String, Option<String>) {
    match ConnString::parse(url) {
        Ok(mut conn) => {
            let password = conn.take("password");
            (conn.to_conninfo(), password)
        }
        // Not a connection string: libpq will say so, without a password
        // deed could have taken out.
        Err(_) => (url.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::split_password;

    #[test]
    fn takes_the_password_out() {
        assert_eq!(
            split_password("postgres://app:p%40ss@db:5432/shop?sslmode=require"),
            ("postgres://app@db:5432/shop?sslmode=require".to_string(), Some("p@ss".to_string()))
        );
        assert_eq!(
            split_password("postgres://db/shop?user=a&password=x&sslmode=disable"),
            ("postgres://a@db/shop?sslmode=disable".to_string(), Some("x".to_string()))
        );
        assert_eq!(
            split_password("host=db password=x dbname=s"),
            ("host='db' dbname='s'".to_string(), Some("x".to_string()))
        );
        assert_eq!(
            split_password("host=db password='a b' dbname=s"),
            ("host='db' dbname='s'".to_string(), Some("a b".to_string()))
        );
        assert_eq!(split_password("postgres://db/shop"), ("postgres://db/shop".to_string(), None));
    }
}
