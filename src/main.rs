//! nta7516-milter binary: everything lives in the library; see `cli::main`.

fn main() -> std::process::ExitCode {
    nta7516_milter::cli::main()
}
