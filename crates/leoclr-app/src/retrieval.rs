//! Retrieval panel: the k nearest neighbours (cosine of backbone features) of a dataset image or
//! of an image file dropped on the window, with precision@k where labels exist.

use std::sync::Arc;

use eframe::egui;
use leoclr_core::eval::Output;
use leoclr_core::infer::{embed_views, model_input};
use leoclr_data::{Dataset, ImageU8};

use crate::jobs::Job;
use crate::panel::{Action, Panel};
use crate::shared::Shared;
use crate::widgets::{class_name, grid_panel_width, image_label, thumb_grid};

pub enum Query {
    /// An image of the dataset.
    Index(usize),
    /// An image file from outside the dataset.
    File { name: String, image: ImageU8 },
}

impl Query {
    /// What identifies the query: "#12" for a dataset image, else the file's name.
    pub fn key(&self) -> String {
        match self {
            Query::Index(i) => format!("#{i}"),
            Query::File { name, .. } => name.clone(),
        }
    }
}

pub struct Results {
    key: (String, usize, u64),
    pub neighbours: Vec<(usize, f32)>,
    /// Neighbours sharing the query's label, when the query has one.
    pub precision: Option<f32>,
    /// How the neighbours were found: "exact", or "approximate (HNSW, ...)" on a large gallery.
    pub search: String,
    query_tex: Option<egui::TextureHandle>,
}

impl Results {
    /// The query these neighbours answer (`Query::key`), to tell fresh results from stale ones.
    pub fn query(&self) -> &str {
        &self.key.0
    }
}

/// The backbone feature of a query file under a model, once embedded.
struct FileFeature {
    key: (String, u64),
    /// `None` while its job runs.
    feature: Option<Vec<f32>>,
    job: Option<Job<Vec<f32>>>,
}

pub struct RetrievalState {
    pub query: Option<Query>,
    pub k: usize,
    pub results: Option<Results>,
    file: Option<FileFeature>,
}

impl Default for RetrievalState {
    fn default() -> Self {
        Self {
            query: None,
            k: 10,
            results: None,
            file: None,
        }
    }
}

impl RetrievalState {
    /// The query file's feature: `None` while it is being embedded (a job is started for a new
    /// file or model).
    fn file_feature(
        &mut self,
        ctx: &egui::Context,
        name: &str,
        image: &ImageU8,
        shared: &Shared,
    ) -> Option<Vec<f32>> {
        let m = shared.workspace.model.as_ref()?;
        let key = (name.to_string(), m.id);
        if let Some(f) = self.file.as_ref().filter(|f| f.key == key) {
            return f.feature.clone();
        }
        let (aug, enc, dev) = (
            m.aug.clone(),
            m.encoder.clone(),
            shared.workspace.device.clone(),
        );
        let x = model_input(image, &aug);
        let job = Job::spawn("embedding the query", ctx, move |_| {
            let mut v = embed_views(
                &enc,
                &[&x],
                aug.mean.len(),
                aug.size,
                Output::Backbone,
                &dev,
            )?;
            Ok(v.remove(0))
        });
        self.file = Some(FileFeature {
            key,
            feature: None,
            job: Some(job),
        });
        None
    }

    fn search(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        let Some(q) = self.query.take() else {
            self.results = None;
            return;
        };
        self.search_for(&q, ctx, shared);
        self.query = Some(q);
    }

    fn search_for(&mut self, q: &Query, ctx: &egui::Context, shared: &mut Shared) {
        let model_id = shared.workspace.model.as_ref().map_or(0, |m| m.id);
        let key = (q.key(), self.k, model_id);
        if self.results.as_ref().is_some_and(|r| r.key == key) {
            return;
        }
        let Some(ds) = shared.workspace.dataset().cloned() else {
            return;
        };
        // Dataset images are in the gallery; a file is embedded on a worker thread first.
        let (file_feature, tex) = match q {
            Query::Index(_) => (None, None),
            Query::File { name, image } => match self.file_feature(ctx, name, image, shared) {
                Some(f) => (
                    Some(f),
                    Some(crate::thumbs::texture(ctx, format!("query-{name}"), image)),
                ),
                None => return,
            },
        };
        let Some(g) = shared.workspace.current_gallery() else {
            return;
        };
        let (feature, exclude, label) = match (q, file_feature) {
            (Query::Index(i), _) if *i < g.len() => (g.row(*i).to_vec(), Some(*i), ds.label(*i)),
            (_, Some(f)) => (f, None, None),
            _ => return,
        };
        let neighbours = g.search(&feature, self.k, exclude);
        let precision = label.map(|l| {
            let same = neighbours
                .iter()
                .filter(|(j, _)| g.labels[*j] == Some(l))
                .count();
            same as f32 / neighbours.len().max(1) as f32
        });
        self.results = Some(Results {
            key,
            neighbours,
            precision,
            search: g.search_kind(),
            query_tex: tex,
        });
    }
}

