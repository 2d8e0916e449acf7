//! The app's state and its top-level layout: a top bar (data, model, tabs), the active panel, and a
//! status line for messages. `LeoclrApp::ui` is all a host needs: eframe calls it natively, the
//! test harness calls it headless.

use std::path::Path;
#[cfg(not(target_arch = "wasm32"))]
use std::path::PathBuf;
use std::sync::Arc;

use burn::tensor::Device;
use eframe::egui;
#[cfg(not(target_arch = "wasm32"))]
use leoclr_data::folder::decode_bytes;
use leoclr_data::{Dataset, DatasetSpec, ImageU8, Split};

use crate::gallery::Gallery;
use crate::jobs::Job;
use crate::model::LoadedModel;
use crate::retrieval::{Query, RetrievalState};
use crate::thumbs::Thumbs;
/// The Training tab: runs with checkpoints natively; in the browser, "Train here".
#[cfg(not(target_arch = "wasm32"))]
pub type TrainingPanel = crate::training::TrainingState;
#[cfg(target_arch = "wasm32")]
pub type TrainingPanel = crate::train_here::TrainHere;
use crate::views::ViewsState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Views,
    Training,
    Retrieval,
    Map,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Views, Tab::Training, Tab::Retrieval, Tab::Map];

    pub fn name(self) -> &'static str {
        match self {
            Tab::Views => "Views",
            Tab::Training => "Training",
            Tab::Retrieval => "Retrieval",
            Tab::Map => "Map",
        }
    }
}

/// A message for the status line.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub error: bool,
    pub text: String,
}

/// State every panel reads: the dataset, the model, their embeddings, messages.
pub struct Shared {
    /// Where inference and embedding run.
    pub device: Device,
    /// Which device renders and which computes, for the status line.
    pub device_note: String,
    pub data_path: String,
    pub split: Split,
    pub dataset: Option<Arc<Dataset>>,
    pub model_path: String,
    pub model: Option<LoadedModel>,
    pub gallery: Option<Gallery>,
    pub gallery_job: Option<Job<Gallery>>,
    pub notice: Option<Notice>,
    pub thumbs: Thumbs,
    /// Where named widgets were drawn this frame ("tab:Views", "thumb:12", ...): lets the browser
    /// test click the canvas where a user would.
    pub marks: Vec<(String, egui::Rect)>,
}

impl Shared {
    pub fn mark(&mut self, name: impl Into<String>, rect: egui::Rect) {
        self.marks.push((name.into(), rect));
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            error: true,
            text: text.into(),
        });
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            error: false,
            text: text.into(),
        });
    }

    /// Opens a dataset (any supported format); on failure the old one stays and a message says why.
    pub fn open_dataset(&mut self, path: &Path) {
        let spec = DatasetSpec {
            path: path.to_path_buf(),
            format: None,
            split: self.split,
            limit: None,
        };
        match Dataset::open(&spec) {
            Ok(ds) if ds.is_empty() => self.error(format!("{}: no images", path.display())),
            Ok(ds) => {
                self.info(format!(
                    "opened {} ({} images, {} channel{})",
                    path.display(),
                    ds.len(),
                    ds.channels,
                    if ds.channels == 1 { "" } else { "s" }
                ));
                self.data_path = path.display().to_string();
                self.dataset = Some(Arc::new(ds));
                self.gallery = None;
                self.gallery_job = None;
            }
            Err(e) => self.error(e.to_string()),
        }
    }

    /// Shows a dataset that is already in memory (the browser's bundled gallery).
    pub fn set_dataset(&mut self, name: impl Into<String>, ds: Arc<Dataset>) {
        self.data_path = name.into();
        self.dataset = Some(ds);
        self.gallery = None;
        self.gallery_job = None;
    }

    /// Loads a checkpoint (file or run directory); on failure the old model stays.
    pub fn load_model(&mut self, path: &Path) {
        match LoadedModel::load(path, &self.device) {
            Ok(m) => {
                self.info(format!("loaded {} ({})", path.display(), m.describe()));
                self.model_path = path.display().to_string();
                self.model = Some(m);
                self.gallery = None;
                self.gallery_job = None;
            }
            Err(e) => self.error(e),
        }
    }

    /// Why the model cannot embed the dataset, if it cannot.
    pub fn mismatch(&self) -> Option<String> {
        let (ds, m) = (self.dataset.as_ref()?, self.model.as_ref()?);
        (ds.channels != m.channels()).then(|| {
            format!(
                "the model takes {}-channel images, the dataset has {} channels",
                m.channels(),
                ds.channels
            )
        })
    }

    /// The gallery of the current model and dataset, if it is built.
    pub fn current_gallery(&mut self) -> Option<&mut Gallery> {
        let (m, ds) = (self.model.as_ref()?, self.dataset.as_ref()?);
        let ok = self.gallery.as_ref()?.is_for(m.id, ds);
        if ok { self.gallery.as_mut() } else { None }
    }

    /// Starts embedding the dataset with the model on a worker thread.
    pub fn start_gallery(&mut self, ctx: &egui::Context) {
        let (Some(m), Some(ds)) = (&self.model, &self.dataset) else {
            return;
        };
        if let Some(why) = self.mismatch() {
            self.error(why);
            return;
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
    }

    /// Polls the embedding job; shows its progress bar while it runs.
    pub fn poll_gallery(&mut self, ui: &mut egui::Ui) {
        if let Some(job) = &mut self.gallery_job {
            match job.poll() {
                Some(Ok(g)) => {
                    self.info(format!("embedded {} images", g.len()));
                    self.gallery = Some(g);
                    self.gallery_job = None;
                }
                Some(Err(e)) => {
                    self.gallery_job = None;
                    self.error(format!("embedding failed: {e}"));
                }
                None => job.show(ui),
            }
        }
    }

    /// The gallery if ready; otherwise a prompt (load a model, embed) and `None`.
    pub fn gallery_or_prompt(&mut self, ui: &mut egui::Ui) -> Option<&mut Gallery> {
        self.poll_gallery(ui);
        if self.dataset.is_none() {
            ui.label("Open a dataset first (top bar).");
            return None;
        }
        if self.model.is_none() {
            ui.label("Load a model first (top bar): a checkpoint file or a run directory.");
            return None;
        }
        if self.current_gallery().is_none() && self.gallery_job.is_none() {
            if let Some(why) = self.mismatch() {
                ui.colored_label(ui.visuals().error_fg_color, why);
                return None;
            }
            let n = self.dataset.as_ref().map_or(0, |d| d.len());
            if ui.button(format!("Embed dataset ({n} images)")).clicked() {
                self.start_gallery(ui.ctx());
            }
            return None;
        }
        self.current_gallery()
    }
}

