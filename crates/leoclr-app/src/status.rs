//! The status line's message and where named widgets were drawn this frame.

use eframe::egui;

/// A message for the status line.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub error: bool,
    pub text: String,
}

#[derive(Default)]
pub struct Status {
    pub notice: Option<Notice>,
    /// Where named widgets were drawn this frame ("tab:Views", "thumb:12", ...): lets the browser
    /// test click the canvas where a user would.
    pub marks: Vec<(String, egui::Rect)>,
}

impl Status {
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
}
