//! The `metamorph` binary; see [`metamorph::cli`].

fn main() -> std::process::ExitCode {
    metamorph::cli::main()
}
