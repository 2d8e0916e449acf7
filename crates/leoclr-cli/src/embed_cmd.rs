//! `leoclr embed`: the backbone features (and optionally the projections) of every image of a
//! dataset, as an index directory (`leoclr_core::index`) that NumPy, `leoclr retrieve` and, with
//! `--projector`, TensorBoard's Embedding Projector open. Streams: a batch of images is decoded,
//! embedded and written before the next, so memory stays bounded for any number of files.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::Args;
use leoclr_core::ann::{AnnIndex, AnnInfo, AnnParams, EXACT_BELOW};
use leoclr_core::destination::{self, Input, OutputKind, Scratch};
use leoclr_core::eval::Output;
use leoclr_core::index::{
    FEATURES_FILE, INFO_FILE, IndexInfo, METADATA_FILE, PROJECTIONS_FILE, tsv_field,
};
use leoclr_core::infer::{embed_views, model_input, normalize_rows};
use leoclr_core::run::{view_size, view_size_skipping};
use leoclr_data::formats::npy::{self, NpyWriter};
use leoclr_data::{Dataset, DatasetFormat, DatasetSpec, ImageU8, Split};

use crate::export::WhichEncoder;

#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// A checkpoint file or run directory.
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[arg(long, value_enum, default_value_t = WhichEncoder::Query)]
    pub encoder: WhichEncoder,
    /// Dataset directory (IDX, CIFAR-10/100, STL-10 binary, or an image folder).
    #[arg(long)]
    pub data: PathBuf,
    #[arg(long)]
    pub format: Option<DatasetFormat>,
    #[arg(long, default_value = "train")]
    pub split: Split,
    /// Only the first N images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Images embedded at a time.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Also write the L2-normalised projections (projections.npy).
    #[arg(long)]
    pub projections: bool,
    /// Also write TensorBoard Embedding Projector input: vectors.tsv, a sprite of thumbnails and
    /// projector_config.pbtxt (with metadata.tsv).
    #[arg(long)]
    pub projector: bool,
    /// Leave out images that cannot be decoded (listed in index.json) instead of stopping.
    #[arg(long)]
    pub skip_bad: bool,
    /// Replace an index already in --out.
    #[arg(long)]
    pub overwrite: bool,
    #[arg(long, default_value = "embeddings")]
    pub out: PathBuf,
    /// Save an HNSW graph for approximate search beside the features: auto (from 20,000
    /// images, where the exact scan starts to cost), on, off. `retrieve` and the app use it.
    #[arg(long, value_enum, default_value_t = AnnMode::Auto)]
    pub ann: AnnMode,
    /// HNSW candidates per query, recall against speed (default: 64 up to 200,000 images, 256
    /// above; see docs/performance.md).
    #[arg(long)]
    pub ef_search: Option<usize>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnMode {
    Auto,
    On,
    Off,
}

/// Builds the HNSW graph over the features written in `dir` and saves it there.
fn build_graph(dir: &Path, ef_search: Option<usize>) -> Result<AnnInfo> {
    let (n, dim, mut rows) = npy::read_f32_matrix(&dir.join(FEATURES_FILE))?;
    normalize_rows(&mut rows, dim);
    let t = std::time::Instant::now();
    let mut params = AnnParams::for_rows(n);
    params.ef_search = ef_search.unwrap_or(params.ef_search);
    let ann = AnnIndex::build(&rows, dim, params)?;
    let info = ann.save(dir)?;
    eprintln!(
        "HNSW graph over {} rows built in {:.1} s",
        info.rows,
        t.elapsed().as_secs_f64()
    );
    Ok(info)
}

/// The projector's sprite: at most 8192 px a side (its limit), thumbnails up to 64 px.
const SPRITE_MAX: usize = 8192;

/// Thumbnail side and images per row of the sprite for `n` images of view side `size`.
fn sprite_layout(n: usize, size: usize) -> (usize, usize) {
    let per_row = (n as f64).sqrt().ceil().max(1.0) as usize;
    let thumb = size.clamp(1, 64).min(SPRITE_MAX / per_row).max(1);
    (thumb, per_row)
}

