//! The app's state and its top-level layout: a top bar (data, model, tabs), the active panel, and a
//! status line for messages. `LeoclrApp::ui` is all a host needs: eframe calls it natively, the
//! test harness calls it headless.

//! The app shell: a top bar (data, model, tabs), the active panel, and a status line for
//! messages. `LeoclrApp::ui` is all a host needs: eframe calls it natively, the test harness calls
//! it headless. Panels are reached only through the [`Panel`] trait.

use std::path::Path;
#[cfg(not(target_arch = "wasm32"))]
use std::path::PathBuf;

use burn::tensor::Device;
use eframe::egui;
use leoclr_data::{ImageU8, Split};

use crate::error::AppError;
use crate::map::MapState;
use crate::panel::{Action, Panel};
use crate::retrieval::{Query, RetrievalState};
use crate::shared::Shared;
use crate::views::ViewsState;
use crate::workspace::Workspace;
/// The Training tab: runs with checkpoints natively; in the browser, "Train here". Both are
/// [`Panel`]s.
#[cfg(not(target_arch = "wasm32"))]
pub type TrainingPanel = crate::training::TrainingState;
#[cfg(target_arch = "wasm32")]
pub type TrainingPanel = crate::train_here::TrainHere;

/// What the top bar's text boxes hold (natively; the browser shows a fixed dataset and model).
pub struct TopBar {
    pub data_path: String,
    pub split: Split,
    pub model_path: String,
}

/// The panels, registered once: each line is a tab, its title, its field and its type. The
/// tab bar, the per-frame polling, the layout of the shown tab and the state the page publishes
/// all iterate this list; adding a panel is a line here and an implementation of [`Panel`].
macro_rules! panels {
    ($($tab:ident, $title:literal, $field:ident: $ty:ty;)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Tab {
            $($tab),*
        }

        impl Tab {
            pub const ALL: [Tab; [$($title),*].len()] = [$(Tab::$tab),*];

            pub fn name(self) -> &'static str {
                match self {
                    $(Tab::$tab => $title),*
                }
            }
        }

        pub struct LeoclrApp {
            pub tab: Tab,
            pub top: TopBar,
            pub shared: Shared,
            $(pub $field: $ty,)*
        }

        impl LeoclrApp {
            fn with_panels(tab: Tab, top: TopBar, shared: Shared) -> Self {
                Self {
                    tab,
                    top,
                    shared,
                    $($field: <$ty>::default(),)*
                }
            }

            /// The shared state and every panel, borrowed apart.
            fn panels(&mut self) -> (&mut Shared, Vec<(Tab, &mut dyn Panel)>) {
                (&mut self.shared, vec![$((Tab::$tab, &mut self.$field as &mut dyn Panel)),*])
            }

            /// What every panel publishes of its state, by the panel's key (the browser page
            /// and its test read it).
            pub fn published(&self) -> serde_json::Map<String, serde_json::Value> {
                let mut out = serde_json::Map::new();
                $(
                    if let Some((key, value)) = Panel::publish(&self.$field) {
                        out.insert(key.to_string(), value);
                    }
                )*
                out
            }
        }
    };
}

panels! {
    Views, "Views", views: ViewsState;
    Training, "Training", training: TrainingPanel;
    Retrieval, "Retrieval", retrieval: RetrievalState;
    Map, "Map", map: MapState;
}

impl LeoclrApp {
    /// An app computing on `device`; `device_note` says which devices render and compute.
    pub fn new(device: Device, device_note: impl Into<String>) -> Self {
        Self::with_panels(
            Tab::Views,
            TopBar {
                data_path: leoclr_core::run::BUNDLED_DATA.into(),
                split: Split::Train,
                model_path: String::new(),
            },
            Shared::new(Workspace::new(device, device_note)),
        )
    }

    /// Opens a dataset in the top bar's split; panels drop their selection in the old one.
    pub fn open_dataset(&mut self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        if self.shared.open_dataset(path, self.top.split) {
            self.top.data_path = path.display().to_string();
            self.views.selected = None;
            self.retrieval.query = None;
        }
    }

    pub fn load_model(&mut self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        if self.shared.load_model(path) {
            self.top.model_path = path.display().to_string();
            // An index brings its own data.
            if let Some(d) = &self.shared.workspace.data {
                self.top.data_path = d.path.display().to_string();
            }
        }
    }

