//! The `paritygate` binary: parse the command line and hand over to the library.
//! Everything is built in `paritygate::cli`; this file stays tiny on purpose.

fn main() -> std::process::ExitCode {
    paritygate::cli::main()
}