/// The files of an index being written, in a scratch directory renamed into place at the end.
struct Writers {
    dir: PathBuf,
    features: NpyWriter,
    projections: Option<NpyWriter>,
    metadata: std::io::BufWriter<std::fs::File>,
    vectors: Option<std::io::BufWriter<std::fs::File>>,
    /// The sprite sheet, its thumbnail side and thumbnails per row.
    sprite: Option<(image::RgbImage, usize, usize)>,
    written: usize,
}

impl Writers {
    /// Files for up to `n` images of `dim` features (and `proj_dim` projections).
    fn create(
        dir: PathBuf,
        a: &EmbedArgs,
        n: usize,
        dims: (usize, usize),
        size: usize,
    ) -> Result<Self> {
        let (dim, proj_dim) = dims;
        let mut metadata = create(&dir.join(METADATA_FILE))?;
        writeln!(metadata, "index\tname\tlabel")?;
        Ok(Self {
            features: NpyWriter::create(&dir.join(FEATURES_FILE), n, dim)?,
            projections: match a.projections {
                true => Some(NpyWriter::create(&dir.join(PROJECTIONS_FILE), n, proj_dim)?),
                false => None,
            },
            metadata,
            vectors: match a.projector {
                true => Some(create(&dir.join("vectors.tsv"))?),
                false => None,
            },
            sprite: a.projector.then(|| {
                let (thumb, per_row) = sprite_layout(n, size);
                let rows = n.div_ceil(per_row);
                let sheet = image::RgbImage::new((per_row * thumb) as u32, (rows * thumb) as u32);
                (sheet, thumb, per_row)
            }),
            dir,
            written: 0,
        })
    }

    /// One batch: the images, their features and (when asked for) projections.
    fn write(
        &mut self,
        ds: &Dataset,
        imgs: &[(usize, ImageU8)],
        feats: &[Vec<f32>],
        projections: Option<Vec<Vec<f32>>>,
    ) -> Result<()> {
        self.features.write_rows(&feats.concat())?;
        if let (Some(p), Some(z)) = (&mut self.projections, projections) {
            p.write_rows(&z.concat())?;
        }
        for ((i, img), f) in imgs.iter().zip(feats) {
            let label = ds
                .label(*i)
                .map(|l| {
                    ds.classes
                        .get(l as usize)
                        .cloned()
                        .unwrap_or_else(|| l.to_string())
                })
                .unwrap_or_default();
            let name = tsv_field(&ds.describe(*i));
            writeln!(self.metadata, "{i}\t{name}\t{}", tsv_field(&label))?;
            if let Some(v) = &mut self.vectors {
                let row: Vec<String> = f.iter().map(|x| format!("{x}")).collect();
                writeln!(v, "{}", row.join("\t"))?;
            }
            if let Some((sheet, thumb, per_row)) = &mut self.sprite {
                paste(sheet, img, self.written, *thumb, *per_row);
            }
            self.written += 1;
        }
        Ok(())
    }

    /// Closes every file; images left out shrink the matrices (their headers are rewritten for
    /// the rows written) and the sprite.
    fn finish(self) -> Result<usize> {
        let written = self.written;
        self.features.finish_with(written)?;
        if let Some(p) = self.projections {
            p.finish_with(written)?;
        }
        let mut metadata = self.metadata;
        metadata.flush()?;
        if let Some(mut v) = self.vectors {
            v.flush()?;
        }
        if let Some((sheet, thumb, per_row)) = self.sprite {
            let rows = written.div_ceil(per_row).max(1);
            let (w, h) = ((per_row * thumb) as u32, (rows * thumb) as u32);
            let sheet = image::imageops::crop_imm(&sheet, 0, 0, w, h).to_image();
            sheet
                .save(self.dir.join("sprite.png"))
                .context("writing sprite.png")?;
            std::fs::write(
                self.dir.join("projector_config.pbtxt"),
                format!(
                    "embeddings {{\n  tensor_name: \"leoclr features\"\n  tensor_path: \"vectors.tsv\"\n  metadata_path: \"{METADATA_FILE}\"\n  sprite {{\n    image_path: \"sprite.png\"\n    single_image_dim: {thumb}\n    single_image_dim: {thumb}\n  }}\n}}\n"
                ),
            )?;
        }
        Ok(written)
    }
}

