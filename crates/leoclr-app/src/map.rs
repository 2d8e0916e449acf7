//! Map panel: the embeddings projected on their first two principal components (or, on request,
//! by t-SNE), one dot per image coloured by label, and the photo dropped or uploaded (once embedded) as a ringed marker on the
//! same axes. Hovering shows the image; clicking opens it in Retrieval. Scrolling zooms about
//! the pointer, dragging pans, "Fit all" goes back; zoomed in far enough that few points are on screen, the points
//! are drawn as their thumbnails (as the Embedding Projector does).

use eframe::egui::{self, Color32, Pos2, Rect};
use leoclr_data::Dataset;

use crate::panel::{Action, Panel};
use crate::shared::Shared;
use crate::tsne_map::{self, TsneMap};
use crate::widgets::{class_name, image_label};

/// How the map lays the embeddings out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Projection {
    /// The first two principal components: instant, linear, new points projected exactly.
    #[default]
    Pca,
    /// t-SNE (perplexity 30): local neighbourhoods kept, computed on demand.
    Tsne,
}

impl Projection {
    pub fn name(self) -> &'static str {
        match self {
            Projection::Pca => "PCA",
            Projection::Tsne => "t-SNE",
        }
    }
}

/// Ten well-separated colours (Tableau 10), repeated for more classes.
pub const PALETTE: [Color32; 10] = [
    Color32::from_rgb(78, 121, 167),
    Color32::from_rgb(242, 142, 43),
    Color32::from_rgb(225, 87, 89),
    Color32::from_rgb(118, 183, 178),
    Color32::from_rgb(89, 161, 79),
    Color32::from_rgb(237, 201, 72),
    Color32::from_rgb(176, 122, 161),
    Color32::from_rgb(255, 157, 167),
    Color32::from_rgb(156, 117, 95),
    Color32::from_rgb(186, 176, 172),
];

pub fn color(label: Option<u32>) -> Color32 {
    match label {
        Some(l) => PALETTE[l as usize % PALETTE.len()],
        None => Color32::GRAY,
    }
}

/// At most this many points on screen are drawn as thumbnails (each a texture).
pub const MAX_THUMBS: usize = 120;

pub struct MapState {
    pub hovered: Option<usize>,
    /// Screen positions of the points in the last frame (for hit tests and tests).
    pub screen: Vec<Pos2>,
    /// Where the photo from outside the dataset was drawn in the last frame.
    pub photo: Option<Pos2>,
    /// Magnification (1: every point fits) and pan in screen pixels.
    pub zoom: f32,
    pub pan: egui::Vec2,
    /// Points drawn as thumbnails in the last frame (0: dots).
    pub thumbnails: usize,
    pub projection: Projection,
    pub tsne: TsneMap,
}

impl Default for MapState {
    fn default() -> Self {
        Self {
            hovered: None,
            screen: Vec::new(),
            photo: None,
            zoom: 1.0,
            pan: egui::Vec2::ZERO,
            thumbnails: 0,
            projection: Projection::Pca,
            tsne: TsneMap::default(),
        }
    }
}

/// A fitted position seen through the zoom and pan about the frame's centre.
pub fn view(p: Pos2, centre: Pos2, zoom: f32, pan: egui::Vec2) -> Pos2 {
    centre + (p - centre) * zoom + pan
}

impl MapState {
    /// Where point `i` was drawn in the last frame.
    pub fn point_pos(&self, i: usize) -> Option<Pos2> {
        self.screen.get(i).copied()
    }

    /// "Fit all" and how to navigate.
    fn toolbar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            if ui.button("Fit all").clicked() {
                (self.zoom, self.pan) = (1.0, egui::Vec2::ZERO);
            }
            ui.weak("scroll to zoom, drag to pan; zoomed in, points show their images");
        });
    }

    /// Scroll (or pinch) zooms about the pointer, a drag pans.
    fn navigate(&mut self, ui: &egui::Ui, resp: &egui::Response, centre: Pos2) {
        self.pan += resp.drag_delta();
        let Some(cursor) = resp.hover_pos() else {
            return;
        };
        let (scroll, pinch) = ui.input(|i| (i.smooth_scroll_delta.y, i.zoom_delta()));
        let factor = (scroll / 200.0).exp() * pinch;
        if (factor - 1.0).abs() > 1e-4 {
            let z = (self.zoom * factor).clamp(1.0, 200.0);
            // The fitted point under the pointer stays under it.
            self.pan = (cursor - centre) - (cursor - centre - self.pan) * (z / self.zoom);
            self.zoom = z;
        }
    }

    /// The points as thumbnails when few enough are on screen; returns how many were drawn.
    fn draw_thumbnails(
        &self,
        ui: &egui::Ui,
        painter: &egui::Painter,
        shared: &mut Shared,
        ds: &std::sync::Arc<Dataset>,
        rect: Rect,
    ) -> usize {
        let visible: Vec<usize> = (0..self.screen.len())
            .filter(|&i| rect.contains(self.screen[i]))
            .collect();
        if self.zoom <= 1.0 || visible.is_empty() || visible.len() > MAX_THUMBS {
            return 0;
        }
        let side = (4.0 * self.zoom).clamp(20.0, 56.0);
        for &i in &visible {
            if let Some(t) = shared.thumbs.get(ui.ctx(), ds, i) {
                let r = Rect::from_center_size(self.screen[i], egui::vec2(side, side));
                painter.image(
                    t.id(),
                    r,
                    Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
                    Color32::WHITE,
                );
            }
        }
        visible.len()
    }
}

