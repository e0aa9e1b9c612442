//! The `metamorph` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::auth::Role;
use crate::config::{Config, env_help};
use crate::telemetry::{self, LogFormat};

/// Exit code for configuration errors (sysexits `EX_CONFIG`).
pub const EXIT_CONFIG: u8 = 78;

/// Metamorph: a self-hostable, plugin-based file-conversion gateway.
#[derive(Debug, Parser)]
#[command(name = "metamorph", version, about, long_about = None, after_long_help = env_help())]
pub struct Cli {
    /// TOML configuration file. Without it, `metamorph.toml` in the working directory is
    /// read if it exists; every setting also has a default, so no file is needed.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "METAMORPH_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// Log line format: `text` for people, `json` for log collectors.
    #[arg(long, global = true, env = "METAMORPH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// What to log: a level (`error`, `warn`, `info`, `debug`, `trace`) or per-module
    /// directives such as `metamorph=debug,info`. Default: `info` for `serve` and
    /// `migrate`, `warn` for the other commands.
    #[arg(long, global = true, env = "METAMORPH_LOG", value_name = "FILTER")]
    pub log_level: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the HTTP service. Applies pending database migrations first; stops on SIGINT
    /// or SIGTERM after in-flight requests finish.
    Serve {
        /// Listen on this address instead of the configured one (e.g. `127.0.0.1:0` for
        /// any free port; the chosen one is logged).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Apply pending database migrations, print what was applied, and exit.
    Migrate,
    /// Show or check the effective configuration.
    Config {
        /// What to do with it.
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Convert a file locally, through the same plugins and limits as the server (no
    /// server needed).
    Convert {
        /// The file to convert.
        input: PathBuf,
        /// The format to make, e.g. `pdf` or `webp`.
        #[arg(long, value_name = "FORMAT")]
        to: String,
        /// The input's format, when its extension does not say it.
        #[arg(long, value_name = "FORMAT")]
        from: Option<String>,
        /// Where to write (default: the input's name with the new extension, here).
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        /// A conversion option, `key=value` (repeatable; values are JSON when they parse,
        /// e.g. `quality=80`, `lossless=true`).
        #[arg(long = "option", short = 'O', value_name = "KEY=VALUE")]
        options: Vec<String>,
    },
    /// List, check or create plugins.
    Plugins {
        /// What to do.
        #[command(subcommand)]
        action: PluginsAction,
    },
    /// Runs one native plugin for the server (internal).
    #[command(hide = true)]
    PluginWorker {
        /// The library.
        #[arg(long)]
        library: PathBuf,
        /// Memory limit, bytes.
        #[arg(long)]
        memory: u64,
        /// Output limit, bytes.
        #[arg(long)]
        output: u64,
    },
    /// Manage accounts and storage directly (create the first superuser, check usage).
    Admin {
        /// What to do.
        #[command(subcommand)]
        action: AdminAction,
    },
}

/// `metamorph plugins …`
#[derive(Debug, Subcommand)]
pub enum PluginsAction {
    /// List the plugins in the configured folders, loaded and refused.
    List,
    /// Load one plugin file as the server would and show what it converts, or why it is
    /// refused (exit 1).
    Check {
        /// A `.wasm` component or a native library (`.so`).
        file: PathBuf,
    },
    /// Create a plugin crate that builds, converts and tests, to start from.
    New {
        /// The plugin's name (lowercase letters, digits and `-`).
        name: String,
        /// Where to create it (default: a folder named after the plugin, here).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Path of Metamorph's `plugin-api` crate (found automatically inside a checkout).
        #[arg(long)]
        api_path: Option<PathBuf>,
    },
}

/// `metamorph admin …`
#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Create a user. The password is asked for on the terminal, or read as one line from
    /// standard input when that is not a terminal (`echo "$PASSWORD" | metamorph admin
    /// create-user …`).
    CreateUser {
        /// The user's email, their login name.
        #[arg(long)]
        email: String,
        /// superuser, admin, member or demo.
        #[arg(long, default_value = "member", value_parser = parse_role)]
        role: Role,
        /// Name of the organisation to put the user in; created if it does not exist.
        #[arg(long, default_value = crate::serve::DEFAULT_ORG)]
        org: String,
        /// Name shown to people.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Check that usage agrees with what storage holds, for every organisation, and fix
    /// what does not: file records whose bytes are gone are removed, sizes are taken from
    /// storage, and objects no file owns (written more than an hour ago, or left by a
    /// deleted organisation) are deleted.
    RecomputeUsage {
        /// Only this organisation (its id).
        #[arg(long, value_name = "ORG_ID")]
        org: Option<String>,
        /// Report what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    match text.parse::<Role>()? {
        Role::Anonymous => Err("anonymous users are made by POST /api/anon/session".to_owned()),
        role => Ok(role),
    }
}

/// `metamorph config …`
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the effective configuration (defaults, file and environment merged) as TOML,
    /// with passwords redacted.
    Show,
    /// Check the configuration and exit 0 if it is usable, 78 if not.
    Check,
}

/// Parses the command line, runs the command, and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::PluginWorker {
        library,
        memory,
        output,
    } = &cli.command
    {
        // A worker has no configuration and logs nothing: its parent does.
        return match crate::plugins::worker::run(library, *memory, *output) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("plugin worker: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    let default_level = match cli.command {
        Command::Serve { .. } | Command::Migrate => "info",
        _ => "warn",
    };
    if let Err(message) = telemetry::init(
        cli.log_format,
        cli.log_level.as_deref().unwrap_or(default_level),
    ) {
        eprintln!("error: {message}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            report(cli.log_format, &error.to_string());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let outcome = match cli.command {
        Command::Serve { listen } => crate::serve::run(config, listen),
        Command::Migrate => crate::serve::migrate(&config),
        Command::Convert {
            input,
            to,
            from,
            output,
            options,
        } => crate::commands::convert(&config, &input, &to, from.as_deref(), output, &options),
        Command::Plugins {
            action: PluginsAction::List,
        } => crate::commands::list(&config),
        Command::Plugins {
            action: PluginsAction::Check { file },
        } => crate::commands::check(&config, &file),
        Command::Plugins {
            action:
                PluginsAction::New {
                    name,
                    dir,
                    api_path,
                },
        } => crate::commands::scaffold(&name, dir, api_path),
        Command::PluginWorker { .. } => Ok(()),
        Command::Admin {
            action:
                AdminAction::CreateUser {
                    email,
                    role,
                    org,
                    display_name,
                },
        } => crate::serve::create_user(&config, &email, role, &org, display_name),
        Command::Admin {
            action: AdminAction::RecomputeUsage { org, dry_run },
        } => crate::serve::recompute_usage(&config, org.as_deref(), dry_run),
        Command::Config {
            action: ConfigAction::Show,
        } => {
            print_stdout(&config.to_toml());
            Ok(())
        }
        Command::Config {
            action: ConfigAction::Check,
        } => {
            let origin = config.file.as_ref().map_or_else(
                || "defaults and environment".to_owned(),
                |file| file.display().to_string(),
            );
            print_stdout(&format!("configuration is valid ({origin})\n"));
            Ok(())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(cli.log_format, &format!("{error:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Reports a fatal error once: as a plain line for people, as a log record for collectors.
fn report(format: LogFormat, message: &str) {
    match format {
        LogFormat::Text => eprintln!("error: {message}"),
        LogFormat::Json => tracing::error!(error = message, "cannot continue"),
    }
}

fn print_stdout(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`metamorph config show | head`) is not an error worth reporting.
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}
