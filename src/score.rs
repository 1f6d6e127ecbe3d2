//! `mdu score`: ROUGE-L of reference/candidate pairs read as JSON lines.
//!
//! Each input line `{"reference": "...", "candidate": "..."}` gives one output line
//! `{"precision":p,"recall":r,"fmeasure":f}`, in input order: rouge-score 0.1.2's
//! `RougeScorer(["rougeL"], use_stemmer=True).score(reference, candidate)`, bit for bit
//! (`crate::eval::rouge_l`). Numbers are printed in serde_json's shortest round-trip form, so
//! Python's `json.loads` reads back the very same doubles.
//!
//! The whole file is read and checked before anything is printed: a bad line prints nothing on
//! stdout, one `error: FILE:LINE: …` line on stderr, and exits 1. Scoring runs on scoped threads
//! over contiguous chunks, so the order of the output never depends on the thread count.

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

const AFTER_HELP: &str = "\
Input: UTF-8 JSON lines, one object per line with string fields \"reference\" (the ground truth,
the recall denominator) and \"candidate\" (the generation); other fields are ignored.
Output: exactly one line {\"precision\":P,\"recall\":R,\"fmeasure\":F} per input line, same order,
nothing else on stdout. Scores equal rouge-score 0.1.2 RougeScorer([\"rougeL\"], use_stemmer=True)
.score(reference, candidate) bit for bit.
Blank lines: empty lines at the very end of the file are ignored (so output line k is input line
k); any other empty or whitespace-only line is an error. Errors (unreadable file, invalid UTF-8,
invalid JSON, not an object, missing or non-string field) name FILE:LINE and the field, go to
stderr, print nothing on stdout, and exit with status 1.";

#[derive(clap::Args, Debug, Clone)]
#[command(after_help = AFTER_HELP)]
pub struct ScoreArgs {
    /// JSON lines file, one {"reference": "...", "candidate": "..."} object per line.
    #[arg(long)]
    pub pairs: PathBuf,
    /// Worker threads (0 = one per available core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// One input record.
#[derive(Deserialize)]
struct Pair<'a> {
    #[serde(borrow)]
    reference: Cow<'a, str>,
    #[serde(borrow)]
    candidate: Cow<'a, str>,
}

/// One output record; field order is the output's key order.
#[derive(Serialize, Clone, Copy, Default, Debug, PartialEq)]
pub struct PairScore {
    pub precision: f64,
    pub recall: f64,
    pub fmeasure: f64,
}

pub fn run(args: ScoreArgs) -> Result<()> {
    let bytes = std::fs::read(&args.pairs)
        .with_context(|| format!("cannot read {}", args.pairs.display()))?;
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t,
        Err(e) => {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            bail!("{}:{line}: not valid UTF-8", args.pairs.display());
        }
    };
    let pairs = parse_pairs(text, &args.pairs)?;
    let threads = if args.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        args.threads
    };
    let scores = score_pairs(&pairs, threads);

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    for s in &scores {
        serde_json::to_writer(&mut out, s)?;
        out.write_all(b"\n")?;
    }
    out.flush().context("cannot write to stdout")?;
    Ok(())
}

/// Parse every line, failing on the first bad one with `FILE:LINE: reason`.
fn parse_pairs<'a>(text: &'a str, path: &Path) -> Result<Vec<Pair<'a>>> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    // Ignore empty lines at the very end (a final newline leaves one empty piece).
    while lines
        .last()
        .is_some_and(|l| l.trim_end_matches('\r').is_empty())
    {
        lines.pop();
    }
    let mut pairs = Vec::with_capacity(lines.len());
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let at = || format!("{}:{}", path.display(), i + 1);
        if line.trim().is_empty() {
            bail!(
                "{}: blank line (every line must be one {{\"reference\", \"candidate\"}} object)",
                at()
            );
        }
        match serde_json::from_str::<Pair>(line) {
            Ok(p) => pairs.push(p),
            Err(_) => bail!("{}: {}", at(), explain(line)),
        }
    }
    Ok(pairs)
}

/// Why a line is not a valid pair, naming the field.
fn explain(line: &str) -> String {
    let value: serde_json::Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return format!("invalid JSON: {e}"),
    };
    let Some(obj) = value.as_object() else {
        return format!("expected a JSON object, got {}", kind(&value));
    };
    for field in ["reference", "candidate"] {
        match obj.get(field) {
            None => return format!("missing field \"{field}\""),
            Some(serde_json::Value::String(_)) => {}
            Some(v) => return format!("field \"{field}\" must be a string, got {}", kind(v)),
        }
    }
    // Both fields are strings and the line is valid JSON: the typed parse refused something else
    // (a duplicated key).
    match serde_json::from_str::<Pair>(line) {
        Err(e) => format!("invalid record: {e}"),
        Ok(_) => "invalid record".to_string(),
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn score_one(p: &Pair) -> PairScore {
    let s = crate::eval::rouge_l(&p.reference, &p.candidate);
    PairScore {
        precision: s.precision,
        recall: s.recall,
        fmeasure: s.fmeasure,
    }
}

/// Score on `threads` scoped threads, each over one contiguous chunk; output in input order.
fn score_pairs(pairs: &[Pair], threads: usize) -> Vec<PairScore> {
    let mut scores = vec![PairScore::default(); pairs.len()];
    let threads = threads.clamp(1, pairs.len().max(1));
    if threads == 1 {
        for (s, p) in scores.iter_mut().zip(pairs) {
            *s = score_one(p);
        }
        return scores;
    }
    let chunk = pairs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for (outs, ins) in scores.chunks_mut(chunk).zip(pairs.chunks(chunk)) {
            scope.spawn(move || {
                for (s, p) in outs.iter_mut().zip(ins) {
                    *s = score_one(p);
                }
            });
        }
    });
    scores
}