impl MapState {
    /// The legend, the photo's name, and the hovered point's image.
    fn side(
        &self,
        ui: &mut egui::Ui,
        shared: &mut Shared,
        ds: &std::sync::Arc<Dataset>,
        points: usize,
        placed: Option<&(String, [f32; 2])>,
    ) {
        ui.heading(format!("{} of backbone features", self.projection.name()));
        ui.label(format!("{points} images"));
        for c in 0..ds.num_classes() as u32 {
            ui.horizontal(|ui| {
                let (r, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
                ui.painter().circle_filled(r.center(), 5.0, color(Some(c)));
                ui.label(class_name(ds, c));
            });
        }
        if let Some((name, _)) = placed {
            ui.label(format!("ringed: {name} (your image)"));
        }
        ui.separator();
        match self.hovered {
            Some(i) => {
                ui.label(format!("hovered: {}", image_label(ds, i)));
                if let Some(t) = shared.thumbs.get(ui.ctx(), ds, i) {
                    ui.add(egui::Image::new(&t).fit_to_exact_size(egui::vec2(128.0, 128.0)));
                }
                ui.weak("click to see its neighbours");
            }
            None => {
                ui.weak("Hover a point to see its image.");
            }
        }
    }
}

impl Panel for MapState {
    fn publish(&self) -> Option<(&'static str, serde_json::Value)> {
        Some((
            "map",
            serde_json::json!({
                "photo": self.photo.map(|p| [p.x, p.y]),
                "projection": self.projection.name(),
                "points": self.screen.len(),
                "tsne_progress": self.tsne.progress,
            }),
        ))
    }

    /// Draws the map; a click on a point asks for its neighbours.
    fn ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) -> Option<Action> {
        let model = shared.workspace.model.as_ref().map(|m| m.id);
        let photo = shared.photo.as_ref().and_then(|p| match &p.feature {
            Some((id, f)) if Some(*id) == model => Some((p.name.clone(), f.clone())),
            _ => None,
        });
        let (projection, tsne) = (&mut self.projection, &mut self.tsne);
        let ready = egui::Panel::top("map-top")
            .show(ui, |ui| layout_source(ui, shared, projection, tsne, photo))
            .inner;
        let (Some(ds), Some((labels, pts, placed))) = (shared.workspace.dataset().cloned(), ready)
        else {
            self.screen.clear();
            self.photo = None;
            egui::CentralPanel::default().show(ui, |_| {});
            return None;
        };
        let mut clicked = None;
        egui::Panel::right("map-side")
            .resizable(false)
            .exact_size(230.0)
            .show(ui, |ui| {
                self.side(ui, shared, &ds, pts.len(), placed.as_ref())
            });
        egui::CentralPanel::default().show(ui, |ui| {
            self.toolbar(ui);
            let (rect, resp) =
                ui.allocate_exact_size(ui.available_size(), egui::Sense::click_and_drag());
            self.navigate(ui, &resp, rect.center());
            // The photo is laid out with the points, so it stays inside the frame too.
            let mut all = pts.clone();
            all.extend(placed.as_ref().map(|p| p.1));
            let (zoom, pan) = (self.zoom, self.pan);
            let mut screen: Vec<Pos2> = layout(&all, rect.shrink(12.0))
                .into_iter()
                .map(|p| view(p, rect.center(), zoom, pan))
                .collect();
            self.photo = placed.as_ref().and_then(|_| screen.pop());
            self.screen = screen;
            let painter = ui.painter_at(rect);
            painter.rect_filled(rect, 4.0, ui.visuals().extreme_bg_color);
            self.thumbnails = self.draw_thumbnails(ui, &painter, shared, &ds, rect);
            if self.thumbnails == 0 {
                for (p, l) in self.screen.iter().zip(&labels) {
                    painter.circle_filled(*p, 2.5, color(*l));
                }
            }
            if let Some(p) = self.photo {
                ring(&painter, p, ui.visuals().strong_text_color());
            }
            let radius = match self.thumbnails {
                0 => 8.0,
                _ => (2.0 * self.zoom).clamp(10.0, 28.0),
            };
            self.hovered = resp
                .hover_pos()
                .filter(|p| rect.contains(*p))
                .and_then(|pos| nearest_point(&self.screen, pos, radius));
            if let Some(i) = self.hovered {
                painter.circle_stroke(
                    self.screen[i],
                    6.0,
                    egui::Stroke::new(2.0, ui.visuals().strong_text_color()),
                );
                if resp.clicked() {
                    clicked = Some(Action::Retrieve(i));
                }
            }
        });
        clicked
    }
}