    /// Takes an image file (dropped on the window or given by path) as the retrieval query.
    pub fn query_file(&mut self, name: String, image: Result<ImageU8, AppError>) {
        match image {
            Ok(img) => {
                // The photo everywhere: Views shows it, Retrieval searches with it, the Map
                // places it once Retrieval has embedded it.
                self.shared.photo = Some(crate::shared::Photo {
                    name: name.clone(),
                    image: std::sync::Arc::new(img.clone()),
                    feature: None,
                });
                self.views.show_photo = true;
                self.retrieval.query = Some(Query::File { name, image: img });
                self.tab = Tab::Retrieval;
            }
            Err(e) => self.shared.status.error(e.to_string()),
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
            let img = match f.bytes() {
                Ok(b) => crate::error::decode_dropped(&name, &b),
                Err(reason) => Err(AppError::Dropped {
                    name: name.clone(),
                    reason,
                }),
            };
            self.query_file(name, img);
        }
    }

    fn top_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.heading("LeOCLR");
            ui.separator();
            for t in Tab::ALL {
                let r = ui.selectable_label(self.tab == t, t.name());
                self.shared.status.mark(format!("tab:{}", t.name()), r.rect);
                if r.clicked() {
                    self.tab = t;
                }
            }
        });
        #[cfg(target_arch = "wasm32")]
        ui.horizontal_wrapped(|ui| {
            let ws = &self.shared.workspace;
            ui.label(format!(
                "{} · {} images",
                ws.data
                    .as_ref()
                    .map_or(String::new(), |d| d.path.display().to_string()),
                ws.dataset().map_or(0, |d| d.len())
            ));
            if let Some(m) = &ws.model {
                ui.separator();
                ui.label(format!("model: {}", m.describe()));
            }
        });
        #[cfg(not(target_arch = "wasm32"))]
        ui.horizontal_wrapped(|ui| {
            let s = &mut self.top;
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
                let p = PathBuf::from(self.top.data_path.trim());
                self.open_dataset(p);
            }
            ui.separator();
            let s = &mut self.top;
            let l = ui.label("Model");
            ui.add(
                egui::TextEdit::singleline(&mut s.model_path)
                    .hint_text("checkpoint, run directory or embed index")
                    .desired_width(220.0),
            )
            .labelled_by(l.id);
            if ui.button("Load model").clicked() {
                let p = PathBuf::from(s.model_path.trim());
                self.load_model(p);
            }
            if let Some(m) = &self.shared.workspace.model {
                ui.label(m.describe());
            }
        });
    }

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        let notice = |ui: &mut egui::Ui, n: &Option<crate::status::Notice>| match n {
            Some(n) if n.error => {
                ui.colored_label(ui.visuals().error_fg_color, &n.text);
            }
            Some(n) => {
                ui.label(&n.text);
            }
            None => {
                ui.label("Drop an image file on the window to find its neighbours.");
            }
        };
        // On a narrow (phone-sized) window the device note gets a line of its own instead of
        // being drawn over the message.
        if ui.available_width() < 700.0 {
            notice(ui, &self.shared.status.notice);
            ui.weak(&self.shared.workspace.device_note);
            return;
        }
        ui.horizontal(|ui| {
            notice(ui, &self.shared.status.notice);
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.weak(&self.shared.workspace.device_note);
            });
        });
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Retrieve(i) => {
                self.retrieval.query = Some(Query::Index(i));
                self.tab = Tab::Retrieval;
            }
        }
    }

    /// The whole app, inside any `Ui` (eframe's root or a test harness).
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.shared.status.marks.clear();
        self.handle_drops(ui.ctx());
        // Background results are taken in whatever tab is shown.
        self.shared.poll_gallery();
        let (shared, panels) = self.panels();
        for (_, p) in panels {
            p.poll(shared);
        }
        egui::Panel::top("top").show(ui, |ui| self.top_bar(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        let tab = self.tab;
        let (shared, panels) = self.panels();
        let action = panels
            .into_iter()
            .find(|(t, _)| *t == tab)
            .and_then(|(_, p)| p.ui(ui, shared));
        if let Some(a) = action {
            self.act(a);
        }
    }
}
