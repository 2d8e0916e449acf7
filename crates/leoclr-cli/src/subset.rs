//! `leoclr subset`: the first N train / M test images of an IDX dataset as a new IDX dataset.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use leoclr_core::run::DEBIAN_FASHION_MNIST;
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

pub fn run(a: SubsetArgs) -> Result<()> {
    // Writing over the files being read would shrink the source in place.
    let same = |p: &PathBuf| std::fs::canonicalize(p).ok();
    if same(&a.data).is_some() && same(&a.data) == same(&a.out) {
        bail!(
            "{}: --out is the dataset being read; write the subset to another directory",
            a.out.display()
        );
    }
    std::fs::create_dir_all(&a.out)?;
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
        let (w, h) = write_idx_gz(
            &ds,
            &a.out.join(format!("{prefix}-images-idx3-ubyte.gz")),
            &a.out.join(format!("{prefix}-labels-idx1-ubyte.gz")),
        )?;
        println!("{prefix}: {} images of {w}x{h}", ds.len());
    }
    Ok(())
}
