//! `leoclr`: train, evaluate and inspect LeOCLR / MoCo-v2 models from the command line.

mod args;
mod bench;
mod bench_ann;
mod compare;
mod embed_cmd;
mod eval_cmd;
mod export;
mod progress;
mod retrieve_cmd;
mod subset;
mod train_cmd;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

/// The arguments given on the command line (not defaulted), by id.
fn given(m: Option<&ArgMatches>) -> Vec<String> {
    let Some(m) = m else { return Vec::new() };
    m.ids()
        // Argument groups (`DataSpec`, `ModelSpec`: the flattened structs) report the source
        // of their members; only the arguments themselves count (a resume with --data was
        // refused as "--DataSpec").
        .filter(|id| !id.as_str().starts_with(|c: char| c.is_ascii_uppercase()))
        .filter(|id| m.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .map(|id| id.to_string())
        .collect()
}

fn main() {
    leoclr_core::default_device_on_cpu();
    let matches = args::Cli::command().get_matches();
    let cli = args::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let res = match cli.command {
        args::Command::Train(a) => train_cmd::run(a, &given(matches.subcommand_matches("train"))),
        args::Command::Eval(a) => eval_cmd::run(a),
        args::Command::Subset(a) => subset::run(a),
        args::Command::Compare(a) => compare::run(a),
        args::Command::Bench(a) => bench::run(a),
        args::Command::BenchAnn(a) => bench_ann::run(a),
        args::Command::Export(a) => export::run(a),
        args::Command::Embed(a) => embed_cmd::run(a),
        args::Command::Retrieve(a) => retrieve_cmd::run(a),
    };
    if let Err(e) = res {
        eprintln!("error: {}", message(&e));
        std::process::exit(1);
    }
}

/// The error and its causes on one line, each cause once: most of our errors already name their
/// cause in their own text (a path and the I/O error), which anyhow's `{:#}` would repeat.
fn message(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text = format!("{text}: {c}");
        }
    }
    text
}