pub struct LeoclrApp {
    pub tab: Tab,
    pub shared: Shared,
    pub views: ViewsState,
    pub training: TrainingPanel,
    pub retrieval: RetrievalState,
    pub map: crate::map::MapState,
}

impl LeoclrApp {
    /// An app computing on `device`; `device_note` says which devices render and compute.
    pub fn new(device: Device, device_note: impl Into<String>) -> Self {
        Self {
            tab: Tab::Views,
            shared: Shared {
                device,
                device_note: device_note.into(),
                data_path: "assets/fashion-mnist-subset".into(),
                split: Split::Train,
                dataset: None,
                model_path: String::new(),
                model: None,
                gallery: None,
                gallery_job: None,
                notice: None,
                thumbs: Thumbs::default(),
                marks: Vec::new(),
            },
            views: ViewsState::default(),
            training: TrainingPanel::default(),
            retrieval: RetrievalState::default(),
            map: crate::map::MapState::default(),
        }
    }

    pub fn open_dataset(&mut self, path: impl AsRef<Path>) {
        self.shared.open_dataset(path.as_ref());
        self.views.selected = None;
        self.retrieval.query = None;
    }

    pub fn load_model(&mut self, path: impl AsRef<Path>) {
        self.shared.load_model(path.as_ref());
    }

    /// Takes an image file (dropped on the window or given by path) as the retrieval query.
    pub fn query_file(&mut self, name: String, image: Result<ImageU8, String>) {
        match image {
            Ok(img) => {
                self.retrieval.query = Some(Query::File { name, image: img });
                self.tab = Tab::Retrieval;
            }
            Err(e) => self
                .shared
                .error(format!("cannot use dropped file {name}: {e}")),
        }
    }

