//! `mdu score`: ROUGE-L of reference/candidate pairs read as JSON lines.

use std::path::PathBuf;

use anyhow::Result;

#[derive(clap::Args, Debug, Clone)]
pub struct ScoreArgs {
    /// JSON lines file, one {"reference": "...", "candidate": "..."} object per line.
    #[arg(long)]
    pub pairs: PathBuf,
}

pub fn run(_args: ScoreArgs) -> Result<()> {
    anyhow::bail!("mdu score: not implemented yet")
}
