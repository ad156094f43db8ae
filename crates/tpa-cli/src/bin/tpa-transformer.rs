fn main() -> std::process::ExitCode {
    tpa_cli::not_yet_implemented("tpa-transformer", "issue 3")
}
