use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use leoclr_core::augment_device::AugmentOn;
use leoclr_core::{Backbone, BackendKind, OriginalBranch, Precision};
use leoclr_data::{DatasetFormat, Split};

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

#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Dataset directory (IDX, CIFAR-10/100 binary, STL-10 binary, or an image folder).
    #[arg(long, default_value = "assets/fashion-mnist-subset")]
    pub data: PathBuf,
    /// Dataset format; detected from the files when omitted.
    #[arg(long)]
    pub format: Option<DatasetFormat>,
    /// Split to train on (train, test, unlabeled, train+unlabeled).
    #[arg(long, default_value = "train")]
    pub split: Split,
    /// Use only the first N training images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Labelled evaluation data; defaults to the test split of --data when it has one.
    #[arg(long)]
    pub test_data: Option<PathBuf>,
    /// Use only the first N test images.
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Labelled kNN memory bank / probe training data; defaults to the training data when labelled.
    #[arg(long)]
    pub bank_data: Option<PathBuf>,
    /// View side in pixels; defaults to the dataset's image side (folders: 96).
    #[arg(long)]
    pub size: Option<usize>,
    /// Loader threads (decoding and augmentation).
    #[arg(long)]
    pub workers: Option<usize>,
}

impl From<&DataArgs> for leoclr_core::run::DataSpec {
    fn from(d: &DataArgs) -> Self {
        Self {
            data: d.data.clone(),
            format: d.format,
            split: d.split,
            limit: d.limit,
            test_data: d.test_data.clone(),
            test_limit: d.test_limit,
            bank_data: d.bank_data.clone(),
            size: d.size,
            workers: d.workers,
        }
    }
}

