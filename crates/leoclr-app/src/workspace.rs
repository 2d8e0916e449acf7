//! What the panels work on: the compute device, the open dataset, the loaded model, and the
//! dataset's embeddings under that model (built on a worker thread).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use eframe::egui;
use leoclr_data::{Dataset, DatasetSpec, Split};

use crate::error::{AppError, Result};
use crate::gallery::Gallery;
use crate::jobs::Job;
use crate::model::LoadedModel;

/// A dataset and where it came from (what a training run started from the app reads).
pub struct OpenData {
    pub path: PathBuf,
    pub split: Split,
    pub dataset: Arc<Dataset>,
}

pub struct Workspace {
    /// Where inference and embedding run.
    pub device: Device,
    /// Which device renders and which computes, for the status line.
    pub device_note: String,
    pub data: Option<OpenData>,
    pub model: Option<LoadedModel>,
    /// Embeddings of `data` under `model`, once built.
    pub gallery: Option<Gallery>,
    pub gallery_job: Option<Job<Gallery>>,
    /// The (model, dataset) pair last embedded without being asked, so that a failure is not
    /// retried every frame.
    pub auto_embedded: Option<(u64, usize)>,
}

impl Workspace {
    pub fn new(device: Device, device_note: impl Into<String>) -> Self {
        Self {
            device,
            device_note: device_note.into(),
            data: None,
            model: None,
            gallery: None,
            gallery_job: None,
            auto_embedded: None,
        }
    }

    /// The current (model id, dataset identity), when both are loaded.
    pub fn pair(&self) -> Option<(u64, usize)> {
        let (m, ds) = (self.model.as_ref()?, self.dataset()?);
        Some((m.id, Arc::as_ptr(ds) as usize))
    }

    pub fn dataset(&self) -> Option<&Arc<Dataset>> {
        self.data.as_ref().map(|d| &d.dataset)
    }

    /// Opens a dataset (any supported format); on failure the old one stays. Returns a summary.
    pub fn open_dataset(&mut self, path: &Path, split: Split) -> Result<String> {
        let ds = Dataset::open(&DatasetSpec {
            path: path.to_path_buf(),
            format: None,
            split,
            limit: None,
        })?;
        if ds.is_empty() {
            return Err(AppError::EmptyDataset(path.display().to_string()));
        }
        let summary = format!(
            "opened {} ({} images, {} channel{})",
            path.display(),
            ds.len(),
            ds.channels,
            if ds.channels == 1 { "" } else { "s" }
        );
        self.set_dataset(path, split, Arc::new(ds));
        Ok(summary)
    }

    /// Shows a dataset that is already in memory (the browser's bundled gallery).
    pub fn set_dataset(&mut self, path: impl Into<PathBuf>, split: Split, ds: Arc<Dataset>) {
        self.data = Some(OpenData {
            path: path.into(),
            split,
            dataset: ds,
        });
        self.gallery = None;
        self.gallery_job = None;
    }

    /// Opens an index written by `leoclr embed`: its model, its dataset (the images it holds, in
    /// its order) and its features as the gallery, without embedding anything again. On failure
    /// the old state stays.
    pub fn open_index(&mut self, dir: &Path) -> Result<String> {
        #[cfg_attr(target_arch = "wasm32", allow(unused_mut))]
        let mut index = leoclr_core::index::EmbedIndex::open(dir)?;
        let info = &index.info;
        let mut m = LoadedModel::load(&info.checkpoint, &self.device)?;
        // Features of epoch 3 searched with the model of epoch 5 rank nonsense: refuse, naming both.
        let recorded = info.check_model(dir, &info.checkpoint)?;
        m.aug = info.augment.clone();
        let split: Split = info.split.parse()?;
        let ds = Dataset::open(&DatasetSpec {
            path: info.data.clone(),
            format: None,
            split,
            limit: None,
        })?;
        let ds = match ds.channels == info.channels {
            true => ds,
            false => ds.with_channels(info.channels)?,
        };
        let ids: Vec<usize> = index.rows.iter().map(|r| r.index).collect();
        if let Some(i) = ids.iter().find(|&&i| i >= ds.len()) {
            return Err(AppError::IndexData {
                index: dir.display().to_string(),
                row: *i,
                images: ds.len(),
            });
        }
        let ds = Arc::new(ds.subset(&ids));
        let gallery = Gallery::from_parts(m.id, ds.clone(), info.dim, index.features.clone())?;
        // The index's HNSW graph, when it saved one (native: the browser has no index files).
        #[cfg(not(target_arch = "wasm32"))]
        let gallery = gallery.with_searcher(std::mem::replace(
            &mut index.searcher,
            leoclr_core::ann::Searcher::Exact,
        ));
        let mut summary = format!(
            "opened index {} ({} images of {}, {})",
            dir.display(),
            ds.len(),
            info.data.display(),
            m.describe()
        );
        if recorded == leoclr_core::index::ModelMatch::Unrecorded {
            summary.push_str("; it does not record which state of its checkpoint made it");
        }
        self.set_dataset(info.data.clone(), split, ds);
        self.set_model(m);
        self.gallery = Some(gallery);
        Ok(summary)
    }

    /// Loads a checkpoint (file or run directory); on failure the old model stays.
    pub fn load_model(&mut self, path: &Path) -> Result<String> {
        let m = LoadedModel::load(path, &self.device)?;
        let summary = format!("loaded {} ({})", path.display(), m.describe());
        self.set_model(m);
        Ok(summary)
    }

    pub fn set_model(&mut self, m: LoadedModel) {
        self.model = Some(m);
        self.gallery = None;
        self.gallery_job = None;
    }

    /// Why the model cannot embed the dataset, if it cannot.
    pub fn mismatch(&self) -> Option<AppError> {
        let (ds, m) = (self.dataset()?, self.model.as_ref()?);
        (ds.channels != m.channels()).then(|| AppError::Channels {
            model: m.channels(),
            data: ds.channels,
        })
    }

    /// The gallery of the current model and dataset, if it is built.
    pub fn current_gallery(&mut self) -> Option<&mut Gallery> {
        let (m, ds) = (self.model.as_ref()?, self.data.as_ref()?);
        let ok = self.gallery.as_ref()?.is_for(m.id, &ds.dataset);
        if ok { self.gallery.as_mut() } else { None }
    }

    /// Starts embedding the dataset with the model on a worker thread.
    pub fn start_gallery(&mut self, ctx: &egui::Context) -> Result<()> {
        let (Some(m), Some(ds)) = (&self.model, self.dataset()) else {
            return Ok(());
        };
        if let Some(why) = self.mismatch() {
            return Err(why);
        }
        let (id, enc, ds, aug, dev) = (
            m.id,
            m.encoder.clone(),
            ds.clone(),
            m.aug.clone(),
            self.device.clone(),
        );
        self.gallery_job = Some(Job::spawn("embedding", ctx, move |p| {
            Gallery::build(id, &enc, ds, &aug, &dev, p)
        }));
        Ok(())
    }

    /// Takes the embedding job's result when it is done: `Some(Ok(images embedded))`.
    pub fn poll_gallery(&mut self) -> Option<Result<usize>> {
        let res = self.gallery_job.as_mut()?.poll()?;
        self.gallery_job = None;
        Some(res.map(|g| {
            let n = g.len();
            self.gallery = Some(g);
            n
        }))
    }
}
