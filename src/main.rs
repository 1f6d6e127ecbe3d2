//! `mdu`: the MDU Workbench. No subcommand opens the GUI; subcommands run the engine headless.

use clap::Parser;

fn main() {
    // Before any thread starts: the environment the graphics stack expects.
    mdu_workbench::device::prepare_process_environment();
    // Before parsing: `--device` help runs the CUDA probe, whose failures must stay quiet.
    mdu_workbench::kernel_runtime::init();
    let cli = mdu_workbench::cli::Cli::parse();
    // A panic (a compute backend failing where no run catches it) is one line too.
    let outcome = mdu_workbench::kernel_runtime::catch(|| mdu_workbench::cli::run(cli))
        .unwrap_or_else(|panic| Err(anyhow::anyhow!("unexpected failure: {panic}")));
    if let Err(err) = outcome {
        // One readable line (with its causes), never a panic trace.
        let mut message = err.to_string();
        for cause in err.chain().skip(1) {
            message.push_str(&format!(": {cause}"));
        }
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}
