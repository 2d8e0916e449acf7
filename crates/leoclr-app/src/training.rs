//! Training panel: the settings of `leoclr train`, start / pause / stop, live curves, and opening
//! (and resuming) a run directory. The run lives on a worker thread and streams [`RunEvent`]s.

use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::{Receiver, unbounded};
use eframe::egui;
use egui_plot::{Line, Plot, PlotPoints, Points};
use leoclr_core::augment_device::AugmentOn;
use leoclr_core::method::{RECIPES, Recipe, default_recipe};
use leoclr_core::run::{
    Control, EpochRecord, Existing, MethodRef, ModelSpec, Outcome, Run, RunEvent, RunSpec,
    read_metrics,
};
use leoclr_core::{Backbone, BackendKind};
use leoclr_data::OriginalAug;

use crate::error::AppError;
use crate::panel::{Action, Panel};
use crate::shared::Shared;
use crate::widgets::choice;

pub enum Start {
    New(Box<RunSpec>, Existing),
    Resume(PathBuf),
}

pub struct TrainJob {
    pub control: Arc<Control>,
    rx: Receiver<RunEvent>,
    pub dir: PathBuf,
}

impl TrainJob {
    pub fn spawn(start: Start, ctx: &egui::Context) -> Self {
        let (tx, rx) = unbounded();
        let control = Arc::new(Control::default());
        let dir = match &start {
            Start::New(s, _) => s.out.clone(),
            Start::Resume(d) => d.clone(),
        };
        let (c, ctx) = (control.clone(), ctx.clone());
        std::thread::Builder::new()
            .name("leoclr-app-train".into())
            .spawn(move || {
                let send = |m| {
                    let _ = tx.send(m);
                    ctx.request_repaint();
                };
                // The run's own events, then (for a run that could not start, or panicked)
                // a failure: the panel consumes one stream.
                let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let mut run = match start {
                        Start::New(spec, existing) => {
                            let mut run = Run::create(*spec, None)?;
                            run.existing = existing;
                            run
                        }
                        Start::Resume(dir) => Run::resume(&dir)?,
                    };
                    run.train(&c, None, &mut |e| send(e))?;
                    Ok::<(), leoclr_core::Error>(())
                }));
                match res {
                    Ok(Ok(())) => {}
                    // `train` reported its own failure; one that came before it did not.
                    Ok(Err(e)) => send(RunEvent::Failed(AppError::from(e).to_string())),
                    Err(_) => send(RunEvent::Failed(AppError::Panic("training").to_string())),
                }
            })
            .expect("spawn training thread");
        Self { control, rx, dir }
    }
}

/// Selects a recipe in the form's settings (the original view's augmentation stays as the form
/// has it: "the method's" unless chosen).
pub fn apply_recipe(recipe: &'static Recipe, model: &mut ModelSpec) {
    model.method = MethodRef(recipe);
    model.original_branch = None;
}

/// Curves of the run shown: per-step points and per-epoch records.
#[derive(Default)]
pub struct Curves {
    pub loss: Vec<[f64; 2]>,
    pub lr: Vec<[f64; 2]>,
    pub images_per_s: Vec<[f64; 2]>,
    pub epochs: Vec<EpochRecord>,
    pub steps_per_epoch: usize,
}

impl Curves {
    fn epoch_x(&self, r: &EpochRecord) -> f64 {
        if r.step > 0 {
            r.step as f64
        } else {
            (r.epoch * self.steps_per_epoch.max(1)) as f64
        }
    }
}

pub struct TrainingState {
    pub spec: RunSpec,
    /// The method chosen in the form (one of the registry's recipes).
    pub method: &'static Recipe,
    /// Replace a run already in the run directory (otherwise Start refuses it).
    pub overwrite: bool,
    /// 0: the whole dataset.
    pub limit: usize,
    pub job: Option<TrainJob>,
    pub paused: bool,
    pub status: String,
    pub curves: Curves,
    pub open_path: String,
    /// A run directory opened for viewing (and resuming).
    pub opened: Option<PathBuf>,
    /// Checkpoint of the last finished or stopped run, offered for loading.
    pub last_dir: Option<PathBuf>,
    total_epochs: usize,
}

impl Default for TrainingState {
    fn default() -> Self {
        let spec = RunSpec::interactive();
        Self {
            spec,
            method: default_recipe(),
            overwrite: false,
            limit: 0,
            job: None,
            paused: false,
            status: "idle".into(),
            curves: Curves::default(),
            open_path: "runs/demo".into(),
            opened: None,
            last_dir: None,
            total_epochs: 0,
        }
    }
}

