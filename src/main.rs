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
    /// Run the service on the simulated provider with a throwaway database and a seeded neighbourhood
    Demo,
    /// Apply migrations and exit
    Migrate,
    /// Upsert volunteers or residents from a CSV file, all or nothing
    Import {
        #[command(subcommand)]
        what: ImportWhat,
    },
    /// Validate IVR scripts
    Scripts {
        #[command(subcommand)]
        action: ScriptsAction,
    },
    /// Manage console logins
    Operator {
        #[command(subcommand)]
        action: OperatorAction,
    },
    /// The figures of one ISO week, per category, grade and grid
    Report {
        /// The week, such as 2026-W47 (local days of `timezone`, Monday to Sunday)
        #[arg(long)]
        week: String,
        #[arg(long, default_value = "text", value_parser = ["text", "csv", "html"])]
        format: String,
    },
    /// Remove recordings, names, numbers and addresses of requests closed longer ago than AGE
    Purge {
        /// An age such as 180d, 26w or 12h
        #[arg(long, value_name = "AGE")]
        older_than: String,
        /// Count what would be removed; write nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Write a consistent copy of the SQLite database to FILE while the service runs
    Backup { file: PathBuf },
}

#[derive(Subcommand)]
enum ImportWhat {
    /// volunteers.csv: name,phone,lat,lon,skills,languages,max_active
    Volunteers {
        file: PathBuf,
        /// Only validate; write nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// residents.csv: name,phone,address,lat,lon,language,grid[,contact]
    Residents {
        file: PathBuf,
        /// Only validate; write nothing
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum ScriptsAction {
    /// Check every script in DIR (default: ivr.scripts_dir); errors name file and line
    Check { dir: Option<PathBuf> },
}

#[derive(Subcommand)]
enum OperatorAction {
    /// Create a login; the password is the first line of standard input
    Add {
        username: String,
        #[arg(long, default_value = "operator", value_parser = ["admin", "operator"])]
        role: String,
    },
}

mod cli {
    //! The commands' bodies: thin calls into the library, with messages for a person.
    use super::ImportWhat;
    use hotline580::config::Config;
    use hotline580::import::{self, ImportError};
    use hotline580::store::Db;
    use std::io::{BufRead, IsTerminal};

    pub async fn import(config: &Config, what: ImportWhat) -> anyhow::Result<()> {
        let region = &config.settings.telephony.default_region;
        let (file, dry_run) = match &what {
            ImportWhat::Volunteers { file, dry_run } | ImportWhat::Residents { file, dry_run } => {
                (file, *dry_run)
            }
        };
        let reader = std::fs::File::open(file)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", file.display()))?;
        let reader = std::io::BufReader::new(reader);
        let report = |e: ImportError| -> anyhow::Error {
            if let ImportError::Rows(rows) = &e {
                for r in rows {
                    eprintln!("{}:{r}", file.display());
                }
            }
            anyhow::anyhow!("{}: {e}", file.display())
        };
        enum Parsed {
            Volunteers(Vec<import::VolunteerRow>),
            Residents(Vec<import::ResidentRow>, bool),
        }
        let parsed = match what {
            ImportWhat::Volunteers { .. } => {
                Parsed::Volunteers(import::parse_volunteers(reader, region).map_err(report)?)
            }
            ImportWhat::Residents { .. } => {
                let (rows, has_contact) =
                    import::parse_residents(reader, region).map_err(report)?;
                Parsed::Residents(rows, has_contact)
            }
        };
        let count = match &parsed {
            Parsed::Volunteers(r) => r.len(),
            Parsed::Residents(r, _) => r.len(),
        };
        if dry_run {
            println!("{count} rows are valid; nothing was written (--dry-run)");
            return Ok(());
        }
        let db = Db::connect(&config.settings.database.url).await?;
        db.migrate().await?;
        let bar = if std::io::stderr().is_terminal() {
            indicatif::ProgressBar::new(count as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        let progress = |n: usize| bar.set_position(n as u64);
        let summary = match &parsed {
            Parsed::Volunteers(rows) => import::import_volunteers(&db, rows, &progress).await?,
            Parsed::Residents(rows, has_contact) => {
                import::import_residents(&db, rows, *has_contact, &progress).await?
            }
        };
        bar.finish_and_clear();
        println!("{} inserted, {} updated", summary.inserted, summary.updated);
        db.close().await;
        Ok(())
    }

    pub async fn purge(config: &Config, older_than: &str, dry_run: bool) -> anyhow::Result<()> {
        use hotline580::store::maintenance;
        let age =
            maintenance::parse_age(older_than).map_err(|e| anyhow::anyhow!("--older-than: {e}"))?;
        let db = Db::connect(&config.settings.database.url).await?;
        db.migrate().await?;
        let report = maintenance::purge(&db, age, dry_run).await?;
        db.close().await;
        if dry_run {
            println!("would purge {report}; nothing was written (--dry-run)");
        } else {
            println!("purged {report}");
        }
        Ok(())
    }

    pub async fn operator_add(config: &Config, username: &str, role: &str) -> anyhow::Result<()> {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let password = line.trim_end_matches(['\n', '\r']);
        let role = role.parse()?;
        let db = Db::connect(&config.settings.database.url).await?;
        db.migrate().await?;
        hotline580::auth::create_operator(&db, username, password, role).await?;
        println!("operator {username} created ({role})");
        db.close().await;
        Ok(())
    }
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
            Command::Demo => hotline580::demo::run(config).await,
            Command::Migrate => {
                let db = hotline580::store::Db::connect(&config.settings.database.url).await?;
                db.migrate().await?;
                eprintln!("migrations applied");
                Ok(())
            }
            Command::Import { what } => cli::import(&config, what).await,
            Command::Scripts {
                action: ScriptsAction::Check { dir },
            } => {
                let dir = dir.unwrap_or_else(|| config.settings.ivr.scripts_dir.clone());
                let (ok, errors) = hotline580::ivr::check_command(&dir);
                for e in &errors {
                    eprintln!("{e}");
                }
                if errors.is_empty() {
                    println!("{ok} script(s) in {} are valid", dir.display());
                    Ok(())
                } else {
                    Err(anyhow::anyhow!(
                        "{} error(s) in the scripts of {}",
                        errors.len(),
                        dir.display()
                    ))
                }
            }
            Command::Operator {
                action: OperatorAction::Add { username, role },
            } => cli::operator_add(&config, &username, &role).await,
            Command::Report { week, format } => {
                let format = format.parse().map_err(|e: String| anyhow::anyhow!(e))?;
                print!(
                    "{}",
                    hotline580::followup::report::weekly(&config, &week, format).await?
                );
                Ok(())
            }
            Command::Purge {
                older_than,
                dry_run,
            } => cli::purge(&config, &older_than, dry_run).await,
            Command::Backup { file } => {
                let bytes =
                    hotline580::store::maintenance::backup(&config.settings.database.url, &file)
                        .await?;
                println!("backup written to {} ({bytes} bytes)", file.display());
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
