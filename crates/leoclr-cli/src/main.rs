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
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
