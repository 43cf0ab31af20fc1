//! What every test of the `deed` binary needs: the command, run in a
//! directory with nothing inherited that would change what it prints, and
//! its output as text. Each test file includes this with `mod support;`.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// `deed`, run in `dir`, with no `DATABASE_URL`, `DEED_LOG` or
/// `GITHUB_ACTIONS` from the environment the tests run in, and no colour.
pub fn deed(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_deed"));
    c.current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("DEED_LOG")
        .env_remove("GITHUB_ACTIONS")
        .env("NO_COLOR", "1");
    c
}

/// `deed args` in `dir` against the database at `url`, to its end.
pub fn run(dir: &Path, url: &str, args: &[&str]) -> Output {
    deed(dir).env("DATABASE_URL", url).args(args).output().expect("deed runs")
}

/// Standard output, then standard error.
pub fn text(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The exit code; a test fails when deed was killed by a signal instead.
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("deed exited normally")
}
