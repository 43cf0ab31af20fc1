//! Servers deed starts for itself, from the local PostgreSQL binaries:
//! apart from the driver (`deed-pg`), because they are processes, with
//! the `unsafe` calls that managing processes as root needs.
//!
//! - [`EmbeddedCluster`]: a private, throwaway PostgreSQL in a temporary
//!   directory, stopped with the process that started it, for `deed demo`,
//!   the benchmarks and the test suite.
//! - [`EmbeddedPgBouncer`]: a private PgBouncer in front of them.
//! - [`tool`] and [`find_bindir`]: where the server's binaries (`pg_dump`,
//!   `pgbench`, `initdb`…) are, `DEED_PG_BINDIR` first.
//! - [`free_port`]: a loopback port for one of them.

mod cluster;
mod pooler;
mod port;

pub use cluster::{ClusterError, ClusterOptions, EmbeddedCluster, find_bindir, tool};
pub use pooler::EmbeddedPgBouncer;
pub use port::free_port;
