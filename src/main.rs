//! The command line only; everything else lives in the library.

use clap::{Parser, Subcommand};
use hotline580::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "hotline580",
    version,
    about = "A telephone and SMS hotline dispatcher"
)]
struct Cli {
    /// Configuration file (else HOTLINE580_CONFIG; environment variables HOTLINE580__SECTION__KEY win)
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (applies pending migrations first)
    Serve,
    /// Apply migrations and exit
    Migrate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hotline580: {e}");
            return ExitCode::from(2);
        }
    };
    hotline580::telemetry::init(&config.settings.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hotline580: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => {
                let app = hotline580::app::Application::build(config).await?;
                app.run_until_stopped(hotline580::app::shutdown_signal())
                    .await
            }
            Command::Migrate => {
                let db = hotline580::store::Db::connect(&config.settings.database.url).await?;
                db.migrate().await?;
                eprintln!("migrations applied");
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hotline580: {e:#}");
            ExitCode::FAILURE
        }
    }
}
