//! Views panel: an image, its two random crops (boxes drawn on the original), the three views as
//! the encoders receive them, and, with a model, how similar each crop is to the original (what
//! LeOCLR attracts) and to the other crop (what MoCo-v2 attracts).

use std::sync::Arc;

use eframe::egui::{self, Color32, Stroke};
use leoclr_core::eval::Output;
use leoclr_core::infer::{cosine, embed_views};
use leoclr_core::run::{augment, view_size};
use leoclr_data::augment::{crop_view, original_view, to_rgb8};
use leoclr_data::{AugmentConfig, Dataset, OriginalAug, Rng, View, ViewParams, Views};

use crate::error::Result;
use crate::jobs::Job;
use crate::panel::{Action, Panel};
use crate::shared::Shared;
use crate::widgets::{grid_panel_width, image_label, thumb_grid};

pub const CROP_COLORS: [Color32; 2] = [
    Color32::from_rgb(255, 140, 0),
    Color32::from_rgb(40, 160, 255),
];

/// Everything a sample depends on: a change of any of these re-samples.
#[derive(Clone, PartialEq)]
struct Key {
    dataset: usize,
    index: usize,
    seed: u64,
    scale: (f64, f64),
    jitter: f64,
    original_aug: Option<OriginalAug>,
    /// The photo shown instead of a dataset image, by name.
    photo: Option<String>,
    model: u64,
}

/// The views of one image, ready to draw.
pub struct Sample {
    key: Key,
    pub original: egui::TextureHandle,
    pub original_size: (usize, usize),
    /// Every view as the encoders receive it, with what was sampled for it.
    pub views: Views<(egui::TextureHandle, ViewParams)>,
    /// The cosine similarities of the views' projections.
    pub similarity: Option<Similarity>,
}

impl Sample {
    /// The photo from outside the dataset this sample shows, by name (`None`: a dataset image).
    pub fn photo(&self) -> Option<&str> {
        self.key.photo.as_deref()
    }
}

/// What LeOCLR attracts (each crop to the original) and what MoCo-v2 attracts (the crops to each
/// other), as cosines of the views' projections.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Similarity {
    pub crop1_original: f32,
    pub crop2_original: f32,
    pub crop1_crop2: f32,
}

/// The similarities of a sample, embedded on a worker thread.
struct SimilarityJob {
    key: Key,
    job: Job<Similarity>,
}

pub struct ViewsState {
    pub selected: Option<usize>,
    /// Bumped by "Re-sample".
    pub seed: u64,
    /// RandomResizedCrop area range.
    pub scale: (f64, f64),
    /// ColorJitter strength s: brightness, contrast, saturation s, hue s/4 (aug+ is 0.4).
    pub jitter: f64,
    /// The original view's augmentation; `None`: the loaded model's (else resize + flip).
    pub original_aug: Option<OriginalAug>,
    /// Show the photo from outside the dataset ([`Shared::photo`]) rather than `selected`; set
    /// when one is dropped or uploaded, cleared by a click on the grid.
    pub show_photo: bool,
    pub sample: Option<Sample>,
    similarity_job: Option<SimilarityJob>,
}

impl Default for ViewsState {
    fn default() -> Self {
        Self {
            selected: None,
            seed: 0,
            scale: (0.2, 1.0),
            jitter: 0.4,
            original_aug: None,
            show_photo: false,
            sample: None,
            similarity_job: None,
        }
    }
}

/// Short text of what was sampled for a view.
pub fn describe(p: &ViewParams) -> String {
    let c = p.crop;
    let mut s = format!("box {:.0},{:.0} {:.0}x{:.0}", c.x, c.y, c.w, c.h);
    if p.flipped {
        s += " · flipped";
    }
    if let Some(j) = p.jitter {
        s += &format!(
            " · jitter b{:.2} c{:.2} s{:.2} h{:+.2}",
            j[0], j[1], j[2], j[3]
        );
    }
    if p.grayscale {
        s += " · gray";
    }
    if let Some(b) = p.blur_sigma {
        s += &format!(" · blur sigma {b:.1}");
    }
    s
}

