//! The `shep` command: parse arguments, run (each command sets up logging,
//! `shep serve` once its configuration is read).

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = shep::cli::Cli::parse();
    match shep::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
