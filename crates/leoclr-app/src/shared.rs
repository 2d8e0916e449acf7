//! What every panel is handed: the workspace, the status line and the thumbnail cache, with the
//! few helpers that need all three.

use std::path::Path;

use eframe::egui;
use leoclr_data::Split;

use crate::error::Result;
use crate::gallery::Gallery;
use crate::status::Status;
use crate::thumbs::Thumbs;
use crate::workspace::Workspace;

/// An image from outside the dataset (dropped on the window, uploaded in the page): shown in
/// Views, retrieved against, placed on the Map.
pub struct Photo {
    pub name: String,
    pub image: std::sync::Arc<leoclr_data::ImageU8>,
    /// Its backbone feature under a model (model id, feature), once Retrieval has embedded it.
    pub feature: Option<(u64, Vec<f32>)>,
}

pub struct Shared {
    pub workspace: Workspace,
    pub status: Status,
    pub thumbs: Thumbs,
    pub photo: Option<Photo>,
}

impl Shared {
    pub fn new(workspace: Workspace) -> Self {
        Self {
            workspace,
            status: Status::default(),
            thumbs: Thumbs::default(),
            photo: None,
        }
    }

    /// Opens a dataset; the status line says what was opened or why not (the old one stays).
    pub fn open_dataset(&mut self, path: &Path, split: Split) -> bool {
        let res = self.workspace.open_dataset(path, split);
        self.report(res)
    }

    /// Loads a model, or opens an embedding index (a directory with `index.json`: its model,
    /// data and features); the status line says which or why not (the old state stays).
    pub fn load_model(&mut self, path: &Path) -> bool {
        let res = match path.join(leoclr_core::index::INFO_FILE).is_file() {
            true => self.workspace.open_index(path),
            false => self.workspace.load_model(path),
        };
        self.report(res)
    }

    /// Shows a summary or an error on the status line; true on success.
    fn report(&mut self, res: Result<String>) -> bool {
        let ok = res.is_ok();
        match res {
            Ok(summary) => self.status.info(summary),
            Err(e) => self.status.error(e.to_string()),
        }
        ok
    }

    /// Starts embedding the dataset; a model that does not fit the data is a message.
    pub fn start_gallery(&mut self, ctx: &egui::Context) {
        if let Err(e) = self.workspace.start_gallery(ctx) {
            self.status.error(e.to_string());
        }
    }

    /// Consumes the embedding job's result (called every frame, whatever tab is shown).
    pub fn poll_gallery(&mut self) {
        match self.workspace.poll_gallery() {
            Some(Ok(n)) => self.status.info(format!("embedded {n} images")),
            Some(Err(e)) => self.status.error(format!("embedding failed: {e}")),
            None => {}
        }
    }

    /// The gallery if ready. Otherwise a prompt (open data, load a model, embed) or the
    /// embedding's progress, and `None`.
    pub fn gallery_or_prompt(&mut self, ui: &mut egui::Ui) -> Option<&mut Gallery> {
        let ws = &mut self.workspace;
        if ws.data.is_none() {
            ui.label("Open a dataset first (top bar).");
            return None;
        }
        if ws.model.is_none() {
            ui.label("Load a model first (top bar): a checkpoint file or a run directory.");
            return None;
        }
        if let Some(job) = &ws.gallery_job {
            job.show(ui);
            return None;
        }
        if ws.current_gallery().is_none() {
            if let Some(why) = ws.mismatch() {
                ui.colored_label(ui.visuals().error_fg_color, why.to_string());
                return None;
            }
            // A model and data: embed by itself, once per pair (after a failure, the button).
            let pair = ws.pair();
            if ws.auto_embedded != pair {
                ws.auto_embedded = pair;
                self.start_gallery(ui.ctx());
                ui.label("embedding the dataset…");
                return None;
            }
            let n = ws.dataset().map_or(0, |d| d.len());
            if ui.button(format!("Embed dataset ({n} images)")).clicked() {
                self.start_gallery(ui.ctx());
            }
            return None;
        }
        self.workspace.current_gallery()
    }
}
