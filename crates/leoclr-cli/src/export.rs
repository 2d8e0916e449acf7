//! `leoclr export`: the trained backbone for other tools (`--format torchvision`: a torchvision
//! ResNet state dict in safetensors), or the files the browser demo ships in `assets/web`
//! (`--format web`): the trained encoder alone, a gallery of labelled images, and the gallery's
//! embeddings computed here (so the page answers a click at once and only embeds what the user
//! uploads).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::Args;
use leoclr_core::checkpoint;
use leoclr_core::destination::{self, Input, OutputKind};
use leoclr_core::eval::{Output, embed};
use leoclr_core::infer::normalize_rows;
use leoclr_core::run::{BUNDLED_DATA, RunMeta, view_size};
use leoclr_data::{Dataset, DatasetFormat, DatasetSpec, Split};

use crate::subset::write_idx_gz;

/// What `leoclr export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// The browser demo's model, gallery and gallery embeddings (a directory).
    Web,
    /// The backbone as torchvision's ResNet state dict, in safetensors (a file).
    Torchvision,
    /// The backbone as an ONNX graph, opset 13 (a file).
    Onnx,
}

/// Which of a run's two encoders to export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WhichEncoder {
    /// The query (online) encoder, the one trained by SGD and evaluated.
    Query,
    /// The momentum (key) encoder.
    Key,
}

impl WhichEncoder {
    pub fn load(
        self,
        path: &std::path::Path,
        device: &Device,
    ) -> leoclr_core::Result<(leoclr_core::Encoder, checkpoint::Meta)> {
        match self {
            Self::Query => checkpoint::load_encoder(path, device),
            Self::Key => checkpoint::load_key_encoder(path, device),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Key => "key",
        }
    }
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A checkpoint file or run directory.
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[arg(long, value_enum, default_value_t = ExportFormat::Web)]
    pub format: ExportFormat,
    /// torchvision, onnx: which encoder's backbone.
    #[arg(long, value_enum, default_value_t = WhichEncoder::Query)]
    pub encoder: WhichEncoder,
    /// Gallery source: a grayscale IDX dataset (Fashion-MNIST).
    #[arg(long, default_value = BUNDLED_DATA)]
    pub data: PathBuf,
    #[arg(long, default_value = "test")]
    pub split: Split,
    /// Gallery size: the first N images of the split.
    #[arg(long, default_value_t = 1000)]
    pub gallery: usize,
    /// onnx: a fixed batch axis of this size (default: a symbolic axis named `batch`).
    #[arg(long)]
    pub onnx_batch: Option<usize>,
    /// web: a directory (default assets/web); torchvision: a .safetensors file (default
    /// backbone.safetensors); onnx: a .onnx file (default backbone.onnx).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace a file (or web export) already at --out; only one this command writes (an ONNX
    /// model, a safetensors file, a web export), never the checkpoint it reads.
    #[arg(long)]
    pub overwrite: bool,
}

pub const MODEL_FILE: &str = "model.leoclr";
pub const IMAGES_FILE: &str = "gallery-images-idx3-ubyte.gz";
pub const LABELS_FILE: &str = "gallery-labels-idx1-ubyte.gz";
pub const FEATURES_FILE: &str = "gallery-features.f32";

pub fn run(a: ExportArgs) -> Result<()> {
    match a.format {
        ExportFormat::Web => web(a),
        ExportFormat::Torchvision => torchvision(a),
        ExportFormat::Onnx => onnx(a),
    }
}

/// The checkpoint file a `--checkpoint` names (a run directory stands for its checkpoint).
fn checkpoint_file(a: &ExportArgs) -> PathBuf {
    match a.checkpoint.is_dir() {
        true => a.checkpoint.join(checkpoint::FILE_NAME),
        false => a.checkpoint.clone(),
    }
}

/// `--out`, or `default` in the working directory, checked by the one rule for outputs: never
/// the checkpoint read, only a file of this format, only with `--overwrite`.
fn out_file(a: &ExportArgs, default: &str, kind: OutputKind) -> Result<PathBuf> {
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from(default));
    destination::check(
        &out,
        kind,
        a.overwrite,
        &[Input::checkpoint(&checkpoint_file(a))],
    )?;
    Ok(out)
}

/// The backbone as an ONNX graph; the input it expects (view size, normalisation) is in the
/// model's metadata and printed.
fn onnx(a: ExportArgs) -> Result<()> {
    if let Some(n) = a.onnx_batch
        && !(1..=65_536).contains(&n)
    {
        bail!("--onnx-batch {n}: between 1 and 65536 (or leave it out for a symbolic batch)");
    }
    let out = out_file(&a, "backbone.onnx", OutputKind::OnnxFile)?;
    let device = Device::flex();
    let (encoder, meta) = a.encoder.load(&a.checkpoint, &device)?;
    let model = &meta.config.model;
    let Some(size) = meta
        .run
        .view_size
        .or(meta.run.augment.as_ref().map(|x| x.size))
    else {
        bail!(
            "{}: records no view size, so the ONNX input shape is unknown",
            a.checkpoint.display()
        );
    };
    let aug = meta.run.eval_augment(model.in_channels, Some(size), size)?;
    let list = |v: &[f32]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let metadata = [
        ("leoclr.encoder", a.encoder.name().to_string()),
        ("leoclr.method", meta.config.method.label().to_string()),
        ("leoclr.epoch", meta.epoch.to_string()),
        ("leoclr.backbone", model.backbone.to_string()),
        ("leoclr.small_stem", model.small_stem.to_string()),
        ("leoclr.view_size", size.to_string()),
        ("leoclr.mean", list(&aug.mean)),
        ("leoclr.std", list(&aug.std)),
    ]
    .map(|(k, v)| (k.to_string(), v));
    let shape = leoclr_core::onnx::InputShape {
        batch: a.onnx_batch,
        height: size,
        width: size,
    };
    let bytes = leoclr_core::onnx::backbone_onnx(&encoder.backbone, model, shape, &metadata)?;
    checkpoint::write_atomic(&out, &bytes)?;
    let batch = a
        .onnx_batch
        .map_or_else(|| "batch".to_string(), |n| n.to_string());
    println!(
        "wrote {} ({} bytes): the {} encoder's {} backbone as ONNX (opset {}), input '{}' \
         [{batch}, {}, {size}, {size}] normalised with mean [{}] std [{}], output '{}' [{batch}, {}]",
        out.display(),
        bytes.len(),
        a.encoder.name(),
        model.backbone,
        leoclr_core::onnx::OPSET,
        leoclr_core::onnx::INPUT,
        model.in_channels,
        list(&aug.mean),
        list(&aug.std),
        leoclr_core::onnx::OUTPUT,
        model.backbone.feature_dim(),
    );
    Ok(())
}