/// What the map draws: the PCA/t-SNE switch, then the gallery's labels, its points by the chosen
/// projection and the photo's place (or a prompt, the t-SNE progress, and `None`).
fn layout_source(
    ui: &mut egui::Ui,
    shared: &mut Shared,
    projection: &mut Projection,
    tsne: &mut TsneMap,
    photo: Option<(String, Vec<f32>)>,
) -> Option<Placed> {
    ui.horizontal(|ui| {
        for p in [Projection::Pca, Projection::Tsne] {
            let r = ui.selectable_label(*projection == p, p.name());
            shared.status.mark(format!("map:{}", p.name()), r.rect);
            if r.clicked() {
                *projection = p;
            }
        }
    });
    let g = shared.gallery_or_prompt(ui)?;
    let pts = match *projection {
        Projection::Pca => g.map().to_vec(),
        Projection::Tsne => tsne_points(ui, tsne, g)?,
    };
    let placed = photo.as_ref().and_then(|(name, f)| {
        let at = match *projection {
            Projection::Pca => g.place(f)?,
            Projection::Tsne => tsne_map::place(g, &pts, f)?,
        };
        Some((name.clone(), at))
    });
    Some((g.labels.clone(), pts, placed))
}

/// Labels, points, and the photo's name and place.
type Placed = (Vec<Option<u32>>, Vec<[f32; 2]>, Option<(String, [f32; 2])>);

/// The gallery's t-SNE map, or (while it is computed, or when it cannot be) a progress bar or the
/// reason, and `None`.
fn tsne_points(
    ui: &mut egui::Ui,
    tsne: &mut TsneMap,
    g: &crate::gallery::Gallery,
) -> Option<Vec<[f32; 2]>> {
    if let Some(why) = TsneMap::unavailable(g) {
        ui.label(why);
        return None;
    }
    if let Some(p) = tsne.points(ui.ctx(), g) {
        return Some(p.to_vec());
    }
    if let Some(e) = &tsne.error {
        ui.colored_label(ui.visuals().error_fg_color, format!("t-SNE failed: {e}"));
        return None;
    }
    let (done, total) = tsne.progress;
    ui.add(
        egui::ProgressBar::new(done as f32 / total.max(1) as f32).text(format!(
            "t-SNE of {} images: {done}/{total} iterations",
            g.len()
        )),
    );
    ui.ctx().request_repaint();
    None
}

/// The marker of the photo from outside the dataset: a ring around a dot.
fn ring(painter: &egui::Painter, p: Pos2, strong: Color32) {
    painter.circle_stroke(p, 9.0, egui::Stroke::new(2.5, strong));
    painter.circle_filled(p, 4.0, strong);
}

/// Fits the points into `rect` (same scale on both axes, y up).
pub fn layout(pts: &[[f32; 2]], rect: Rect) -> Vec<Pos2> {
    if pts.is_empty() {
        return Vec::new();
    }
    let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
    for p in pts {
        for k in 0..2 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
    }
    let span = (hi[0] - lo[0]).max(hi[1] - lo[1]).max(1e-9);
    let scale = rect.width().min(rect.height()) / span;
    let c = [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0];
    pts.iter()
        .map(|p| rect.center() + egui::vec2((p[0] - c[0]) * scale, -(p[1] - c[1]) * scale))
        .collect()
}

/// The point closest to `pos` within `radius`.
pub fn nearest_point(screen: &[Pos2], pos: Pos2, radius: f32) -> Option<usize> {
    screen
        .iter()
        .enumerate()
        .map(|(i, p)| (i, p.distance_sq(pos)))
        .filter(|(_, d)| *d <= radius * radius)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_fits_and_hit_test_finds_the_closest() {
        let rect = Rect::from_min_size(Pos2::new(10.0, 10.0), egui::vec2(100.0, 50.0));
        let s = layout(&[[0.0, 0.0], [2.0, 1.0], [1.0, 0.5]], rect);
        assert!(s.iter().all(|p| rect.expand(0.01).contains(*p)));
        assert_eq!(s[2], rect.center());
        assert!(s[1].y < s[0].y, "y grows upwards");
        assert_eq!(nearest_point(&s, s[1] + egui::vec2(1.0, 1.0), 8.0), Some(1));
        assert_eq!(nearest_point(&s, Pos2::new(500.0, 500.0), 8.0), None);
        // Zoom and pan about the centre: the centre moves only by the pan.
        let c = rect.center();
        assert_eq!(
            view(c, c, 5.0, egui::vec2(3.0, -2.0)),
            c + egui::vec2(3.0, -2.0)
        );
        assert_eq!(view(s[1], c, 2.0, egui::Vec2::ZERO), c + (s[1] - c) * 2.0);
    }
}
