//! dm-worker: runs the subtasks of the source the master binds to it (`dm_rs::worker`).

/// mimalloc: the sync path allocates per row on one thread and frees on another (the apply
/// queues); glibc malloc serialises that on its arena locks.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

/// dm-worker: registers with dm-master and runs the units of the subtasks bound to it.
#[derive(Parser)]
#[command(
    name = "dm-worker",
    disable_version_flag = true,
    after_help = "A flag given on the command line wins over the same key of --config.\nThe config file is DM's dm-worker.toml (what `dmctl config worker NAME --path FILE` writes);\nDM keys dm-rs has no counterpart for are read only at DM's default value, see the README."
)]
struct Args {
    /// Print version information and exit.
    #[arg(short = 'V')]
    version: bool,
    /// Path to DM's worker config file (TOML: name, worker-addr, advertise-addr, join,
    /// log-level, log-file).
    #[arg(long = "config", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// Worker name, unique in the cluster [default: worker-<worker-addr>].
    #[arg(long)]
    name: Option<String>,
    /// Address to serve the worker on (`:PORT` for every interface) [default: 127.0.0.1:8262].
    #[arg(long = "worker-addr")]
    worker_addr: Option<String>,
    /// Address the master calls the worker at [default: worker-addr].
    #[arg(long = "advertise-addr")]
    advertise_addr: Option<String>,
    /// Master address to join [default: 127.0.0.1:8261].
    #[arg(long)]
    join: Option<String>,
    /// Log level (error, warn, info, debug); RUST_LOG overrides it [default: info].
    #[arg(long = "log-level", short = 'L')]
    log_level: Option<String>,
    /// Log file [default: stderr].
    #[arg(long = "log-file")]
    log_file: Option<String>,
}

fn main() -> std::process::ExitCode {
    dm_rs::alloc::tune();
    let args = Args::parse_from(dm_rs::logging::long_flags(std::env::args().collect()));
    if args.version {
        println!("{}", dm_rs::version::banner());
        return std::process::ExitCode::SUCCESS;
    }
    let flags = dm_rs::worker::config::WorkerSettings {
        name: args.name,
        worker_addr: args.worker_addr,
        advertise_addr: args.advertise_addr,
        join: args.join,
        log_level: args.log_level,
        log_file: args.log_file,
    };
    let cfg = match dm_rs::worker::config::WorkerConfig::load(args.config.as_deref(), &flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dm-worker: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Err(e) = dm_rs::logging::init_reloadable(
        &cfg.log_level,
        cfg.log_file.as_deref().map(std::path::Path::new),
    ) {
        eprintln!("dm-worker: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dm-worker: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(dm_rs::worker::run_process(
        &cfg.name,
        &cfg.worker_addr,
        &cfg.advertise_addr,
        &cfg.join,
    )) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dm-worker: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