/// The backbone as a torchvision ResNet state dict; the architecture is in the file's metadata
/// and `scripts/torchvision_resnet.py` builds the matching model.
fn torchvision(a: ExportArgs) -> Result<()> {
    let out = out_file(&a, "backbone.safetensors", OutputKind::SafetensorsFile)?;
    let device = Device::flex();
    let (encoder, meta) = a.encoder.load(&a.checkpoint, &device)?;
    let model = &meta.config.model;
    let bytes =
        leoclr_core::torchvision::backbone_safetensors(&encoder.backbone, model, meta.step as u64)?;
    checkpoint::write_atomic(&out, &bytes)?;
    println!(
        "wrote {} ({} bytes): the {} encoder's {} backbone{} ({} input channels), epoch {}; load it with \
         scripts/torchvision_resnet.py's leoclr_resnet(\"{}\", in_channels={}, small_stem={})",
        out.display(),
        bytes.len(),
        a.encoder.name(),
        model.backbone,
        if model.small_stem {
            " with the small stem"
        } else {
            ""
        },
        model.in_channels,
        meta.epoch,
        model.backbone,
        model.in_channels,
        if model.small_stem { "True" } else { "False" },
    );
    Ok(())
}

/// `gallery.json`: what the gallery's files hold and the command that made them.
fn write_gallery_info(
    a: &ExportArgs,
    out: &std::path::Path,
    n: usize,
    dim: usize,
    meta: &checkpoint::Meta,
) -> Result<()> {
    let info = serde_json::json!({
        "images": n,
        "dim": dim,
        "features": "unit-length backbone features, f32 little-endian, row-major [images, dim]",
        "method": meta.config.method.label(),
        "epoch": meta.epoch,
        "source": a.data,
        "split": a.split,
        // args_os: a non-UTF-8 argument is shown, not a panic.
        "command": std::iter::once("leoclr".to_string())
            .chain(std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()))
            .collect::<Vec<_>>(),
    });
    std::fs::write(
        out.join("gallery.json"),
        serde_json::to_string_pretty(&info)?,
    )?;
    Ok(())
}

fn web(a: ExportArgs) -> Result<()> {
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from("assets/web"));
    destination::check(
        &out,
        OutputKind::WebExport,
        a.overwrite,
        &[
            Input::checkpoint(&checkpoint_file(&a)),
            Input::data(&a.data),
        ],
    )?;
    let device = Device::flex();
    let (encoder, meta) = checkpoint::load_encoder(&a.checkpoint, &device)?;
    let ds = Dataset::open(&DatasetSpec {
        path: a.data.clone(),
        format: Some(DatasetFormat::Idx),
        split: a.split,
        limit: Some(a.gallery),
    })
    .with_context(|| "the gallery must be an IDX dataset (grayscale, like Fashion-MNIST)")?;
    if ds.channels != meta.config.model.in_channels {
        bail!(
            "{}: the model takes {} channels, the gallery has {}",
            a.data.display(),
            meta.config.model.in_channels,
            ds.channels
        );
    }
    let aug = meta
        .run
        .eval_augment(ds.channels, None, view_size(&ds, None)?)?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let model_path = out.join(MODEL_FILE);
    let mut small = meta.clone();
    small.run = RunMeta {
        augment: Some(aug.clone()),
        view_size: Some(aug.size),
        dataset: meta.run.dataset.clone(),
        exported_from: Some(a.checkpoint.clone()),
        ..RunMeta::default()
    };
    checkpoint::save_encoder(&model_path, &encoder, &small)?;

    write_idx_gz(&ds, &out.join(IMAGES_FILE), &out.join(LABELS_FILE))?;

    let n = ds.len();
    let f = embed(
        &encoder,
        Arc::new(ds),
        &aug,
        256,
        Output::Backbone,
        &device,
        &mut |_, _| {},
    )?;
    let mut feats = f.data;
    normalize_rows(&mut feats, f.dim);
    let bytes: Vec<u8> = feats.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(out.join(FEATURES_FILE), bytes)?;
    write_gallery_info(&a, &out, n, f.dim, &meta)?;
    let size = |f: &str| std::fs::metadata(out.join(f)).map_or(0, |m| m.len());
    println!(
        "wrote {}: {MODEL_FILE} ({} bytes), {n} gallery images ({} bytes), {}-dim embeddings ({} bytes)",
        out.display(),
        size(MODEL_FILE),
        size(IMAGES_FILE) + size(LABELS_FILE),
        f.dim,
        size(FEATURES_FILE)
    );
    Ok(())
}
