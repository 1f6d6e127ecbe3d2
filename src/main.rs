//! `mdu`: the MDU Workbench. No subcommand opens the GUI; subcommands run the engine headless.

use clap::Parser;

fn main() {
    // Before any thread starts: the environment the graphics stack expects.
    mdu_workbench::device::prepare_process_environment();
    let cli = mdu_workbench::cli::Cli::parse();
    if let Err(err) = mdu_workbench::cli::run(cli) {
        // One readable line (with its causes), never a panic trace.
        let mut message = err.to_string();
        for cause in err.chain().skip(1) {
            message.push_str(&format!(": {cause}"));
        }
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}