impl TrainingState {
    pub fn is_running(&self) -> bool {
        self.job.is_some()
    }

    /// Starts a new run with the form's settings on the dataset the app has open.
    pub fn start(&mut self, shared: &mut Shared, ctx: &egui::Context) {
        let Some(data) = &shared.workspace.data else {
            shared.status.error(AppError::NoDataset.to_string());
            return;
        };
        let mut spec = self.spec.clone();
        spec.data.data = data.path.clone();
        spec.data.split = data.split;
        spec.data.limit = (self.limit > 0).then_some(self.limit);
        apply_recipe(self.method, &mut spec.model);
        self.curves = Curves::default();
        self.paused = false;
        self.status = "starting…".into();
        let existing = if self.overwrite {
            Existing::Replace
        } else {
            Existing::Refuse
        };
        self.job = Some(TrainJob::spawn(Start::New(Box::new(spec), existing), ctx));
    }

    pub fn resume(&mut self, dir: PathBuf, ctx: &egui::Context) {
        self.curves = Curves::default();
        self.paused = false;
        self.status = format!("resuming {}…", dir.display());
        self.job = Some(TrainJob::spawn(Start::Resume(dir), ctx));
    }

    /// Opens a run directory written by `leoclr train` (or this app) and shows its curves. Reads only.
    pub fn open_run(&mut self, dir: PathBuf, shared: &mut Shared) {
        match read_metrics(&dir) {
            Ok(records) => {
                let ckpt = dir.join(leoclr_core::checkpoint::FILE_NAME);
                if records.is_empty() && !ckpt.exists() {
                    shared.status.error(format!(
                        "{}: not a run directory (no metrics.jsonl or checkpoint)",
                        dir.display()
                    ));
                    return;
                }
                self.curves = Curves::default();
                self.status = format!("{}: {} epochs logged", dir.display(), records.len());
                self.curves.steps_per_epoch =
                    records.first().map_or(0, |r| r.step / r.epoch.max(1));
                self.curves.epochs = records;
                shared.status.info(format!("opened run {}", dir.display()));
                self.opened = Some(dir);
            }
            Err(e) => shared.status.error(e.to_string()),
        }
    }

    /// Consumes the worker's messages (called every frame, whatever tab is shown).
    fn poll_job(&mut self, shared: &mut Shared) {
        let Some(job) = &self.job else { return };
        let mut finished = false;
        while let Ok(m) = job.rx.try_recv() {
            match m {
                RunEvent::Started(info) => {
                    self.status =
                        format!("running: {}, from epoch {}", info.summary, info.epoch + 1);
                    self.total_epochs = info.epochs;
                    self.curves.steps_per_epoch = info.steps_per_epoch;
                    self.curves.epochs = info.history;
                }
                RunEvent::Step(e) => {
                    let x = e.step as f64;
                    if let Some(l) = e.loss {
                        self.curves.loss.push([x, l as f64]);
                    }
                    self.curves.lr.push([x, e.lr]);
                    self.curves.images_per_s.push([x, e.images_per_s]);
                    self.status = format!(
                        "{}epoch {}/{}, step {}/{}{}",
                        if self.paused { "paused: " } else { "running: " },
                        e.step.saturating_sub(1) / e.steps_per_epoch.max(1) + 1,
                        self.total_epochs,
                        e.step_in_epoch,
                        e.steps_per_epoch,
                        self.curves
                            .loss
                            .last()
                            .map(|l| format!(", loss {:.4}", l[1]))
                            .unwrap_or_default()
                    );
                }
                RunEvent::Evaluating(what, d, n) => {
                    self.status = format!("kNN evaluation: embedding {what} {d}/{n}");
                }
                RunEvent::Epoch(r) => {
                    self.status = format!(
                        "epoch {}/{} done: loss {:.4}{}; checkpoint saved",
                        r.epoch,
                        self.total_epochs,
                        r.loss,
                        r.knn_top1
                            .map(|k| format!(", kNN top-1 {:.2}%", 100.0 * k))
                            .unwrap_or_default()
                    );
                    self.curves.epochs.push(r);
                }
                RunEvent::Done(o) => {
                    self.status = match o {
                        Outcome::Finished => {
                            format!("finished; run directory {}", job.dir.display())
                        }
                        Outcome::Stopped { steps } => {
                            leoclr_core::run::stopped_note(steps, &job.dir)
                        }
                    };
                    finished = true;
                }
                RunEvent::Failed(e) => {
                    self.status = format!("failed: {e}");
                    shared.status.error(format!("training failed: {e}"));
                    finished = true;
                }
            }
        }
        if finished {
            let dir = job.dir.clone();
            let has_ckpt = dir.join(leoclr_core::checkpoint::FILE_NAME).exists();
            self.last_dir = has_ckpt.then_some(dir);
            self.job = None;
            self.paused = false;
        }
    }

