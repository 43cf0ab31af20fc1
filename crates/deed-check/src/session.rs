//! The scratch database's one session. Migrations run in it with the
//! application's search path (and whatever their own `SET` makes it);
//! deed inspects the result in the same session, so it sees what an open
//! `BEGIN` in the migration has done, but with its own fixed path, so
//! nothing the migration created can stand in for a built-in.

use deed_pg::Client;
use deed_pg::session::SEARCH_PATH;

use crate::error::CheckError;

pub(crate) struct MigrationSession {
    client: Client,
    /// The search path the migrations see, as they last left it.
    path: std::cell::RefCell<String>,
}

impl MigrationSession {
    pub async fn open(url: &str, path: String) -> Result<MigrationSession, CheckError> {
        let client = deed_pg::connect(url).await?;
        Ok(MigrationSession { client, path: std::cell::RefCell::new(path) })
    }

    /// deed's view of the scratch database.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs one migration statement under the migrations' search path,
    /// keeps the path it leaves, and returns to deed's. A failed statement
    /// inside the migration's own transaction leaves that transaction
    /// aborted: it is rolled back, as the migration tool would, so deed can
    /// still look at the schema.
    pub async fn run(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        let path = self.path.borrow().clone();
        self.set_path(&path).await?;
        let result = self.client.batch_execute(sql).await;
        match &result {
            Ok(()) => {
                let now: String = self
                    .client
                    .query_one("SELECT current_setting('search_path')", &[])
                    .await?
                    .get(0);
                *self.path.borrow_mut() = now;
            }
            Err(_) => {
                // Outside a transaction this is only a warning.
                let _ = self.client.batch_execute("ROLLBACK").await;
            }
        }
        self.set_path(SEARCH_PATH).await?;
        result
    }

    async fn set_path(&self, path: &str) -> Result<(), tokio_postgres::Error> {
        self.client
            .query_one("SELECT set_config('search_path', $1, false)", &[&path])
            .await
            .map(|_| ())
    }
}
