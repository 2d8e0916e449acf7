use anyhow::{Context, Result};
use leoclr_data::{Dataset, DatasetFormat, DatasetSpec, Split};

use crate::args::SubsetArgs;

pub fn write_gz(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::best());
    gz.write_all(bytes)?;
    gz.finish()?;
    Ok(())
}

pub fn run(a: SubsetArgs) -> Result<()> {
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
        let first = ds.get(0)?;
        let (w, h) = (first.width, first.height);
        let mut pixels = Vec::with_capacity(ds.len() * w * h);
        let mut labels = Vec::with_capacity(ds.len());
        for i in 0..ds.len() {
            pixels.extend(ds.get(i)?.data);
            labels.push(ds.label(i).unwrap_or(0) as u8);
        }
        write_gz(
            &a.out.join(format!("{prefix}-images-idx3-ubyte.gz")),
            &leoclr_data::idx::encode(&[ds.len(), h, w], &pixels),
        )?;
        write_gz(
            &a.out.join(format!("{prefix}-labels-idx1-ubyte.gz")),
            &leoclr_data::idx::encode(&[ds.len()], &labels),
        )?;
        println!("{prefix}: {} images of {w}x{h}", ds.len());
    }
    Ok(())
}