    fn form(&mut self, ui: &mut egui::Ui, shared: &Shared) {
        let enabled = !self.is_running();
        ui.add_enabled_ui(enabled, |ui| {
            egui::Grid::new("train-form").num_columns(2).show(ui, |ui| {
                ui.label("data");
                match &shared.workspace.data {
                    Some(d) => ui.label(d.path.display().to_string()),
                    None => ui.weak("open a dataset (top bar)"),
                };
                ui.end_row();
                let methods: Vec<_> = RECIPES.iter().map(|r| (r, r.summary.to_string())).collect();
                choice(ui, "method", &mut self.method, &methods);
                let originals = [
                    (None, "the method's".to_string()),
                    (Some(OriginalAug::Flip), "resize + flip".to_string()),
                    (
                        Some(OriginalAug::Aug),
                        "augmented (aug+ without the crop)".to_string(),
                    ),
                ];
                choice(
                    ui,
                    "original view",
                    &mut self.spec.model.original_aug,
                    &originals,
                );
                let backbones: Vec<_> = [Backbone::Tiny, Backbone::ResNet18, Backbone::ResNet50]
                    .map(|b| (b, format!("{b:?}")))
                    .into();
                choice(ui, "backbone", &mut self.spec.model.backbone, &backbones);
                numeric_rows(ui, &mut self.spec, &mut self.limit);
                let s = &mut self.spec;
                let backends = [BackendKind::Cpu, BackendKind::Wgpu].map(|b| (b, b.to_string()));
                choice(ui, "backend", &mut s.backend, &backends);
                let places = [
                    (AugmentOn::Cpu, "cpu (loader threads)".to_string()),
                    (
                        AugmentOn::Device,
                        "device (kernels on the backend)".to_string(),
                    ),
                ];
                choice(ui, "augment on", &mut s.augment_on, &places);
                let l = ui.label("run directory");
                let mut out = s.out.display().to_string();
                if ui
                    .text_edit_singleline(&mut out)
                    .labelled_by(l.id)
                    .changed()
                {
                    s.out = PathBuf::from(out);
                }
                ui.end_row();
                ui.label("");
                ui.checkbox(&mut self.overwrite, "replace a run already there");
                ui.end_row();
            });
        });
    }

