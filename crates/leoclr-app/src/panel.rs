//! What the app shell needs of a panel. Panels know the [`Shared`] state, never the shell; what
//! one panel asks of another goes back to the shell as an [`Action`].

use eframe::egui;

use crate::shared::Shared;

/// A request from a panel to the shell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Show the neighbours of dataset image `i` (the Retrieval panel).
    Retrieve(usize),
}

pub trait Panel {
    /// Takes in what background work produced; called every frame, whichever tab is shown.
    fn poll(&mut self, _shared: &mut Shared) {}

    /// Lays out the panel's side and central panels (one level: a central panel nested in another
    /// does not receive clicks).
    fn ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) -> Option<Action>;

    /// What the panel shows, for a host that reads the app from outside (the browser page, its
    /// test): a key and a JSON value, or nothing.
    fn publish(&self) -> Option<(&'static str, serde_json::Value)> {
        None
    }
}