    #[cfg(target_arch = "wasm32")]
    fn handle_drops(&mut self, _ctx: &egui::Context) {
        // The page hands uploads and drops over as bytes (see leoclr-web).
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn handle_drops(&mut self, ctx: &egui::Context) {
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        for f in dropped {
            let name = f.path().display().to_string();
            let img = f.bytes().and_then(|b| decode_bytes(&b));
            self.query_file(name, img);
        }
    }

    fn top_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.heading("LeOCLR");
            ui.separator();
            for t in Tab::ALL {
                let r = ui.selectable_label(self.tab == t, t.name());
                self.shared.mark(format!("tab:{}", t.name()), r.rect);
                if r.clicked() {
                    self.tab = t;
                }
            }
        });
        #[cfg(target_arch = "wasm32")]
        ui.horizontal(|ui| {
            let s = &self.shared;
            ui.label(format!(
                "{} · {} images",
                s.data_path,
                s.dataset.as_ref().map_or(0, |d| d.len())
            ));
            if let Some(m) = &s.model {
                ui.separator();
                ui.label(format!("model: {}", m.describe()));
            }
        });
        #[cfg(not(target_arch = "wasm32"))]
        ui.horizontal(|ui| {
            let s = &mut self.shared;
            let l = ui.label("Data");
            ui.add(egui::TextEdit::singleline(&mut s.data_path).desired_width(260.0))
                .labelled_by(l.id);
            egui::ComboBox::from_id_salt("split")
                .selected_text(match s.split {
                    Split::Test => "test",
                    _ => "train",
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut s.split, Split::Train, "train");
                    ui.selectable_value(&mut s.split, Split::Test, "test");
                })
                .response
                .on_hover_text("split")
                .widget_info(|| egui::WidgetInfo::labeled(egui::Role::ComboBox, true, "split"));
            if ui.button("Open data").clicked() {
                let p = PathBuf::from(self.shared.data_path.trim());
                self.open_dataset(p);
            }
            ui.separator();
            let s = &mut self.shared;
            let l = ui.label("Model");
            ui.add(
                egui::TextEdit::singleline(&mut s.model_path)
                    .hint_text("checkpoint or run directory")
                    .desired_width(220.0),
            )
            .labelled_by(l.id);
            if ui.button("Load model").clicked() {
                let p = PathBuf::from(s.model_path.trim());
                s.load_model(&p);
            }
            if let Some(m) = &s.model {
                ui.label(m.describe());
            }
        });
    }

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            match &self.shared.notice {
                Some(n) if n.error => {
                    ui.colored_label(ui.visuals().error_fg_color, &n.text);
                }
                Some(n) => {
                    ui.label(&n.text);
                }
                None => {
                    ui.label("Drop an image file on the window to find its neighbours.");
                }
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.weak(&self.shared.device_note);
            });
        });
    }

    /// The whole app, inside any `Ui` (eframe's root or a test harness).
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.shared.marks.clear();
        self.handle_drops(ui.ctx());
        // Training messages are consumed whatever tab is shown.
        self.training.poll(&mut self.shared);
        egui::Panel::top("top").show(ui, |ui| self.top_bar(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        // Each panel lays out its own side panel and central panel (one level: a central panel
        // nested in another does not receive clicks).
        match self.tab {
            Tab::Views => self.views.ui(ui, &mut self.shared),
            Tab::Training => self.training.ui(ui, &mut self.shared),
            Tab::Retrieval => self.retrieval.ui(ui, &mut self.shared),
            Tab::Map => {
                if let Some(i) = self.map.ui(ui, &mut self.shared) {
                    self.retrieval.query = Some(Query::Index(i));
                    self.tab = Tab::Retrieval;
                }
            }
        }
    }
}

/// Width of the side panels holding a thumbnail grid.
pub const GRID_PANEL_WIDTH: f32 = 264.0;

/// The thumbnail grid of the Views and Retrieval panels; returns the clicked image.
pub fn thumb_grid(
    ui: &mut egui::Ui,
    shared: &mut Shared,
    selected: Option<usize>,
    id: &str,
) -> Option<usize> {
    let ds = shared.dataset.clone()?;
    let side = 36.0;
    // A thumbnail button is its image plus ~16 px of frame and padding, plus the item spacing. The
    // side panels have a fixed width (their Ui reports more room than is shown).
    let cell = side + 16.0 + ui.spacing().item_spacing.x;
    let cols = (((GRID_PANEL_WIDTH - 16.0) / cell).floor() as usize).max(1);
    let rows = ds.len().div_ceil(cols);
    let mut clicked = None;
    egui::ScrollArea::vertical()
        .id_salt(id)
        .show_rows(ui, side + 11.0, rows, |ui, range| {
            for r in range {
                ui.horizontal(|ui| {
                    for i in r * cols..((r + 1) * cols).min(ds.len()) {
                        let resp = match shared.thumbs.get(ui.ctx(), &ds, i) {
                            Some(tex) => ui.add(
                                egui::Button::image(
                                    egui::Image::new(&tex)
                                        .fit_to_exact_size(egui::vec2(side, side)),
                                )
                                .selected(selected == Some(i)),
                            ),
                            None => ui.add_sized([side, side], egui::Button::new("?")),
                        };
                        shared.mark(format!("thumb:{i}"), resp.rect);
                        let label = image_label(&ds, i);
                        resp.widget_info(|| {
                            egui::WidgetInfo::labeled(egui::Role::Button, true, &label)
                        });
                        if resp.on_hover_text(&label).clicked() {
                            clicked = Some(i);
                        }
                    }
                });
            }
        });
    clicked
}

/// "image 12 · Trouser": the index and the class name (or number) where labels exist.
pub fn image_label(ds: &Dataset, i: usize) -> String {
    match ds.label(i) {
        Some(l) => format!("image {i} · {}", class_name(ds, l)),
        None => format!("image {i}"),
    }
}

pub fn class_name(ds: &Dataset, label: u32) -> String {
    ds.classes
        .get(label as usize)
        .cloned()
        .unwrap_or_else(|| format!("class {label}"))
}
