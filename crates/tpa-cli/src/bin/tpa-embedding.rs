fn main() -> std::process::ExitCode {
    tpa_cli::embedding::main()
}
