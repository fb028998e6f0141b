//! The `borderflow` command (see [`borderflow::cli`]).

fn main() -> std::process::ExitCode {
    borderflow::cli::main()
}
