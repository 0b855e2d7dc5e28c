//! dm-worker: runs subtasks for the source bound to it (`dm_rs` library). This build only has the
//! flag surface; the worker arrives with the cluster work (issue #3).
use clap::Parser;

/// dm-worker: runs the dump, load and sync units of the subtasks bound to it.
#[derive(Parser)]
#[command(name = "dm-worker", disable_version_flag = true)]
struct Args {
    /// Print version information and exit.
    #[arg(short = 'V')]
    version: bool,
    /// Worker name, unique in the cluster.
    #[arg(long)]
    name: Option<String>,
    /// Address to serve pb.Worker on.
    #[arg(long = "worker-addr", default_value = "127.0.0.1:8262")]
    worker_addr: String,
    /// Master address to join.
    #[arg(long)]
    join: Option<String>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.version {
        println!("{}", dm_rs::version::banner());
        return std::process::ExitCode::SUCCESS;
    }
    eprintln!(
        "dm-worker: serving {} is not implemented in this build yet; only -V works",
        args.worker_addr
    );
    std::process::ExitCode::FAILURE
}
