fn main() -> std::process::ExitCode {
    tpa_cli::diff::main()
}
