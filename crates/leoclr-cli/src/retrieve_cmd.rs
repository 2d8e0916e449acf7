//! `leoclr retrieve`: the nearest images of an index (`leoclr embed`) to query images, by cosine
//! similarity of backbone features. The queries are prepared as the index's images were (the view
//! size and normalisation recorded in index.json) and embedded by the model it records.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::Args;
use leoclr_core::eval::Output;
use leoclr_core::index::{EmbedIndex, IndexInfo, ModelMatch};
use leoclr_core::infer::{embed_views, model_input};
use leoclr_data::folder::decode_file;
use serde::Serialize;

use crate::export::WhichEncoder;

#[derive(Args, Debug)]
pub struct RetrieveArgs {
    /// An index directory written by `leoclr embed`.
    #[arg(long)]
    pub index: PathBuf,
    /// Query images (any format the image folder reader takes).
    #[arg(long, num_args = 1.., required = true)]
    pub query: Vec<PathBuf>,
    /// Neighbours per query.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// The model, when it moved since the index was made (default: the one index.json records).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// One JSON object per query instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Scan every row even when the index has an HNSW graph (exact, slower on large indexes).
    #[arg(long)]
    pub exact: bool,
}

#[derive(Serialize)]
struct Neighbour<'a> {
    rank: usize,
    score: f32,
    index: usize,
    name: &'a str,
    label: &'a str,
}

/// One query's neighbours: a table, or one JSON object.
fn print_hits(
    q: &std::path::Path,
    index: &EmbedIndex,
    hits: &[(usize, f32)],
    json: bool,
) -> Result<()> {
    let rows: Vec<Neighbour<'_>> = hits
        .iter()
        .enumerate()
        .map(|(rank, &(r, score))| {
            let row = &index.rows[r];
            Neighbour {
                rank: rank + 1,
                score,
                index: row.index,
                name: &row.name,
                label: &row.label,
            }
        })
        .collect();
    if json {
        // A path that is not UTF-8 is shown lossily (json! on a Path panicked).
        let obj = serde_json::json!({
            "query": q.to_string_lossy(),
            "search": index.searcher.describe(),
            "neighbours": rows
        });
        println!("{}", serde_json::to_string(&obj)?);
        return Ok(());
    }
    println!("{} ({} search):", q.display(), index.searcher.describe());
    for n in &rows {
        let label = match n.label.is_empty() {
            true => String::new(),
            false => format!("  ({})", n.label),
        };
        println!("  {:>3}  {:.4}  {}{label}", n.rank, n.score, n.name);
    }
    Ok(())
}

/// The model must be the one that made the features (see [`IndexInfo::check_model`]).
fn check_identity(a: &RetrieveArgs, ckpt: &std::path::Path, info: &IndexInfo) -> Result<()> {
    if info.check_model(&a.index, ckpt)? == ModelMatch::Unrecorded {
        eprintln!(
            "note: {} does not record which state of {} made it (an index from before that \
             was recorded); if the run trained on since, embed again",
            a.index.display(),
            ckpt.display()
        );
    }
    Ok(())
}

pub fn run(a: RetrieveArgs) -> Result<()> {
    if a.k == 0 {
        bail!("-k must be at least 1");
    }
    // More than every row is every row.
    let a = RetrieveArgs {
        k: a.k.min(1 << 24),
        ..a
    };
    let index = EmbedIndex::open_with(&a.index, !a.exact)?;
    let info = &index.info;
    let device = Device::flex();
    let which = match info.encoder.as_str() {
        "key" => WhichEncoder::Key,
        _ => WhichEncoder::Query,
    };
    let ckpt = a
        .checkpoint
        .clone()
        .unwrap_or_else(|| info.checkpoint.clone());
    let (encoder, meta) = which.load(&ckpt, &device).with_context(|| {
        format!(
            "the model of index {} (--checkpoint if it moved)",
            a.index.display()
        )
    })?;
    if meta.config.model.in_channels != info.channels
        || meta.config.model.backbone.feature_dim() != info.dim
    {
        bail!(
            "{}: not the model of index {} ({} channels, {}-dim features expected)",
            ckpt.display(),
            a.index.display(),
            info.channels,
            info.dim
        );
    }
    check_identity(&a, &ckpt, info)?;
    let aug = &info.augment;
    for q in &a.query {
        let img = decode_file(q)?.to_channels(info.channels);
        let x = model_input(&img, aug);
        let f = embed_views(
            &encoder,
            &[&x],
            info.channels,
            aug.size,
            Output::Backbone,
            &device,
        )?;
        let hits = index.search(&f[0], a.k)?;
        print_hits(q, &index, &hits, a.json)?;
    }
    Ok(())
}
