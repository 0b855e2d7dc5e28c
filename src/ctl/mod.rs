//! dmctl: DM's command-line client. `src/bin/dmctl.rs` hands the raw arguments to [`run`].
//!
//! DM-compatible surface: `-V`, `-encrypt`/`-decrypt` and `-master-addr` with one dash or two
//! (DM's `argsNeedAdjust`), the `encrypt`/`decrypt` subcommands, `help [command]`, and the seed's
//! `-w` accepted wherever DM v2 takes `-s`. Commands print results on stdout and return the
//! process exit code; they never print a password.

pub mod args;
pub mod check;
pub mod client;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::password;

/// DM control.
#[derive(Debug, Parser)]
#[command(
    name = "dmctl",
    about = "DM control: manages dm-rs (TiDB Data Migration) clusters, tasks and sources",
    disable_version_flag = true,
    after_help = "Flags may be written with one dash or two (-master-addr or --master-addr).\nUse \"dmctl help <command>\" for more information about a command."
)]
pub struct Cli {
    /// Print version information and exit.
    #[arg(short = 'V', long = "version")]
    pub version: bool,
    /// Master API server address, host:port (e.g. 127.0.0.1:8261).
    #[arg(long = "master-addr", env = "DM_MASTER_ADDR", global = true)]
    pub master_addr: Option<String>,
    /// RPC timeout, a Go duration (e.g. 10m, 30s).
    #[arg(long = "rpc-timeout", default_value = "10m", global = true)]
    pub rpc_timeout: String,
    /// Encrypt a plaintext password and exit (same as `dmctl encrypt`).
    #[arg(long = "encrypt", value_name = "PLAIN-TEXT")]
    pub encrypt: Option<String>,
    /// Decrypt a DM ciphertext and exit (same as `dmctl decrypt`).
    #[arg(long = "decrypt", value_name = "CIPHER-TEXT")]
    pub decrypt: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// dmctl's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Encrypts plain text to cipher text (DM's password format).
    Encrypt {
        /// The plaintext password.
        plain_text: String,
    },
    /// Decrypts cipher text to plain text.
    Decrypt {
        /// A DM ciphertext, e.g. from `dmctl encrypt`.
        cipher_text: String,
    },
    /// Checks task configuration files: offline (no master) or as a precheck on the master.
    #[command(name = "check-task")]
    CheckTask(check::CheckTaskArgs),
}

/// Runs dmctl with the process arguments (program name first).
pub fn run(raw: Vec<String>) -> ExitCode {
    let args = args::normalize(raw);
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if cli.version {
        println!("{}", crate::version::banner());
        return ExitCode::SUCCESS;
    }
    if let Some(plain) = &cli.encrypt {
        return print_cipher_result(password::encrypt(plain));
    }
    if let Some(cipher) = &cli.decrypt {
        return print_cipher_result(password::decrypt(cipher));
    }
    match cli.command {
        Some(Command::Encrypt { plain_text }) => {
            print_cipher_result(password::encrypt(&plain_text))
        }
        Some(Command::Decrypt { cipher_text }) => {
            print_cipher_result(password::decrypt(&cipher_text))
        }
        Some(Command::CheckTask(a)) => check::run(&a, cli.master_addr.as_deref(), &cli.rpc_timeout),
        None => {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            ExitCode::SUCCESS
        }
    }
}

/// Prints an encrypt/decrypt result: the text on stdout, or the DM-coded error on stderr.
fn print_cipher_result(r: Result<String, password::CipherError>) -> ExitCode {
    match r {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
