//! `deed man` and `deed completions`: the man pages and shell completion
//! scripts, generated from the same clap definitions that parse the
//! arguments, so they cannot drift from the tool.

use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::exit::Outcome;

/// Writes `deed.1` and one page per subcommand (`deed-split.1`, and
/// `deed-contract-bump.1` for nested ones).
pub fn man(args: &ManArgs) -> Result<Outcome> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut written = Vec::new();
    let mut command = Cli::command();
    // Built, so each command's page lists the global options too.
    command.build();
    write_pages(&command, "deed", &args.out, &mut written)?;
    println!("{}: {} man pages ({})", args.out.display(), written.len(), written.join(", "));
    Ok(Outcome::Clean)
}

fn write_pages(
    command: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<String>,
) -> Result<()> {
    let command = command.clone().name(name.to_string());
    let file = format!("{name}.1");
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    let path = dir.join(&file);
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    written.push(file);
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}

/// Prints the completion script of `args.shell` on stdout.
pub fn completions(args: &CompletionsArgs) -> Result<Outcome> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "deed", &mut std::io::stdout());
    Ok(Outcome::Clean)
}
