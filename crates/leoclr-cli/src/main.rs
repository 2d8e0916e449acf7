//! `leoclr`: train, evaluate and inspect LeOCLR / MoCo-v2 models from the command line.

mod args;
mod bench;
mod compare;
mod eval_cmd;
mod export;
mod progress;
mod subset;
mod train_cmd;

use clap::Parser;

fn main() {
    leoclr_core::default_device_on_cpu();
    let cli = args::Cli::parse();
    let res = match cli.command {
        args::Command::Train(a) => train_cmd::run(a),
        args::Command::Eval(a) => eval_cmd::run(a),
        args::Command::Subset(a) => subset::run(a),
        args::Command::Compare(a) => compare::run(a),
        args::Command::Bench(a) => bench::run(a),
        args::Command::Export(a) => export::run(a),
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
