//! The `mashangban` binary: server, migrations, tokens. See `mashangban --help`.

fn main() -> std::process::ExitCode {
    mashangban::cli::main()
}