impl ViewsState {
    /// The augmentation shown: the model's own (or the dataset's default) with the sliders applied.
    pub fn augment(&self, ds: &Dataset, shared: &Shared) -> Result<AugmentConfig> {
        let mut aug = match &shared.workspace.model {
            Some(m) if m.channels() == ds.channels => m.aug.clone(),
            _ => augment(ds.channels, view_size(ds, None)?, None)?,
        };
        aug.scale = (
            self.scale.0.min(self.scale.1),
            self.scale.1.max(self.scale.0),
        );
        let s = self.jitter;
        aug.jitter = [s, s, s, (s / 4.0).min(0.5)];
        if let Some(o) = self.original_aug {
            aug.original_aug = o;
        }
        aug.validate(ds.channels)?;
        Ok(aug)
    }

    /// The photo to show, when Views shows one.
    fn photo<'a>(&self, shared: &'a Shared) -> Option<&'a crate::shared::Photo> {
        shared.photo.as_ref().filter(|_| self.show_photo)
    }

    fn resample(&mut self, ctx: &egui::Context, ds: &Arc<Dataset>, shared: &mut Shared) {
        let photo = self
            .photo(shared)
            .map(|p| (p.name.clone(), p.image.clone()));
        let index = match (&photo, self.selected) {
            (Some(_), _) => usize::MAX,
            (None, Some(i)) => i,
            (None, None) => {
                self.sample = None;
                return;
            }
        };
        let key = Key {
            dataset: Arc::as_ptr(ds) as usize,
            index,
            photo: photo.as_ref().map(|p| p.0.clone()),
            seed: self.seed,
            scale: self.scale,
            jitter: self.jitter,
            original_aug: self.original_aug,
            model: shared.workspace.model.as_ref().map_or(0, |m| m.id),
        };
        if self.sample.as_ref().is_some_and(|s| s.key == key) {
            return;
        }
        let img = match photo {
            // In the dataset's channels, like a dataset image (the model's input).
            Some((_, img)) => Ok(img.to_channels(ds.channels)),
            None => ds.get(index),
        };
        let img = match img {
            Ok(i) => i,
            Err(e) => {
                shared.status.error(e.to_string());
                self.sample = None;
                return;
            }
        };
        let aug = match self.augment(ds, shared) {
            Ok(a) => a,
            Err(e) => {
                shared.status.error(format!("augmentation settings: {e}"));
                return;
            }
        };
        // The same derivation as the loader: (seed, image) fixes the crops.
        let mut rng = Rng::derive(self.seed, &[0xA1, index as u64]);
        // Drawn in this order (crop 1, crop 2, original): a seed gives the views it always has.
        let views = Views {
            crop1: crop_view(&img, &aug, &mut rng),
            crop2: crop_view(&img, &aug, &mut rng),
            original: original_view(&img, &aug, Some(&mut rng)),
        };
        self.similarity_job = self.start_similarity(ctx, &key, &views, &aug, ds, shared);
        let tex = |name: &str, v: &View| {
            let rgb = to_rgb8(&v.pixels, aug.size, &aug);
            ctx.load_texture(
                name,
                egui::ColorImage::from_rgb([aug.size, aug.size], &rgb),
                egui::TextureOptions::NEAREST,
            )
        };
        let original = crate::thumbs::texture(ctx, "views-original".into(), &img);
        let names = Views {
            crop1: "views-crop1",
            crop2: "views-crop2",
            original: "views-orig",
        };
        self.sample = Some(Sample {
            key,
            original,
            original_size: (img.width, img.height),
            views: views.map(|k, v| (tex(names[k], &v), v.params)),
            similarity: None,
        });
    }

    /// Embeds the three views with the model (when it fits the data) off the UI thread.
    fn start_similarity(
        &self,
        ctx: &egui::Context,
        key: &Key,
        views: &Views<View>,
        aug: &AugmentConfig,
        ds: &Dataset,
        shared: &Shared,
    ) -> Option<SimilarityJob> {
        let m = shared.workspace.model.as_ref()?;
        if m.channels() != ds.channels {
            return None;
        }
        // One batch in view order: rows crop 1, crop 2, original.
        let px: Vec<Vec<f32>> = views.iter().map(|(_, v)| v.pixels.clone()).collect();
        let (enc, dev) = (m.encoder.clone(), shared.workspace.device.clone());
        let (channels, size) = (ds.channels, aug.size);
        let job = Job::spawn("similarity", ctx, move |_| {
            let px: Vec<&[f32]> = px.iter().map(|v| v.as_slice()).collect();
            let z = embed_views(&enc, &px, channels, size, Output::Projection, &dev)?;
            let [c1, c2, o] = [&z[0], &z[1], &z[2]];
            Ok(Similarity {
                crop1_original: cosine(c1, o),
                crop2_original: cosine(c2, o),
                crop1_crop2: cosine(c1, c2),
            })
        });
        Some(SimilarityJob {
            key: key.clone(),
            job,
        })
    }

    /// Re-sample and the crop-scale and jitter sliders.
    fn controls(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            if ui.button("Re-sample").clicked() {
                self.seed = self.seed.wrapping_add(1);
            }
            ui.label("crop scale");
            ui.add(
                egui::Slider::new(&mut self.scale.0, 0.05..=1.0)
                    .text("min")
                    .fixed_decimals(2),
            );
            ui.add(
                egui::Slider::new(&mut self.scale.1, 0.05..=1.0)
                    .text("max")
                    .fixed_decimals(2),
            );
            ui.add(
                egui::Slider::new(&mut self.jitter, 0.0..=1.0)
                    .text("jitter strength")
                    .fixed_decimals(2),
            );
        });
        ui.horizontal(|ui| {
            ui.label("original view:");
            ui.selectable_value(&mut self.original_aug, None, "as trained")
                .on_hover_text("the loaded model's setting (resize + flip without a model)");
            ui.selectable_value(
                &mut self.original_aug,
                Some(OriginalAug::Flip),
                "resize + flip",
            );
            ui.selectable_value(&mut self.original_aug, Some(OriginalAug::Aug), "augmented")
                .on_hover_text("the crops' colour augmentation without the crop (the paper's)");
        });
    }

    /// The original with its crop boxes, the three views and their similarities.
    fn show_sample(&self, ui: &mut egui::Ui, s: &Sample, ds: &Dataset) {
        match s.photo() {
            Some(name) => ui.heading(format!("{name} (your image)")),
            None => ui.heading(image_label(ds, self.selected.unwrap_or(0))),
        };
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                ui.label("original, with the two crop boxes");
                original_with_boxes(ui, s, 256.0);
            });
            ui.vertical(|ui| {
                ui.label("as the encoders receive them");
                ui.horizontal(|ui| {
                    for (k, (tex, p)) in s.views.iter() {
                        ui.vertical(|ui| {
                            ui.set_width(150.0);
                            let title = ui.label(k.name());
                            ui.add(
                                egui::Image::new(tex).fit_to_exact_size(egui::vec2(128.0, 128.0)),
                            )
                            .labelled_by(title.id);
                            ui.add(egui::Label::new(describe(p)).wrap())
                                .on_hover_text("sampled parameters: crop box in original pixels");
                        });
                    }
                });
                ui.add_space(8.0);
                match s.similarity {
                    Some(sim) => {
                        ui.label("cosine similarity of the projections:");
                        ui.label(format!("crop 1 vs original: {:.3}", sim.crop1_original));
                        ui.label(format!("crop 2 vs original: {:.3}", sim.crop2_original));
                        ui.label(format!("crop 1 vs crop 2: {:.3}", sim.crop1_crop2));
                        ui.weak(
                            "LeOCLR pulls each crop towards the original; MoCo-v2 pulls the two \
                             crops together, even when they show different parts.",
                        );
                    }
                    None if self.similarity_job.is_some() => {
                        ui.weak("embedding the views…");
                    }
                    None => {
                        ui.weak("Load a model to see how similar the crops and the original are.");
                    }
                }
            });
        });
    }
}

