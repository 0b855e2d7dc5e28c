//! dm-master: schedules sources and tasks (`dm_rs` library). This build only has the flag
//! surface; the server arrives with the cluster work (issue #3).
use clap::Parser;

/// dm-master: keeps sources and tasks and schedules them onto dm-workers.
#[derive(Parser)]
#[command(name = "dm-master", disable_version_flag = true)]
struct Args {
    /// Print version information and exit.
    #[arg(short = 'V')]
    version: bool,
    /// Address to serve pb.Master on.
    #[arg(long = "master-addr", default_value = "127.0.0.1:8261")]
    master_addr: String,
    /// Directory for the master's state.
    #[arg(long = "data-dir", default_value = "default.dm-master")]
    data_dir: String,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.version {
        println!("{}", dm_rs::version::banner());
        return std::process::ExitCode::SUCCESS;
    }
    eprintln!(
        "dm-master: serving {} (data dir {}) is not implemented in this build yet; only -V works",
        args.master_addr, args.data_dir
    );
    std::process::ExitCode::FAILURE
}
