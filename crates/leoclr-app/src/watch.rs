//! Learning you can watch: while "Train here" runs, a snapshot of the encoder being trained is
//! read back to the CPU, re-embeds the gallery a slice a frame, is scored by leave-one-out kNN on
//! the gallery's labels, and then becomes the workspace's model and gallery, so Views, Retrieval
//! and the Map show the model as it trains. The map keeps its orientation from one snapshot to
//! the next (its points move instead of flipping). Everything runs between frames on the UI
//! thread: the browser has no other.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Device, TensorData};
use leoclr_core::checkpoint::Meta;
use leoclr_core::encoder::Encoder;
use leoclr_core::eval::Output;
use leoclr_core::infer::{embed_views, knn_leave_one_out, model_input, normalize_rows};
use leoclr_core::{Trainer, ema};
use leoclr_data::Dataset;

use crate::error::{AppError, Result};
use crate::gallery::Gallery;
use crate::model::LoadedModel;
use crate::shared::Shared;

/// kNN as the evaluation votes (k = 200 at most, T = 0.1), on the gallery's own labels.
const KNN_K: usize = 200;
const KNN_T: f32 = 0.1;

/// A snapshot's values, once read back: (step, metadata, every float of the encoder).
type Arrived = Rc<RefCell<Option<(usize, Meta, Vec<TensorData>)>>>;

enum Stage {
    Idle,
    Embedding {
        step: usize,
        model: LoadedModel,
        next: usize,
        features: Vec<f32>,
        dim: usize,
    },
    Scoring {
        step: usize,
        model: LoadedModel,
        gallery: Gallery,
        next: usize,
        counted: usize,
        correct: usize,
    },
}

/// What the model was before training replaced it, for Reset.
struct Before {
    model: Option<LoadedModel>,
    gallery: Option<Gallery>,
}

pub struct Watch {
    /// Steps between snapshots.
    pub every: usize,
    /// Gallery images embedded a frame.
    pub embed_slice: usize,
    /// Gallery rows scored a frame.
    pub score_slice: usize,
    /// (step, kNN accuracy in percent) of every finished snapshot.
    pub knn: Vec<[f64; 2]>,
    /// How far the map's points moved at the last snapshot: mean distance over the map's spread.
    pub moved: Option<f32>,
    /// The sum of every snapshot's `moved` since the start (what the browser test reads).
    pub moved_total: f32,
    stage: Stage,
    arrived: Arrived,
    reading: Rc<RefCell<bool>>,
    before: Option<Before>,
    cpu: Device,
}

impl Default for Watch {
    fn default() -> Self {
        Self {
            every: 10,
            embed_slice: 100,
            score_slice: 200,
            knn: Vec::new(),
            moved: None,
            moved_total: 0.0,
            stage: Stage::Idle,
            arrived: Rc::default(),
            reading: Rc::default(),
            before: None,
            cpu: Device::flex(),
        }
    }
}

impl Watch {
    /// Whether a snapshot is being read back, embedded or scored.
    pub fn busy(&self) -> bool {
        *self.reading.borrow()
            || self.arrived.borrow().is_some()
            || !matches!(self.stage, Stage::Idle)
    }

    /// Takes a snapshot of `trainer`'s query encoder at `step` unless one is still in progress:
    /// its values are read back (synchronously natively, asynchronously on the web).
    pub fn snapshot(&mut self, trainer: &Trainer, meta: Meta) {
        if self.busy() {
            return;
        }
        let values = ema::values(&trainer.online().valid());
        let step = trainer.step_count();
        #[cfg(not(target_arch = "wasm32"))]
        {
            let data = values.into_iter().map(|t| t.into_data()).collect();
            *self.arrived.borrow_mut() = Some((step, meta, data));
        }
        #[cfg(target_arch = "wasm32")]
        {
            let (arrived, reading) = (self.arrived.clone(), self.reading.clone());
            *reading.borrow_mut() = true;
            wasm_bindgen_futures::spawn_local(async move {
                let mut data = Vec::with_capacity(values.len());
                for t in values {
                    match t.into_data_async().await {
                        Ok(d) => data.push(d),
                        Err(_) => {
                            *reading.borrow_mut() = false;
                            return;
                        }
                    }
                }
                *arrived.borrow_mut() = Some((step, meta, data));
                *reading.borrow_mut() = false;
            });
        }
    }

