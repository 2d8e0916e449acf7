//! The command line: one subcommand a module, each module holding its own arguments.

use clap::{Parser, Subcommand};

use crate::bench::BenchArgs;
use crate::bench_ann::BenchAnnArgs;
use crate::compare::CompareArgs;
use crate::embed_cmd::EmbedArgs;
use crate::eval_cmd::EvalArgs;
use crate::export::ExportArgs;
use crate::retrieve_cmd::RetrieveArgs;
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
    /// Train every method (MoCo-v2 sym/asym, LeOCLR variants) at the same budget, over seeds, and
    /// compare them.
    Compare(CompareArgs),
    /// Measure training-step and end-to-end throughput per backend.
    Bench(BenchArgs),
    /// Approximate (HNSW) against exact nearest-neighbour search: recall, time per query, build
    /// time and memory, on an embedding index or synthetic vectors.
    BenchAnn(BenchAnnArgs),
    /// Write the first N train / M test images of an IDX dataset as a new IDX dataset (how the bundled
    /// assets/fashion-mnist-subset was made).
    Subset(SubsetArgs),
    /// Export a trained backbone for PyTorch (--format torchvision: a torchvision ResNet state
    /// dict in safetensors), or what the browser demo ships (--format web: the encoder alone, a
    /// gallery of labelled images and their embeddings; how assets/web was made).
    Export(ExportArgs),
    /// Embed every image of a dataset or folder: features.npy, metadata.tsv, index.json (and
    /// Embedding Projector files with --projector), for NumPy and `leoclr retrieve`.
    Embed(EmbedArgs),
    /// The nearest images of an embedding index to query images.
    Retrieve(RetrieveArgs),
}
