//! "Train here": LeOCLR steps on the open dataset, one step a frame on the UI thread, for the
//! browser (no threads there). The loss is read back asynchronously on the web (WebGPU cannot
//! block), synchronously natively; the curve grows as values arrive.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use burn::tensor::{Device, Tensor};
use eframe::egui;
use egui_plot::{Line, Plot, PlotPoints};
use leoclr_core::run::augment;
use leoclr_core::{Backbone, Method, ModelConfig, OriginalBranch, TrainConfig, Trainer};
use leoclr_data::{AugmentConfig, Dataset, Loader, LoaderConfig};

use crate::app::Shared;

/// Losses arrive here, possibly after the frame that asked (web readback is a promise).
type Losses = Rc<RefCell<Vec<[f64; 2]>>>;

pub struct TrainHere {
    /// Where training runs (WebGPU in a browser that offers an adapter, else the CPU).
    pub device: Device,
    pub device_name: String,
    pub batch: usize,
    pub running: bool,
    trainer: Option<(Trainer, Arc<Dataset>, AugmentConfig, LoaderConfig)>,
    pub losses: Losses,
    in_flight: Rc<RefCell<usize>>,
    pub steps: usize,
    pub error: Option<String>,
}

impl Default for TrainHere {
    fn default() -> Self {
        Self::new(Device::flex(), "the CPU")
    }
}

impl TrainHere {
    pub fn new(device: Device, device_name: impl Into<String>) -> Self {
        Self {
            device,
            device_name: device_name.into(),
            batch: 32,
            running: false,
            trainer: None,
            losses: Rc::default(),
            in_flight: Rc::default(),
            steps: 0,
            error: None,
        }
    }

    /// A fresh tiny LeOCLR model on the open dataset (queue and batch sized for a small gallery).
    fn setup(&mut self, shared: &Shared) -> Result<(), String> {
        let ds = shared.dataset.clone().ok_or("open a dataset first")?;
        // At most 28 px: a browser step stays well under a second on the CPU backend.
        let size = 28.min(leoclr_core::run::view_size(&ds, None).map_err(|e| e.to_string())?);
        let aug = augment(ds.channels, size, None).map_err(|e| e.to_string())?;
        let model = ModelConfig::new(Backbone::Tiny, ds.channels, false);
        let loader = LoaderConfig::train(self.batch, 0);
        let steps = Loader::num_batches(ds.len(), &loader);
        let cfg = TrainConfig {
            method: Method::Leoclr {
                original_branch: OriginalBranch::Key,
            },
            batch_size: self.batch,
            queue_size: 256,
            epochs: 1000,
            ..TrainConfig::small(model)
        };
        let mut t = Trainer::new(cfg, &self.device, steps.max(1)).map_err(|e| e.to_string())?;
        // Real negatives from the start, so the curve falls instead of first climbing while the
        // random initial queue is replaced.
        let warm = t.config.queue_size.div_ceil(self.batch).min(steps.max(1));
        for i in 0..warm {
            let b = Loader::batch(&ds, &aug, &loader, usize::MAX, i).map_err(|e| e.to_string())?;
            t.warm_queue(&b);
        }
        self.trainer = Some((t, ds, aug, loader));
        self.losses.borrow_mut().clear();
        self.steps = 0;
        Ok(())
    }

    /// One training step (called once a frame while running).
    pub fn step(&mut self) -> Result<(), String> {
        // Do not queue more GPU work than the readbacks keep up with.
        if *self.in_flight.borrow() > 1 {
            return Ok(());
        }
        let Some((t, ds, aug, loader)) = &mut self.trainer else {
            return Ok(());
        };
        let per_epoch = t.steps_per_epoch;
        let (epoch, index) = (t.step / per_epoch, t.step % per_epoch);
        let batch = Loader::batch(ds, aug, loader, epoch, index).map_err(|e| e.to_string())?;
        let loss = t.step(&batch).map_err(|e| e.to_string())?;
        if index + 1 == per_epoch {
            t.epoch += 1;
        }
        let step = t.step;
        self.steps = step;
        self.read_loss(step as f64, loss);
        Ok(())
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn read_loss(&self, x: f64, loss: Tensor<1>) {
        let v = loss.into_scalar::<f32>();
        self.losses.borrow_mut().push([x, v as f64]);
    }

    #[cfg(target_arch = "wasm32")]
    fn read_loss(&self, x: f64, loss: Tensor<1>) {
        let (losses, in_flight) = (self.losses.clone(), self.in_flight.clone());
        *in_flight.borrow_mut() += 1;
        wasm_bindgen_futures::spawn_local(async move {
            if let Ok(d) = loss.into_data_async().await
                && let Ok(v) = d.convert::<f32>().try_into_vec::<f32>()
                && let Some(v) = v.first()
            {
                losses.borrow_mut().push([x, *v as f64]);
            }
            *in_flight.borrow_mut() -= 1;
        });
    }

    pub fn poll(&mut self, _shared: &mut Shared) {}

    pub fn ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        egui::CentralPanel::default().show(ui, |ui| {
            ui.heading("Train here");
            ui.label(format!(
                "LeOCLR (tiny ResNet, batch {}) on the {} gallery images, in this window, on {}.",
                self.batch,
                shared.dataset.as_ref().map_or(0, |d| d.len()),
                self.device_name
            ));
            ui.horizontal(|ui| {
                let label = if self.running { "Pause" } else { "Start" };
                let b = ui.button(label);
                shared.mark("button:train", b.rect);
                if b.clicked() {
                    if self.trainer.is_none()
                        && let Err(e) = self.setup(shared)
                    {
                        self.error = Some(e);
                    }
                    self.running = self.trainer.is_some() && !self.running;
                }
                if ui.button("Reset").clicked() {
                    self.running = false;
                    self.trainer = None;
                    self.losses.borrow_mut().clear();
                    self.steps = 0;
                }
                ui.label(format!("{} steps", self.steps));
                if let Some(l) = self.losses.borrow().last() {
                    ui.label(format!("loss {:.4}", l[1]));
                }
            });
            if let Some(e) = &self.error {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            if self.running {
                if let Err(e) = self.step() {
                    self.error = Some(e);
                    self.running = false;
                }
                ui.ctx().request_repaint();
            }
            let pts = self.losses.borrow().clone();
            Plot::new("train-here-loss")
                .height(ui.available_height().max(160.0))
                .x_axis_label("step")
                .y_axis_label("loss")
                .show(ui, |p| {
                    if !pts.is_empty() {
                        p.line(Line::new("loss", PlotPoints::from(pts)));
                    }
                });
        });
    }
}
