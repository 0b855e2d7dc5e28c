//! dm-master: schedules sources and tasks onto dm-workers (`dm_rs::master`).

/// mimalloc: the sync path allocates per row on one thread and frees on another (the apply
/// queues); glibc malloc serialises that on its arena locks.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::Parser;
use dm_rs::master::config::{Flags, Settings, Startup};

/// dm-master: keeps sources and tasks (redb under --data-dir), serves DM's pb.Master over gRPC
/// and schedules each source onto one dm-worker.
#[derive(Parser)]
#[command(
    name = "dm-master",
    disable_version_flag = true,
    after_help = "A flag given on the command line wins over the same key of --config.\nThe config file (TOML) also takes dm-rs's timings: push-interval (1s), worker-offline-after (8s),\nworker-call-timeout (3s), worker-connect-timeout (2s); see the README."
)]
struct Args {
    /// Print version information and exit.
    #[arg(short = 'V')]
    version: bool,
    /// Path to the config file (TOML: DM's name, master-addr, data-dir, log-level, log-file
    /// and dm-rs's timings); `dmctl update-master-config` rewrites it.
    #[arg(long = "config", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// This master's name [default: dm-master].
    #[arg(long)]
    name: Option<String>,
    /// Address to serve pb.Master on, IP:PORT or :PORT [default: 127.0.0.1:8261].
    #[arg(long = "master-addr")]
    master_addr: Option<String>,
    /// Directory for the master's state (created 0700; its files, the redb store and the
    /// secret key behind get-config's password fingerprint, are 0600) [default:
    /// default.dm-master].
    #[arg(long = "data-dir")]
    data_dir: Option<String>,
    /// Also run one dm-worker inside this process (the single-machine setup).
    #[arg(long = "with-worker")]
    with_worker: bool,
    /// Name of the in-process worker (with --with-worker).
    #[arg(long = "worker-name", default_value = "worker-local")]
    worker_name: String,
    /// Log level (trace, debug, info, warn, error); RUST_LOG overrides it at the start
    /// [default: info].
    #[arg(long = "log-level", short = 'L')]
    log_level: Option<String>,
    /// Write the log to this file (appended) instead of stderr.
    #[arg(long = "log-file", value_name = "FILE")]
    log_file: Option<String>,
    /// File holding a hex AES-256 key (64 characters) for password ciphertext (DM v7+): the
    /// master seals stored passwords with it, hands it to the workers it binds sources to, and
    /// `dmctl encrypt` through the master uses it. Without it: DM's built-in key (DM v1-v6).
    #[arg(long = "secret-key-path", value_name = "FILE")]
    secret_key_path: Option<String>,
}

fn main() -> std::process::ExitCode {
    dm_rs::alloc::tune();
    let args = Args::parse_from(dm_rs::logging::long_flags(std::env::args().collect()));
    if args.version {
        println!("{}", dm_rs::version::banner());
        return std::process::ExitCode::SUCCESS;
    }
    let flags = Flags {
        name: args.name,
        master_addr: args.master_addr,
        data_dir: args.data_dir,
        log_level: args.log_level,
        log_file: args.log_file,
        secret_key_path: args.secret_key_path,
    };
    let startup = match Startup::load(args.config.as_deref(), flags) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dm-master: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let log = match dm_rs::logging::init_reloadable(
        &startup.config.log_level,
        startup.config.log_file.as_deref(),
    ) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("dm-master: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let opts = dm_rs::master::MasterOpts {
        settings: Settings::new(startup, Some(log)),
        with_worker: args.with_worker.then_some(args.worker_name),
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dm-master: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(dm_rs::master::run(opts)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dm-master: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
