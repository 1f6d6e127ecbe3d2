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
        let message = mdu_workbench::events::error_message(&err);
        // The reader of our output went away (`mdu … | head`): nothing is wrong, as in ripgrep.
        if closed_stdout(&err, &message) {
            std::process::exit(0);
        }
        // One readable line (with its causes), never a panic trace.
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

/// Writing to stdout failed because its reader closed the pipe (an error, or `println!`'s panic).
fn closed_stdout(err: &anyhow::Error, message: &str) -> bool {
    let broken = err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    });
    broken || message.contains("failed printing to stdout: Broken pipe")
}