/// Method and network, shared by `train` and `bench`.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// leoclr, mocov2 (symmetric) or mocov2-asym.
    #[arg(long, default_value = "leoclr")]
    pub method: String,
    /// LeOCLR: which encoder sees the uncropped original (key or query).
    #[arg(long, default_value = "key")]
    pub original_branch: OriginalBranch,
    /// tiny, resnet18 or resnet50.
    #[arg(long, default_value = "tiny")]
    pub backbone: Backbone,
    /// Small-image stem (3x3 stride 1, no max-pool); default: on for views up to 64 px.
    #[arg(long)]
    pub small_stem: Option<bool>,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Peak learning rate (SGD, cosine schedule).
    #[arg(long, default_value_t = 0.06)]
    pub lr: f64,
    #[arg(long, default_value_t = 0.0)]
    pub warmup_epochs: f64,
    #[arg(long, default_value_t = 5e-4)]
    pub weight_decay: f64,
    /// Negatives queue length K.
    #[arg(long, default_value_t = 4096)]
    pub queue: usize,
    /// InfoNCE temperature T.
    #[arg(long, default_value_t = 0.1)]
    pub temperature: f64,
    /// Key encoder EMA momentum m.
    #[arg(long, default_value_t = 0.99)]
    pub momentum: f64,
    /// Ramp m to 1 with a cosine over training.
    #[arg(long)]
    pub momentum_cosine: bool,
    /// Projection head output width.
    #[arg(long, default_value_t = 128)]
    pub head_dim: usize,
    /// Augmentation preset: "small" (aug+ without blur, for <= 64 px) or "aug+".
    #[arg(long)]
    pub aug: Option<String>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// cpu (burn flex) or wgpu (Vulkan/Metal/DX12).
    #[arg(long, default_value = "cpu")]
    pub backend: BackendKind,
    /// Run directory: checkpoint.leoclr, metrics.jsonl, config.json.
    #[arg(long, default_value = "runs/leoclr")]
    pub out: PathBuf,
    /// Continue the run in this directory from its last checkpoint.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Evaluate kNN every N epochs (0: only at the end).
    #[arg(long, default_value_t = 0)]
    pub eval_every: usize,
    /// Skip the random-initialisation baseline evaluation at the end.
    #[arg(long)]
    pub no_baseline: bool,
    /// Where views are made: "cpu" (loader threads, any data) or "device" (on the training
    /// backend from a resident copy of the dataset; images of one size).
    #[arg(long, default_value = "cpu")]
    pub augment_on: AugmentOn,
    /// Stop after this many steps (for smoke tests and benchmarks); the schedule is unchanged.
    #[arg(long, hide = true)]
    pub max_steps: Option<usize>,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A checkpoint file or run directory.
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, default_value_t = 200)]
    pub knn_k: usize,
    #[arg(long, default_value_t = 0.1)]
    pub knn_t: f32,
    /// Linear probe epochs over the cached features.
    #[arg(long, default_value_t = 30)]
    pub probe_epochs: usize,
    #[arg(long, default_value = "cpu")]
    pub backend: BackendKind,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SubsetArgs {
    /// IDX dataset directory to read.
    #[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
    pub data: PathBuf,
    #[arg(long, default_value_t = 10000)]
    pub train: usize,
    #[arg(long, default_value_t = 2000)]
    pub test: usize,
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// cpu: tiny backbone, 10,000 Fashion-MNIST train images, 8 epochs, about 20 minutes on 2 cores;
    /// gpu: ResNet-18 small stem, full Fashion-MNIST, batch 512, 20 epochs, wgpu.
    #[arg(long, default_value = "cpu")]
    pub preset: String,
    /// Rows to run (random_init, mocov2_sym, mocov2_asym, leoclr_key, leoclr_query); default all.
    #[arg(long, value_delimiter = ',')]
    pub methods: Vec<String>,
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long)]
    pub test_limit: Option<usize>,
    #[arg(long)]
    pub size: Option<usize>,
    #[arg(long)]
    pub workers: Option<usize>,
    #[arg(long)]
    pub backbone: Option<Backbone>,
    #[arg(long)]
    pub small_stem: Option<bool>,
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long)]
    pub batch: Option<usize>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub queue: Option<usize>,
    #[arg(long)]
    pub temperature: Option<f64>,
    #[arg(long)]
    pub momentum: Option<f64>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long)]
    pub backend: Option<BackendKind>,
    #[arg(long, default_value_t = 30)]
    pub probe_epochs: usize,
    #[arg(long, default_value = "runs/compare")]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Backends to measure, in order; ratios are against the first.
    #[arg(long, value_delimiter = ',', default_value = "cpu")]
    pub backends: Vec<BackendKind>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Input side in pixels.
    #[arg(long, default_value_t = 28)]
    pub res: usize,
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    #[arg(long, default_value_t = 4096)]
    pub queue: usize,
    /// Untimed steps after the first.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Batches of real data for the loader and end-to-end measurements.
    #[arg(long, default_value_t = 10)]
    pub e2e_batches: usize,
    /// Input channels (default: the data's). With 3 on grayscale data the images are replicated
    /// to RGB, to measure the RGB models users train.
    #[arg(long)]
    pub channels: Option<usize>,
    /// Data for the end-to-end run (its channels set the model's input channels).
    #[arg(long, default_value = "assets/fashion-mnist-subset")]
    pub data: PathBuf,
    #[arg(long)]
    pub workers: Option<usize>,
    /// Float type of every backend in this run: f32, f16 or bf16 (whole model, not autocast; one
    /// precision per command since burn fixes a device's float type at its first tensor).
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
    /// Where the end-to-end run makes its views, in order: cpu (loader threads), device.
    #[arg(long, value_delimiter = ',', default_value = "cpu,device")]
    pub augment_on: Vec<AugmentOn>,
    /// One JSON object per configuration instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write all rows as a JSON array here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A checkpoint file or run directory.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Gallery source: a grayscale IDX dataset (Fashion-MNIST).
    #[arg(long, default_value = "assets/fashion-mnist-subset")]
    pub data: PathBuf,
    #[arg(long, default_value = "test")]
    pub split: Split,
    /// Gallery size: the first N images of the split.
    #[arg(long, default_value_t = 1000)]
    pub gallery: usize,
    #[arg(long, default_value = "assets/web")]
    pub out: PathBuf,
}
