//! dm-master: schedules sources and tasks onto dm-workers (`dm_rs::master`).

/// mimalloc: the sync path allocates per row on one thread and frees on another (the apply
/// queues); glibc malloc serialises that on its arena locks.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::Parser;

/// dm-master: keeps sources and tasks (redb under --data-dir), serves DM's pb.Master over gRPC
/// and schedules each source onto one dm-worker.
#[derive(Parser)]
#[command(name = "dm-master", disable_version_flag = true)]
struct Args {
    /// Print version information and exit.
    #[arg(short = 'V')]
    version: bool,
    /// This master's name.
    #[arg(long, default_value = "dm-master")]
    name: String,
    /// Address to serve pb.Master on.
    #[arg(long = "master-addr", default_value = "127.0.0.1:8261")]
    master_addr: String,
    /// Directory for the master's state (created 0700; its files, the redb store and the
    /// secret key behind get-config's password fingerprint, are 0600).
    #[arg(long = "data-dir", default_value = "default.dm-master")]
    data_dir: String,
    /// Also run one dm-worker inside this process (the single-machine setup).
    #[arg(long = "with-worker")]
    with_worker: bool,
    /// Name of the in-process worker (with --with-worker).
    #[arg(long = "worker-name", default_value = "worker-local")]
    worker_name: String,
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
    let opts = dm_rs::master::MasterOpts {
        name: args.name,
        master_addr: args.master_addr,
        data_dir: args.data_dir.into(),
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
