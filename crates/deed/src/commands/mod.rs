mod audit;
mod check;
mod contracts;
mod demo;
mod doctor;
mod generate;
mod init;
mod manual;
mod metrics_http;
mod project;
mod relay;
mod rung3;
mod saved_plan;
mod since;
mod split;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::exit::Outcome;

pub async fn run(cli: Cli) -> Result<Outcome> {
    match &cli.command {
        Command::Audit(args) => audit::run(&cli, args).await,
        Command::Init(args) => init::run(&cli, args).await,
        Command::Demo(args) => demo::run(&cli, args).await,
        Command::Plan(args) => contracts::plan_command(&cli, args).await,
        Command::Apply(args) => contracts::apply(&cli, args).await,
        Command::Drift => contracts::drift(&cli).await,
        Command::Status(args) => contracts::status(&cli, args).await,
        Command::Check(args) => check::run(&cli, args).await,
        Command::Contract(c) => check::contract(&cli, c),
        Command::Generate(args) => generate::run(&cli, args).await,
        Command::Relay(args) => relay::run(&cli, args).await,
        Command::Tail(args) => relay::tail(args).await,
        Command::Doctor(args) => doctor::run(&cli, args).await,
        Command::Project(args) => project::run(&cli, args).await,
        Command::Compare(args) => rung3::compare(&cli, args).await,
        Command::Cutover(args) => rung3::cutover(&cli, args).await,
        Command::Split(args) => split::run(&cli, args).await,
        Command::Man(args) => manual::man(args),
        Command::Completions(args) => manual::completions(args),
    }
}
