//! The `paritygate` binary: parse the command line and hand over to the library.
//! Everything is built in `paritygate::cli`; this file stays tiny on purpose.

/// jemalloc instead of glibc's allocator: `serve`'s consumer thread allocates every record and the
/// lane workers free them, a cross-thread pattern glibc's arenas handle poorly (measured with
/// `bench serve`, see docs/benchmarks.md "Serve throughput").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    paritygate::cli::main()
}
