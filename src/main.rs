// mimalloc: JSON pages and rule evaluation make millions of small, short-lived allocations,
// which it serves markedly faster than glibc's malloc (BENCHMARKS.md, "Rule evaluation").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    crmsync::cli::main()
}
