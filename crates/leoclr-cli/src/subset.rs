//! `leoclr subset`: the first N train / M test images of an IDX dataset as a new IDX dataset, or
//! (`--scenes`) their scenes: each image pasted at a random scale and place on a larger canvas
//! over clutter from other images, labels kept, so that random crops can miss the object.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use leoclr_core::destination::{self, Input, OutputKind};
use leoclr_core::run::{DEBIAN_FASHION_MNIST, augment};
use leoclr_data::scenes::{self, ObjectBox, SceneConfig};
use leoclr_data::{Dataset, DatasetFormat, DatasetSpec, Split};

#[derive(Args, Debug)]
pub struct SubsetArgs {
    /// IDX dataset directory to read.
    #[arg(long, default_value = DEBIAN_FASHION_MNIST)]
    pub data: PathBuf,
    #[arg(long, default_value_t = 10000)]
    pub train: usize,
    #[arg(long, default_value_t = 2000)]
    pub test: usize,
    #[arg(long)]
    pub out: PathBuf,
    /// Write scenes instead of the images themselves (seeded, deterministic): see
    /// `leoclr_data::scenes`. Prints how often a training crop misses the object.
    #[arg(long)]
    pub scenes: bool,
    /// Scenes: the canvas side in pixels.
    #[arg(long, default_value_t = SceneConfig::default().canvas)]
    pub canvas: usize,
    /// Scenes: the seed of placements and clutter.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Replace a data set this command wrote at --out before.
    #[arg(long)]
    pub overwrite: bool,
}

pub fn write_gz(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::best());
    gz.write_all(bytes)?;
    gz.finish()?;
    Ok(())
}

/// Writes a grayscale dataset of equal-size images as gzipped IDX images and labels; returns the
/// image size (w, h).
pub fn write_idx_gz(
    ds: &Dataset,
    images: &std::path::Path,
    labels: &std::path::Path,
) -> Result<(usize, usize)> {
    let first = ds.get(0)?;
    let (w, h) = (first.width, first.height);
    let mut pixels = Vec::with_capacity(ds.len() * w * h);
    let mut classes = Vec::with_capacity(ds.len());
    for i in 0..ds.len() {
        let img = ds.get(i)?;
        if (img.width, img.height, img.channels) != (w, h, 1) {
            anyhow::bail!("{}: IDX needs equal-size grayscale images", ds.describe(i));
        }
        pixels.extend(img.data);
        classes.push(ds.label(i).unwrap_or(0) as u8);
    }
    write_gz(
        images,
        &leoclr_data::idx::encode(&[ds.len(), h, w], &pixels),
    )?;
    write_gz(labels, &leoclr_data::idx::encode(&[ds.len()], &classes))?;
    Ok((w, h))
}

/// `ds` as scenes, written as IDX images and labels; returns where each object went.
fn write_scenes(
    ds: &Dataset,
    cfg: &SceneConfig,
    images: &std::path::Path,
    labels: &std::path::Path,
) -> Result<Vec<ObjectBox>> {
    let c = cfg.canvas;
    let mut pixels = Vec::with_capacity(ds.len() * c * c);
    let mut classes = Vec::with_capacity(ds.len());
    let mut boxes = Vec::with_capacity(ds.len());
    for i in 0..ds.len() {
        let (img, b) = scenes::scene(ds, i, cfg)?;
        pixels.extend(img.data);
        classes.push(ds.label(i).unwrap_or(0) as u8);
        boxes.push(b);
    }
    write_gz(
        images,
        &leoclr_data::idx::encode(&[ds.len(), c, c], &pixels),
    )?;
    write_gz(labels, &leoclr_data::idx::encode(&[ds.len()], &classes))?;
    Ok(boxes)
}

pub fn run(a: SubsetArgs) -> Result<()> {
    // Writing over the files being read would shrink the source in place; anything but a data
    // set this command wrote is never replaced.
    destination::check(
        &a.out,
        OutputKind::IdxDataset,
        a.overwrite,
        &[Input::data(&a.data)],
    )?;
    if a.scenes && !(16..=256).contains(&a.canvas) {
        bail!("--canvas {}: between 16 and 256 pixels", a.canvas);
    }
    std::fs::create_dir_all(&a.out)?;
    let cfg = SceneConfig {
        canvas: a.canvas,
        seed: a.seed,
        ..SceneConfig::default()
    };
    let mut objects = Vec::new();
    for (split, n, prefix) in [
        (Split::Train, a.train, "train"),
        (Split::Test, a.test, "t10k"),
    ] {
        let ds = Dataset::open(&DatasetSpec {
            path: a.data.clone(),
            format: Some(DatasetFormat::Idx),
            split,
            limit: Some(n),
        })?;
        let (images, labels) = (
            a.out.join(format!("{prefix}-images-idx3-ubyte.gz")),
            a.out.join(format!("{prefix}-labels-idx1-ubyte.gz")),
        );
        if a.scenes {
            let boxes = write_scenes(&ds, &cfg, &images, &labels)?;
            println!(
                "{prefix}: {} scenes of {}x{}",
                ds.len(),
                cfg.canvas,
                cfg.canvas
            );
            objects.extend(boxes);
        } else {
            let (w, h) = write_idx_gz(&ds, &images, &labels)?;
            println!("{prefix}: {} images of {w}x{h}", ds.len());
        }
    }
    if a.scenes {
        // What the training augmentation does to these scenes (the view is the canvas, the
        // preset by size: "small" aug+ up to 64 px).
        let aug = augment(1, cfg.canvas, None)?;
        let m = scenes::miss_rate(&objects, cfg.canvas, &aug, a.seed);
        println!(
            "a random crop (scale {:?}) misses the object (holds under a quarter of it) in {:.1}% \
             of crops; in {:.1}% of a step's crop pairs at least one does",
            aug.scale,
            100.0 * m.crops,
            100.0 * m.pairs
        );
        let info = serde_json::json!({ "scenes": cfg, "objects": objects, "miss_rate": m });
        std::fs::write(a.out.join("scenes.json"), serde_json::to_string(&info)?)?;
    }
    Ok(())
}