    fn panel_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        egui::Panel::left("train-left")
            .resizable(false)
            .exact_size(340.0)
            .show(ui, |ui| {
                ui.heading("New run");
                self.form(ui, shared);
                ui.horizontal(|ui| {
                    if ui
                        .add_enabled(!self.is_running(), egui::Button::new("Start"))
                        .clicked()
                    {
                        self.start(shared, ui.ctx());
                    }
                    if let Some(job) = &self.job {
                        let label = if self.paused { "Continue" } else { "Pause" };
                        if ui.button(label).clicked() {
                            self.paused = !self.paused;
                            job.control.set_paused(self.paused);
                            if self.paused {
                                self.status = format!(
                                    "paused: {}",
                                    self.status.trim_start_matches("running: ")
                                );
                            }
                        }
                        if ui.button("Stop").clicked() {
                            job.control.stop();
                            self.status = "stopping…".into();
                        }
                    }
                });
                ui.separator();
                ui.heading("Open a run");
                ui.horizontal(|ui| {
                    let l = ui.label("directory");
                    ui.text_edit_singleline(&mut self.open_path)
                        .labelled_by(l.id);
                });
                ui.horizontal(|ui| {
                    ui.add_enabled_ui(!self.is_running(), |ui| {
                        if ui.button("Open run").clicked() {
                            self.open_run(PathBuf::from(self.open_path.trim()), shared);
                        }
                        if let Some(dir) = self.opened.clone()
                            && ui.button("Resume run").clicked()
                        {
                            self.resume(dir, ui.ctx());
                        }
                    });
                });
                if let Some(dir) = self.last_dir.clone().or(self.opened.clone())
                    && ui.button("Load this run's model").clicked()
                {
                    shared.load_model(&dir);
                }
            });
        egui::CentralPanel::default().show(ui, |ui| {
            ui.label(&self.status);
            self.plots(ui);
        });
    }

    fn plots(&self, ui: &mut egui::Ui) {
        let c = &self.curves;
        let epoch_pts = |f: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<[f64; 2]> {
            c.epochs
                .iter()
                .filter_map(|r| f(r).map(|y| [c.epoch_x(r), y]))
                .collect()
        };
        let h = ((ui.available_height() - 40.0) / 2.0).max(120.0);
        let w = ((ui.available_width() - 20.0) / 2.0).max(160.0);
        let plot = |ui: &mut egui::Ui,
                    id: &str,
                    title: &str,
                    step: &[[f64; 2]],
                    epoch: Vec<[f64; 2]>| {
            ui.vertical(|ui| {
                ui.label(title);
                Plot::new(id)
                    .height(h)
                    .width(w)
                    .x_axis_label("step")
                    .allow_scroll(false)
                    .show(ui, |p| {
                        if !step.is_empty() {
                            p.line(Line::new(
                                format!("{title} (steps)"),
                                PlotPoints::from(step.to_vec()),
                            ));
                        }
                        if !epoch.is_empty() {
                            p.line(Line::new(
                                format!("{title} (epochs)"),
                                PlotPoints::from(epoch.clone()),
                            ));
                            p.points(
                                Points::new(format!("{title} (epochs)"), PlotPoints::from(epoch))
                                    .radius(3.0),
                            );
                        }
                    });
            });
        };
        ui.horizontal(|ui| {
            plot(
                ui,
                "plot-loss",
                "loss",
                &c.loss,
                epoch_pts(&|r| Some(r.loss as f64)),
            );
            plot(
                ui,
                "plot-knn",
                "kNN top-1 (%)",
                &[],
                epoch_pts(&|r| r.knn_top1.map(|k| 100.0 * k as f64)),
            );
        });
        ui.horizontal(|ui| {
            plot(
                ui,
                "plot-lr",
                "learning rate",
                &c.lr,
                epoch_pts(&|r| Some(r.lr)),
            );
            plot(
                ui,
                "plot-ips",
                "images/s",
                &c.images_per_s,
                epoch_pts(&|r| Some(r.images_per_s)),
            );
        });
    }
}

/// The form's number fields, one labelled row each.
fn numeric_rows(ui: &mut egui::Ui, spec: &mut RunSpec, limit: &mut usize) {
    let s = spec;
    let row = |ui: &mut egui::Ui, name: &str, w: egui::DragValue| {
        let l = ui.label(name);
        ui.add(w).labelled_by(l.id);
        ui.end_row();
    };
    row(
        ui,
        "epochs",
        egui::DragValue::new(&mut s.epochs).range(1..=10_000),
    );
    row(
        ui,
        "batch",
        egui::DragValue::new(&mut s.batch).range(2..=4096),
    );
    row(
        ui,
        "images (0 = all)",
        egui::DragValue::new(limit).range(0..=10_000_000),
    );
    row(
        ui,
        "learning rate",
        egui::DragValue::new(&mut s.lr)
            .speed(0.001)
            .range(0.0..=10.0),
    );
    row(
        ui,
        "queue K",
        egui::DragValue::new(&mut s.queue).range(1..=1_000_000),
    );
    row(
        ui,
        "temperature T",
        egui::DragValue::new(&mut s.temperature)
            .speed(0.01)
            .range(0.001..=10.0),
    );
    row(
        ui,
        "momentum m",
        egui::DragValue::new(&mut s.momentum)
            .speed(0.001)
            .range(0.0..=1.0),
    );
    row(
        ui,
        "kNN every (epochs)",
        egui::DragValue::new(&mut s.eval_every).range(0..=1000),
    );
    row(
        ui,
        "shuffle-BN splits",
        egui::DragValue::new(&mut s.bn_splits).range(1..=64),
    );
    // Data-parallel replicas (docs/scaling.md); on the CPU backend they share the one device.
    row(
        ui,
        "devices",
        egui::DragValue::new(&mut s.devices).range(1..=64),
    );
    row(ui, "seed", egui::DragValue::new(&mut s.seed));
}

impl Panel for TrainingState {
    fn poll(&mut self, shared: &mut Shared) {
        self.poll_job(shared);
    }

    fn ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) -> Option<Action> {
        self.panel_ui(ui, shared);
        None
    }
}
