//! dm-worker: runs the subtasks of the source the master binds to it (`dm_rs::worker`).

/// mimalloc: the sync path allocates per row on one thread and frees on another (the apply
/// queues); glibc malloc serialises that on its arena locks.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    /// mimalloc's `mi_option_set` (the C library the `mimalloc` crate links).
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in mimalloc's `mi_option_t` (v2 and v3).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// Freed memory goes back to the OS after 10 s instead of mimalloc's 10 ms: a full load frees
/// and reallocates its multi-MiB statement buffers all the time, and each one came back as
/// fresh (zeroed, huge) pages — 3 000–7 000 page faults and about 8 % of the worker's CPU in
/// bench/full_load.sh; about 600 with the delay. `MIMALLOC_PURGE_DELAY` still overrides it.
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an integer option of the linked allocator; any value is valid.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 10_000) };
    }
}
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
    tune_allocator();
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
