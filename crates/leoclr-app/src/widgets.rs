//! Widgets more than one panel draws: the thumbnail grid, image labels, labelled combo boxes.

use eframe::egui;
use leoclr_data::Dataset;

use crate::shared::Shared;

/// Width of the side panels holding a thumbnail grid.
pub const GRID_PANEL_WIDTH: f32 = 264.0;

/// The grid's side panel in a window `ui` fills: [`GRID_PANEL_WIDTH`], narrower on a phone-sized
/// screen (at most 40% of it, two columns at least), so the panel beside it keeps room.
pub fn grid_panel_width(ui: &egui::Ui) -> f32 {
    GRID_PANEL_WIDTH.min((ui.available_width() * 0.4).max(120.0))
}

/// The thumbnail grid of the Views and Retrieval panels, in a side panel `width` wide; returns
/// the clicked image.
pub fn thumb_grid(
    ui: &mut egui::Ui,
    shared: &mut Shared,
    selected: Option<usize>,
    id: &str,
    width: f32,
) -> Option<usize> {
    let ds = shared.workspace.dataset()?.clone();
    let side = 36.0;
    // A thumbnail button is its image plus ~16 px of frame and padding, plus the item spacing. The
    // side panels have a fixed width (their Ui reports more room than is shown).
    let cell = side + 16.0 + ui.spacing().item_spacing.x;
    let cols = (((width - 16.0) / cell).floor() as usize).max(1);
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
                        shared.status.mark(format!("thumb:{i}"), resp.rect);
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

/// One labelled combo-box row of a form grid; the label is also its accessible name (what the
/// tests find it by).
pub fn choice<T: PartialEq + Copy>(
    ui: &mut egui::Ui,
    name: &str,
    value: &mut T,
    options: &[(T, String)],
) {
    ui.label(name);
    let selected = options
        .iter()
        .find(|(v, _)| v == value)
        .map_or(String::new(), |(_, l)| l.clone());
    egui::ComboBox::from_id_salt(name)
        .selected_text(selected)
        .show_ui(ui, |ui| {
            for (v, l) in options {
                ui.selectable_value(value, *v, l.as_str());
            }
        })
        .response
        .widget_info(|| egui::WidgetInfo::labeled(egui::Role::ComboBox, true, name));
    ui.end_row();
}
