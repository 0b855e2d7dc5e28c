//! dmctl: see `dm_rs::ctl`.
fn main() -> std::process::ExitCode {
    dm_rs::ctl::run(std::env::args().collect())
}