/// The neighbours as rows of as many cells as the width holds: a wrapping layout cannot wrap
/// cells whose size it learns only after placing them, so the rows are counted here.
fn neighbour_rows(
    ui: &mut egui::Ui,
    shared: &mut Shared,
    ds: &Arc<Dataset>,
    neighbours: &[(usize, f32)],
) {
    let (side, gap) = (92.0, ui.spacing().item_spacing.x);
    // What is visible: a wide row above can make the panel wider than the window.
    let width = ui
        .available_width()
        .min(ui.clip_rect().right() - ui.cursor().left());
    let cols = (((width + gap) / (side + gap)).floor() as usize).max(1);
    let ranked: Vec<(usize, &(usize, f32))> = neighbours.iter().enumerate().collect();
    for row in ranked.chunks(cols) {
        ui.horizontal(|ui| {
            for &(rank, &(j, sim)) in row {
                ui.vertical(|ui| {
                    ui.set_width(side);
                    if let Some(t) = shared.thumbs.get(ui.ctx(), ds, j) {
                        ui.add(egui::Image::new(&t).fit_to_exact_size(egui::vec2(84.0, 84.0)));
                    }
                    let class = ds.label(j).map(|l| class_name(ds, l)).unwrap_or_default();
                    let l = ui
                        .label(format!("{}. {:.3}", rank + 1, sim))
                        .on_hover_text(image_label(ds, j));
                    shared.status.mark(format!("neighbour:{rank}"), l.rect);
                    ui.small(class);
                });
            }
        });
    }
}

/// How many neighbours, how they were searched, and how many share the query's label.
fn result_summary(ui: &mut egui::Ui, r: &Results) {
    ui.label(format!(
        "{} nearest neighbours ({} search)",
        r.neighbours.len(),
        r.search
    ));
    match r.precision {
        Some(p) => ui.label(format!(
            "precision@{}: {:.0}% share the query's label",
            r.neighbours.len(),
            100.0 * p
        )),
        None => ui.label("the query has no label: precision@k not defined"),
    };
}

impl Panel for RetrievalState {
    fn publish(&self) -> Option<(&'static str, serde_json::Value)> {
        let query = match &self.query {
            Some(Query::Index(i)) => serde_json::json!(i),
            Some(Query::File { name, .. }) => serde_json::json!(name),
            None => serde_json::Value::Null,
        };
        let neighbours: Vec<(usize, f32)> = self
            .results
            .as_ref()
            .map(|r| r.neighbours.clone())
            .unwrap_or_default();
        let fresh = self.results.as_ref().map(|r| r.query().to_string())
            == self.query.as_ref().map(|q| q.key());
        Some((
            "retrieval",
            serde_json::json!({
                "query": query, "k": self.k, "neighbours": neighbours, "fresh": fresh,
            }),
        ))
    }

    fn poll(&mut self, shared: &mut Shared) {
        let Some(f) = &mut self.file else { return };
        let Some(res) = f.job.as_mut().and_then(|j| j.poll()) else {
            return;
        };
        f.job = None;
        match res {
            Ok(v) => {
                if let Some(p) = shared.photo.as_mut().filter(|p| p.name == f.key.0) {
                    p.feature = Some((f.key.1, v.clone()));
                }
                f.feature = Some(v);
            }
            Err(e) => {
                shared.status.error(format!("{}: {e}", f.key.0));
                self.file = None;
                self.query = None;
            }
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) -> Option<Action> {
        let grid_width = grid_panel_width(ui);
        egui::Panel::left("retrieval-grid")
            .resizable(false)
            .exact_size(grid_width)
            .show(ui, |ui| {
                ui.label("Click an image, or drop an image file on the window.");
                let sel = match self.query {
                    Some(Query::Index(i)) => Some(i),
                    _ => None,
                };
                if let Some(i) = thumb_grid(ui, shared, sel, "retrieval-grid", grid_width) {
                    self.query = Some(Query::Index(i));
                }
            });
        egui::CentralPanel::default().show(ui, |ui| {
            let l = ui.label("neighbours k");
            ui.add(egui::Slider::new(&mut self.k, 1..=50))
                .labelled_by(l.id);
            if shared.gallery_or_prompt(ui).is_none() {
                return;
            }
            self.search(ui.ctx(), shared);
            let (Some(r), Some(ds)) = (&self.results, shared.workspace.dataset().cloned()) else {
                if self.file.as_ref().is_some_and(|f| f.job.is_some()) {
                    ui.label("Embedding the query image…");
                } else {
                    ui.label("Choose a query image.");
                }
                return;
            };
            // Wrapped, so a long name cannot make the panel wider than the window.
            ui.horizontal_wrapped(|ui| match &self.query {
                Some(Query::Index(i)) => {
                    if let Some(t) = shared.thumbs.get(ui.ctx(), &ds, *i) {
                        ui.add(egui::Image::new(&t).fit_to_exact_size(egui::vec2(96.0, 96.0)));
                    }
                    ui.heading(format!("query: {}", image_label(&ds, *i)));
                }
                Some(Query::File { name, image }) => {
                    if let Some(t) = &r.query_tex {
                        ui.add(egui::Image::new(t).fit_to_exact_size(egui::vec2(96.0, 96.0)));
                    }
                    ui.heading(format!("query: {name} ({}x{})", image.width, image.height));
                }
                None => {}
            });
            result_summary(ui, r);
            ui.separator();
            egui::ScrollArea::vertical()
                .id_salt("neighbours")
                .show(ui, |ui| neighbour_rows(ui, shared, &ds, &r.neighbours));
        });
        None
    }
}
