//! The command line: one subcommand a module, each module holding its own arguments.

use clap::{Parser, Subcommand};

use crate::bench::BenchArgs;
use crate::compare::CompareArgs;
use crate::eval_cmd::EvalArgs;
use crate::export::ExportArgs;
use crate::subset::SubsetArgs;
use crate::train_cmd::TrainArgs;

#[derive(Parser, Debug)]
#[command(
    name = "leoclr",
    version,
    args_override_self = true,
    about = "LeOCLR: contrastive learning that attracts crops to the original image"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train LeOCLR (or a MoCo-v2 baseline) without labels.
    Train(TrainArgs),
    /// Evaluate a checkpoint: weighted kNN and a linear probe on frozen backbone features.
    Eval(EvalArgs),
    /// Train every method (MoCo-v2 sym/asym, LeOCLR key/query) at the same budget and compare them.
    Compare(CompareArgs),
    /// Measure training-step and end-to-end throughput per backend.
    Bench(BenchArgs),
    /// Write the first N train / M test images of an IDX dataset as a new IDX dataset (how the bundled
    /// assets/fashion-mnist-subset was made).
    Subset(SubsetArgs),
    /// Write what the browser demo ships: the encoder alone (model.leoclr), a gallery of labelled
    /// images (IDX) and their embeddings (how assets/web was made).
    Export(ExportArgs),
}
