//! "Train here": LeOCLR steps on the open dataset, one step a frame on the UI thread, for the
//! browser (no threads there). The loss is read back asynchronously on the web (WebGPU cannot
//! block), synchronously natively; the curve grows as values arrive.

use std::cell::RefCell;
use std::rc::Rc;

use burn::tensor::{Device, Tensor};
use eframe::egui;
use egui_plot::{Line, Plot, PlotPoints};
use leoclr_core::Backbone;
use leoclr_core::run::{DataSpec, ModelSpec, Plan, RunSpec, Sets, view_size};
use leoclr_core::session::{ReadLoss, Session};

use crate::error::{AppError, Result};
use crate::panel::{Action, Panel};
use crate::shared::Shared;

/// Losses arrive here, possibly after the frame that asked (web readback is a promise).
type Losses = Rc<RefCell<Vec<[f64; 2]>>>;

pub struct TrainHere {
    /// Where training runs (WebGPU in a browser that offers an adapter, else the CPU).
    pub device: Device,
    pub device_name: String,
    pub batch: usize,
    pub running: bool,
    session: Option<Session>,
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
            session: None,
            losses: Rc::default(),
            in_flight: Rc::default(),
            steps: 0,
            error: None,
        }
    }

    /// The run this panel trains: a fresh tiny LeOCLR model on the open dataset, with the queue
    /// and batch sized for a small gallery and views of at most 28 px (a browser step stays well
    /// under a second on the CPU backend). Every other setting is `leoclr train`'s default.
    pub fn spec(&self, size: usize) -> RunSpec {
        RunSpec {
            data: DataSpec {
                size: Some(size),
                ..DataSpec::default()
            },
            model: ModelSpec {
                backbone: Backbone::Tiny,
                small_stem: Some(false),
                ..ModelSpec::default()
            },
            batch: self.batch,
            queue: 256,
            epochs: 1000,
            ..RunSpec::default()
        }
    }

    fn setup(&mut self, shared: &Shared) -> Result<()> {
        let ds = shared
            .workspace
            .dataset()
            .cloned()
            .ok_or(AppError::NoDataset)?;
        let spec = self.spec(28.min(view_size(&ds, None)?));
        let plan = Plan::with_sets(spec, Sets::train_only(ds))?;
        let mut session = plan.session(&self.device)?;
        // Losses are read by this panel (asynchronously on the web), never by the session.
        session.read_loss = ReadLoss::Never;
        // Real negatives from the start, so the curve falls instead of first climbing while the
        // random initial queue is replaced.
        session.warm_queue(plan.config.queue_size.div_ceil(self.batch))?;
        self.session = Some(session);
        self.losses.borrow_mut().clear();
        self.steps = 0;
        Ok(())
    }

    /// One training step (called once a frame while running).
    pub fn step(&mut self) -> Result<()> {
        // Do not queue more GPU work than the readbacks keep up with.
        if *self.in_flight.borrow() > 1 {
            return Ok(());
        }
        let Some(session) = &mut self.session else {
            return Ok(());
        };
        let event = match session.step()? {
            Some(e) => e,
            None => {
                // The epoch is over: the next one starts with this step.
                session.end_epoch();
                let Some(e) = session.step()? else {
                    return Ok(());
                };
                e
            }
        };
        self.steps = event.step;
        if let Some(loss) = session.take_loss() {
            self.read_loss(event.step as f64, loss);
        }
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
}

impl Panel for TrainHere {
    fn ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) -> Option<Action> {
        egui::CentralPanel::default().show(ui, |ui| {
            ui.heading("Train here");
            ui.label(format!(
                "LeOCLR (tiny ResNet, batch {}) on the {} gallery images, in this window, on {}.",
                self.batch,
                shared.workspace.dataset().map_or(0, |d| d.len()),
                self.device_name
            ));
            ui.horizontal(|ui| {
                let label = if self.running { "Pause" } else { "Start" };
                let b = ui.button(label);
                shared.status.mark("button:train", b.rect);
                if b.clicked() {
                    if self.session.is_none()
                        && let Err(e) = self.setup(shared)
                    {
                        self.error = Some(e.to_string());
                    }
                    self.running = self.session.is_some() && !self.running;
                }
                if ui.button("Reset").clicked() {
                    self.running = false;
                    self.session = None;
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
                    self.error = Some(e.to_string());
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
        None
    }
}