    /// One frame's share of the work: build the arrived snapshot, embed a slice of the gallery,
    /// or score a slice; the finished snapshot replaces the workspace's model and gallery.
    pub fn frame(&mut self, shared: &mut Shared) -> Result<()> {
        if let Some((step, meta, data)) = self.arrived.borrow_mut().take() {
            let enc = ema::with_values(Encoder::new(&meta.config.model, &self.cpu), data)?;
            let name = format!("Train here, step {step}");
            let model = LoadedModel::snapshot(Path::new(&name), enc, meta)?;
            self.stage = Stage::Embedding {
                step,
                model,
                next: 0,
                features: Vec::new(),
                dim: 0,
            };
        }
        let Some(ds) = shared.workspace.dataset().cloned() else {
            self.stage = Stage::Idle;
            return Err(AppError::NoDataset);
        };
        self.stage = match std::mem::replace(&mut self.stage, Stage::Idle) {
            Stage::Idle => Stage::Idle,
            Stage::Embedding {
                step,
                model,
                next,
                features,
                dim,
            } => self.embed(&ds, step, model, next, features, dim)?,
            Stage::Scoring {
                step,
                model,
                gallery,
                next,
                counted,
                correct,
            } => {
                let end = (next + self.score_slice).min(gallery.len());
                let k = KNN_K.min(gallery.len().saturating_sub(1)).max(1);
                let (n, ok) = knn_leave_one_out(
                    &gallery.features,
                    gallery.dim,
                    &gallery.labels,
                    k,
                    KNN_T,
                    next..end,
                );
                let (counted, correct) = (counted + n, correct + ok);
                if end < gallery.len() {
                    Stage::Scoring {
                        step,
                        model,
                        gallery,
                        next: end,
                        counted,
                        correct,
                    }
                } else {
                    if counted > 0 {
                        self.knn
                            .push([step as f64, 100.0 * correct as f64 / counted as f64]);
                    }
                    self.install(shared, model, gallery);
                    Stage::Idle
                }
            }
        };
        Ok(())
    }

    /// Embeds the next slice of the gallery; the last one moves on to scoring.
    fn embed(
        &self,
        ds: &Arc<Dataset>,
        step: usize,
        model: LoadedModel,
        next: usize,
        mut features: Vec<f32>,
        mut dim: usize,
    ) -> Result<Stage> {
        let end = (next + self.embed_slice).min(ds.len());
        let inputs: Vec<Vec<f32>> = (next..end)
            .map(|i| ds.get(i).map(|img| model_input(&img, &model.aug)))
            .collect::<std::result::Result<_, _>>()?;
        let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
        let rows = embed_views(
            &model.encoder,
            &refs,
            model.channels(),
            model.aug.size,
            Output::Backbone,
            &self.cpu,
        )?;
        for r in rows {
            dim = r.len();
            features.extend(r);
        }
        if end < ds.len() {
            return Ok(Stage::Embedding {
                step,
                model,
                next: end,
                features,
                dim,
            });
        }
        normalize_rows(&mut features, dim);
        let gallery = Gallery::from_parts(model.id, ds.clone(), dim, features)?;
        Ok(Stage::Scoring {
            step,
            model,
            gallery,
            next: 0,
            counted: 0,
            correct: 0,
        })
    }

    /// The snapshot becomes the workspace's model and gallery; its map turned to match the one
    /// on screen. The first replaced model is kept for [`Watch::restore`].
    fn install(&mut self, shared: &mut Shared, model: LoadedModel, mut gallery: Gallery) {
        let ws = &mut shared.workspace;
        if let Some(old) = ws.gallery.as_mut().filter(|g| same_rows(g, &gallery)) {
            let previous = old.map().to_vec();
            self.moved = gallery.align_map_to(&previous);
            self.moved_total += self.moved.unwrap_or(0.0);
        }
        let old_model = ws.model.replace(model);
        let old_gallery = ws.gallery.replace(gallery);
        ws.gallery_job = None;
        ws.auto_embedded = ws.pair();
        self.before.get_or_insert(Before {
            model: old_model,
            gallery: old_gallery,
        });
    }

    /// Puts back the model and gallery training replaced (Reset), and forgets the snapshots.
    pub fn restore(&mut self, shared: &mut Shared) {
        self.stage = Stage::Idle;
        // New cells: a snapshot still being read back lands in the old ones and is dropped.
        self.arrived = Rc::default();
        self.reading = Rc::default();
        self.knn.clear();
        self.moved = None;
        self.moved_total = 0.0;
        if let Some(b) = self.before.take() {
            let ws = &mut shared.workspace;
            ws.model = b.model;
            ws.gallery = b.gallery;
            ws.gallery_job = None;
            ws.auto_embedded = ws.pair();
        }
    }
}

/// Whether two galleries are of the same dataset (their rows are the same images).
fn same_rows(a: &Gallery, b: &Gallery) -> bool {
    Arc::ptr_eq(&a.dataset, &b.dataset)
}
