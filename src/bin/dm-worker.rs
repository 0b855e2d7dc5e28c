//! dm-worker: runs the subtasks of the source the master binds to it (`dm_rs::worker`).

/// mimalloc: the sync path allocates per row on one thread and frees on another (the apply
/// queues); glibc malloc serialises that on its arena locks.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::Parser;

/// dm-worker: registers with dm-master and runs the sync unit of the subtasks bound to it.
#[derive(Parser)]
#[command(name = "dm-worker", disable_version_flag = true)]
struct Args {
    /// Print version information and exit.
    #[arg(short = 'V')]
    version: bool,
    /// Worker name, unique in the cluster.
    #[arg(long)]
    name: Option<String>,
    /// Address to serve the worker on.
    #[arg(long = "worker-addr", default_value = "127.0.0.1:8262")]
    worker_addr: String,
    /// Master address to join.
    #[arg(long, default_value = "127.0.0.1:8261")]
    join: String,
    /// Log level (error, warn, info, debug); RUST_LOG overrides it.
    #[arg(long = "log-level", short = 'L', default_value = "info")]
    log_level: String,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse_from(dm_rs::logging::long_flags(std::env::args().collect()));
    if args.version {
        println!("{}", dm_rs::version::banner());
        return std::process::ExitCode::SUCCESS;
    }
    dm_rs::logging::init(&args.log_level);
    let name = args
        .name
        .unwrap_or_else(|| format!("worker-{}", args.worker_addr.replace([':', '.'], "-")));
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dm-worker: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(dm_rs::worker::run_process(
        &name,
        &args.worker_addr,
        &args.join,
    )) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dm-worker: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
