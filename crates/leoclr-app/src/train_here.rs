//! "Train here": LeOCLR steps on the open dataset, one step a frame on the UI thread, for the
//! browser (no threads there). The loss is read back asynchronously on the web (WebGPU cannot
//! block), synchronously natively; the curve grows as values arrive. It continues from the open
//! model (the browser's bundled one) or, "from scratch", from random weights; every few steps a
//! snapshot re-embeds the gallery ([`Watch`]): kNN beside the loss, and the Map moves.

use std::cell::RefCell;
use std::rc::Rc;

use burn::tensor::{Device, Tensor};
use eframe::egui;
use egui_plot::{Line, Plot, PlotPoints};
use leoclr_core::checkpoint;
use leoclr_core::run::{Plan, RunMeta, RunSpec, Sets, view_size};
use leoclr_core::session::{ReadLoss, Session};

use crate::error::{AppError, Result};
use crate::panel::{Action, Panel};
use crate::shared::Shared;
use crate::watch::Watch;

/// Losses arrive here, possibly after the frame that asked (web readback is a promise).
type Losses = Rc<RefCell<Vec<[f64; 2]>>>;

pub struct TrainHere {
    /// Where training runs (WebGPU in a browser that offers an adapter, else the CPU).
    pub device: Device,
    pub device_name: String,
    pub batch: usize,
    pub running: bool,
    /// Start from random weights instead of the open model.
    pub from_scratch: bool,
    /// What the current run started from, for the panel.
    pub started_from: String,
    session: Option<Session>,
    run: RunMeta,
    pub losses: Losses,
    in_flight: Rc<RefCell<usize>>,
    pub steps: usize,
    pub error: Option<String>,
    /// Gallery snapshots while training: kNN, the moving map.
    pub watch: Watch,
    last_snapshot: usize,
    /// A button offering a faster device elsewhere (the browser's WebGPU training module), and
    /// whether it was pressed: the page acts on it.
    pub offer: Option<String>,
    pub upgrade_requested: bool,
    /// To keep frames coming while training runs on another tab.
    ctx: Option<egui::Context>,
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
            from_scratch: false,
            started_from: String::new(),
            session: None,
            run: RunMeta::default(),
            losses: Rc::default(),
            in_flight: Rc::default(),
            steps: 0,
            error: None,
            watch: Watch::default(),
            last_snapshot: 0,
            offer: None,
            upgrade_requested: false,
            ctx: None,
        }
    }

    /// The run this panel trains: a tiny LeOCLR model on the open dataset, with the queue and
    /// batch sized for a small gallery and views of at most 28 px (a browser step stays well
    /// under a second on the CPU backend). Every other setting is `leoclr train`'s default.
    pub fn spec(&self, size: usize) -> RunSpec {
        RunSpec::train_here(self.batch, size)
    }

    fn setup(&mut self, shared: &mut Shared) -> Result<()> {
        let ds = shared
            .workspace
            .dataset()
            .cloned()
            .ok_or(AppError::NoDataset)?;
        let spec = self.spec(28.min(view_size(&ds, None)?));
        let plan = Plan::with_sets(spec, Sets::train_only(ds))?;
        let mut session = plan.session(&self.device)?;
        self.started_from = "random weights".into();
        if !self.from_scratch
            && let Some(m) = &shared.workspace.model
        {
            // A model of another shape (or channels) cannot be continued: say so, train anew.
            match checkpoint::start_from(&mut session.trainer, &m.encoder, &m.meta.config.model) {
                Ok(()) => self.started_from = format!("the open model ({})", m.describe()),
                Err(e) => shared
                    .status
                    .info(format!("Train here starts from random weights: {e}")),
            }
        }
        // Losses are read by this panel (asynchronously on the web), never by the session.
        session.read_loss = ReadLoss::Never;
        // Real negatives from the start, so the curve falls instead of first climbing while the
        // random initial queue is replaced.
        session.warm_queue(plan.config.queue_size.div_ceil(self.batch))?;
        self.run = plan.meta(None);
        // The starting point's kNN and map, before any step.
        self.watch.snapshot(
            &session.trainer,
            checkpoint::meta_of(&session.trainer, &self.run),
        );
        self.last_snapshot = 0;
        self.session = Some(session);
        self.losses.borrow_mut().clear();
        self.steps = 0;
        Ok(())
    }

    /// Starts (or resumes) training; the first start sets the run up.
    pub fn start(&mut self, shared: &mut Shared) {
        if self.session.is_none()
            && let Err(e) = self.setup(shared)
        {
            self.error = Some(e.to_string());
        }
        self.running = self.session.is_some();
    }

    /// Stops, forgets the run and puts back the model it started from.
    pub fn reset(&mut self, shared: &mut Shared) {
        self.running = false;
        self.session = None;
        // New cells: a read-back still in flight lands in the old ones, not on the new curve.
        self.losses = Rc::default();
        self.in_flight = Rc::default();
        self.steps = 0;
        self.error = None;
        self.watch.restore(shared);
    }

    /// A frame's work, whichever tab is shown: a step while running, a snapshot every
    /// `watch.every` steps, and the snapshot's share of embedding and scoring.
    pub fn tick(&mut self, shared: &mut Shared) {
        if self.running {
            if let Err(e) = self.step() {
                self.error = Some(e.to_string());
                self.running = false;
            }
            if let Some(s) = &self.session
                && self.steps >= self.last_snapshot + self.watch.every
                && !self.watch.busy()
            {
                self.watch
                    .snapshot(&s.trainer, checkpoint::meta_of(&s.trainer, &self.run));
                self.last_snapshot = self.steps;
            }
        }
        if self.watch.busy()
            && let Err(e) = self.watch.frame(shared)
        {
            self.error = Some(format!("gallery snapshot: {e}"));
        }
        if (self.running || self.watch.busy())
            && let Some(ctx) = &self.ctx
        {
            ctx.request_repaint();
        }
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

impl TrainHere {
    fn controls(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        ui.horizontal_wrapped(|ui| {
            let label = if self.running { "Pause" } else { "Start" };
            let b = ui.button(label);
            shared.status.mark("button:train", b.rect);
            if b.clicked() {
                if self.running {
                    self.running = false;
                } else {
                    self.start(shared);
                }
            }
            let r = ui.button("Reset");
            shared.status.mark("button:reset", r.rect);
            if r.clicked() {
                self.reset(shared);
            }
            let c = ui.add_enabled(
                self.session.is_none(),
                egui::Checkbox::new(&mut self.from_scratch, "from scratch"),
            );
            shared.status.mark("check:scratch", c.rect);
            ui.label(format!("{} steps", self.steps));
            if let Some(l) = self.losses.borrow().last() {
                ui.label(format!("loss {:.4}", l[1]));
            }
            if let Some(k) = self.watch.knn.last() {
                ui.label(format!("gallery kNN {:.1}% (step {})", k[1], k[0]));
            }
            if let Some(offer) = &self.offer {
                let o = ui.button(offer);
                shared.status.mark("button:webgpu", o.rect);
                if o.clicked() {
                    self.running = false;
                    self.upgrade_requested = true;
                }
            }
        });
    }
}

impl Panel for TrainHere {
    fn publish(&self) -> Option<(&'static str, serde_json::Value)> {
        let losses = self.losses.borrow();
        Some((
            "train",
            serde_json::json!({
                "steps": self.steps, "losses": losses.len(), "last_loss": losses.last().map(|l| l[1]),
                "error": self.error, "running": self.running, "from_scratch": self.from_scratch,
                "knn": self.watch.knn, "map_moved": self.watch.moved_total,
                "offer": self.offer.is_some(), "device": self.device_name,
            }),
        ))
    }

    fn poll(&mut self, shared: &mut Shared) {
        self.tick(shared);
    }

    fn ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) -> Option<Action> {
        self.ctx = Some(ui.ctx().clone());
        egui::CentralPanel::default().show(ui, |ui| {
            ui.heading("Train here");
            ui.label(format!(
                "LeOCLR (tiny ResNet, batch {}) on the {} gallery images, in this window, on {}, \
                 from {}. Every {} steps the gallery is embedded again: kNN on its labels \
                 (right) and the Map follow the training.",
                self.batch,
                shared.workspace.dataset().map_or(0, |d| d.len()),
                self.device_name,
                match (self.session.is_some(), self.from_scratch) {
                    (true, _) => self.started_from.as_str(),
                    (false, true) => "random weights",
                    (false, false) => "the open model",
                },
                self.watch.every
            ));
            self.controls(ui, shared);
            if let Some(e) = &self.error {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            let pts = self.losses.borrow().clone();
            let knn = self.watch.knn.clone();
            let h = ui.available_height().max(160.0);
            let w = (ui.available_width() - 12.0).max(200.0) / 2.0;
            ui.horizontal_wrapped(|ui| {
                curve(ui, "loss", "loss", pts, [w, h]);
                curve(ui, "kNN", "gallery kNN (%)", knn, [w, h]);
            });
        });
        None
    }
}

/// One curve by step, `size` (width, height) in points.
fn curve(ui: &mut egui::Ui, name: &str, y_label: &str, pts: Vec<[f64; 2]>, size: [f32; 2]) {
    Plot::new(format!("train-here-{name}"))
        .width(size[0])
        .height(size[1])
        .x_axis_label("step")
        .y_axis_label(y_label)
        .show(ui, |p| {
            if !pts.is_empty() {
                p.line(Line::new(name.to_string(), PlotPoints::from(pts)));
            }
        });
}