impl Panel for ViewsState {
    fn publish(&self) -> Option<(&'static str, serde_json::Value)> {
        let sample = self.sample.as_ref();
        let boxes: Vec<[f32; 4]> = sample
            .map(|s| {
                [&s.views.crop1.1, &s.views.crop2.1]
                    .iter()
                    .map(|p| [p.crop.x, p.crop.y, p.crop.w, p.crop.h])
                    .collect()
            })
            .unwrap_or_default();
        // The similarities as the page has read them: crop 1 and crop 2 to the original, then
        // crop 1 to crop 2.
        let similarity = sample
            .and_then(|s| s.similarity)
            .map(|s| [s.crop1_original, s.crop2_original, s.crop1_crop2]);
        Some((
            "views",
            serde_json::json!({
                "selected": self.selected,
                "boxes": boxes,
                "photo": sample.and_then(|s| s.photo()),
                "size": sample.map(|s| [s.original_size.0, s.original_size.1]),
                "similarity": similarity,
            }),
        ))
    }

    fn poll(&mut self, shared: &mut Shared) {
        let Some(sj) = &mut self.similarity_job else {
            return;
        };
        let Some(res) = sj.job.poll() else {
            return;
        };
        let key = sj.key.clone();
        self.similarity_job = None;
        match res {
            Ok(sim) => {
                if let Some(s) = self.sample.as_mut().filter(|s| s.key == key) {
                    s.similarity = Some(sim);
                }
            }
            Err(e) => shared.status.error(e.to_string()),
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) -> Option<Action> {
        let Some(ds) = shared.workspace.dataset().cloned() else {
            egui::CentralPanel::default().show(ui, |ui| {
                ui.label("Open a dataset (top bar) to see its images, crops and views.");
            });
            return None;
        };
        let grid_width = grid_panel_width(ui);
        egui::Panel::left("views-grid")
            .resizable(false)
            .exact_size(grid_width)
            .show(ui, |ui| {
                ui.label(format!("{} images — click one", ds.len()));
                if let Some(i) = thumb_grid(ui, shared, self.selected, "views-grid", grid_width) {
                    self.selected = Some(i);
                    self.show_photo = false;
                }
                if let Some(p) = shared.photo.as_ref().filter(|_| !self.show_photo)
                    && ui.button(format!("show {}", p.name)).clicked()
                {
                    self.show_photo = true;
                }
            });
        egui::CentralPanel::default().show(ui, |ui| {
            self.controls(ui);
            self.resample(ui.ctx(), &ds, shared);
            let Some(s) = &self.sample else {
                ui.label("Select an image on the left.");
                return;
            };
            self.show_sample(ui, s, &ds);
        });
        None
    }
}

/// The original image scaled to fit `side`, with the crop boxes outlined in their colours.
fn original_with_boxes(ui: &mut egui::Ui, s: &Sample, side: f32) {
    let (w, h) = (s.original_size.0 as f32, s.original_size.1 as f32);
    let scale = side / w.max(h);
    let resp =
        ui.add(egui::Image::new(&s.original).fit_to_exact_size(egui::vec2(w * scale, h * scale)));
    let r = resp.rect;
    let painter = ui.painter_at(r.expand(2.0));
    let crops = [(0, &s.views.crop1.1), (1, &s.views.crop2.1)];
    for (k, p) in crops {
        let c = p.crop;
        let rect = egui::Rect::from_min_size(
            r.min + egui::vec2(c.x * scale, c.y * scale),
            egui::vec2(c.w * scale, c.h * scale),
        );
        painter.rect_stroke(
            rect,
            0.0,
            Stroke::new(2.0, CROP_COLORS[k]),
            egui::StrokeKind::Inside,
        );
        painter.text(
            rect.min + egui::vec2(3.0, 2.0),
            egui::Align2::LEFT_TOP,
            format!("{}", k + 1),
            egui::FontId::proportional(13.0),
            CROP_COLORS[k],
        );
    }
}
