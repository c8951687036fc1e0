//! The command line (WIP).

pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