fn create(path: &Path) -> Result<std::io::BufWriter<std::fs::File>> {
    Ok(std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    ))
}

/// Decodes images `ids`: the good ones, and (with `skip_bad`) the descriptions of bad ones.
fn decode(
    ds: &Dataset,
    ids: std::ops::Range<usize>,
    skip_bad: bool,
    skipped: &mut Vec<String>,
) -> Result<Vec<(usize, ImageU8)>> {
    let mut out = Vec::with_capacity(ids.len());
    for i in ids {
        match ds.get(i) {
            Ok(img) => out.push((i, img)),
            Err(e) if skip_bad => skipped.push(e.to_string()),
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "image {i} of {} (--skip-bad leaves such files out)",
                    ds.name
                )));
            }
        }
    }
    Ok(out)
}

/// The dataset in the model's channels.
fn open_data(a: &EmbedArgs, channels: usize) -> Result<Dataset> {
    let ds = Dataset::open(&DatasetSpec {
        path: a.data.clone(),
        format: a.format,
        split: a.split,
        limit: a.limit,
    })?;
    let ds = match ds.channels == channels {
        true => ds,
        false => ds.with_channels(channels)?,
    };
    if ds.is_empty() {
        bail!("{}: no images", a.data.display());
    }
    Ok(ds)
}

/// Flags checked before anything is read: bounded sizes, and where the index may go.
fn check_flags(a: &EmbedArgs) -> Result<()> {
    if !(1..=65_536).contains(&a.batch) {
        bail!("--batch {}: between 1 and 65536 images at a time", a.batch);
    }
    if let Some(ef) = a.ef_search
        && !(1..=100_000).contains(&ef)
    {
        bail!("--ef-search {ef}: between 1 and 100000 candidates a query");
    }
    Ok(())
}

/// Embeds every image of `ds` a batch at a time into the index's files; returns the images left
/// out (with `--skip-bad`) and the seconds it took.
fn embed_all(
    a: &EmbedArgs,
    ds: &Dataset,
    encoder: &leoclr_core::Encoder,
    aug: &leoclr_data::AugmentConfig,
    channels: usize,
    w: &mut Writers,
    device: &Device,
) -> Result<(Vec<String>, f64)> {
    let (n, size) = (ds.len(), aug.size);
    let style = "{prefix:>6} [{bar:30}] {pos}/{len} {per_sec} {eta}";
    let pb = crate::progress::bar(n, "embed", style, false);
    let mut skipped = Vec::new();
    let started = std::time::Instant::now();
    for start in (0..n).step_by(a.batch) {
        let end = (start + a.batch).min(n);
        let imgs = decode(ds, start..end, a.skip_bad, &mut skipped)?;
        pb.set_position(end as u64);
        if imgs.is_empty() {
            continue;
        }
        let inputs: Vec<Vec<f32>> = imgs.iter().map(|(_, img)| model_input(img, aug)).collect();
        let views: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
        let embed = |o| embed_views(encoder, &views, channels, size, o, device);
        let feats = embed(Output::Backbone)?;
        let projections = a
            .projections
            .then(|| embed(Output::Projection))
            .transpose()?;
        w.write(ds, &imgs, &feats, projections)?;
    }
    pb.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    Ok((skipped, seconds))
}

pub fn run(a: EmbedArgs) -> Result<()> {
    check_flags(&a)?;
    let checkpoint = std::path::absolute(&a.checkpoint)?;
    let checkpoint = match checkpoint.is_dir() {
        true => checkpoint.join(leoclr_core::checkpoint::FILE_NAME),
        false => checkpoint,
    };
    // Never its own input, never anything but an index, and only with --overwrite.
    let inputs = [Input::data(&a.data), Input::checkpoint(&checkpoint)];
    let dest = destination::check(&a.out, OutputKind::Index, a.overwrite, &inputs)?;
    let _lock = destination::lock(&a.out)?;
    let device = Device::flex();
    let (encoder, meta) = a.encoder.load(&checkpoint, &device)?;
    let identity = leoclr_core::checkpoint::identity(&checkpoint)?;
    let model = &meta.config.model;
    let channels = model.in_channels;
    let ds = open_data(&a, channels)?;
    let fallback = match a.skip_bad {
        true => view_size_skipping(&ds, None, &a.data)?,
        false => view_size(&ds, None)?,
    };
    let aug = meta.run.eval_augment(channels, None, fallback)?;
    let (n, size) = (ds.len(), aug.size);
    let dims = (model.backbone.feature_dim(), model.head_out);
    let scratch = Scratch::beside(&a.out, "embed")?;
    let mut w = Writers::create(scratch.path.clone(), &a, n, dims, size)?;
    let (skipped, seconds) = embed_all(&a, &ds, &encoder, &aug, channels, &mut w, &device)?;
    let written = w.finish()?;
    if written == 0 {
        bail!(
            "{}: no readable images ({} left out; index.json would list them)",
            a.data.display(),
            skipped.len()
        );
    }
    let info = IndexInfo {
        checkpoint,
        encoder: a.encoder.name().into(),
        images: written,
        dim: dims.0,
        channels,
        augment: aug,
        data: std::path::absolute(&a.data)?,
        split: a.split.to_string(),
        skipped: skipped.clone(),
        projections: a.projections,
        model: Some(identity),
        ann: match a.ann {
            AnnMode::On => Some(build_graph(&scratch.path, a.ef_search)?),
            AnnMode::Auto if written >= EXACT_BELOW => {
                Some(build_graph(&scratch.path, a.ef_search)?)
            }
            _ => None,
        },
    };
    std::fs::write(
        scratch.path.join(INFO_FILE),
        serde_json::to_string_pretty(&info)?,
    )?;
    scratch.install(&a.out)?;
    report(&a, &info, dims.1, dest.replaces, seconds);
    Ok(())
}

fn report(a: &EmbedArgs, info: &IndexInfo, proj_dim: usize, replaced: bool, seconds: f64) {
    for s in &info.skipped {
        eprintln!("skipped: {s}");
    }
    let mut extra = String::new();
    if a.projections {
        extra += &format!(", {proj_dim}-dim projections");
    }
    if a.projector {
        extra += ", Embedding Projector files (projector_config.pbtxt)";
    }
    if info.ann.is_some() {
        extra += ", an HNSW graph for approximate search";
    }
    if !info.skipped.is_empty() {
        extra += &format!(
            "; {} unreadable images left out (index.json lists them)",
            info.skipped.len()
        );
    }
    let verb = if replaced {
        "replaced the index in"
    } else {
        "wrote"
    };
    println!(
        "{verb} {}: {} images x {} backbone features{extra} ({:.0} images/s)",
        a.out.display(),
        info.images,
        info.dim,
        info.images as f64 / seconds.max(1e-9)
    );
}

/// Draws image number `slot` into its cell of the sprite (resized whole, gray as RGB).
fn paste(sheet: &mut image::RgbImage, img: &ImageU8, slot: usize, thumb: usize, per_row: usize) {
    let rgb = img.to_rgb();
    let Some(src) = image::RgbImage::from_raw(img.width as u32, img.height as u32, rgb) else {
        return;
    };
    let small = image::imageops::resize(
        &src,
        thumb as u32,
        thumb as u32,
        image::imageops::FilterType::Triangle,
    );
    let (x, y) = ((slot % per_row) * thumb, (slot / per_row) * thumb);
    image::imageops::replace(sheet, &small, x as i64, y as i64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sprite_fits_the_projectors_limit() {
        assert_eq!(sprite_layout(100, 28), (28, 10));
        let (thumb, per_row) = sprite_layout(100_000, 96);
        assert!(
            thumb * per_row <= SPRITE_MAX && thumb >= 1,
            "{thumb} x {per_row}"
        );
        assert_eq!(sprite_layout(1, 300), (64, 1));
    }
}
