//! Background jobs: a closure on a worker thread that reports progress and a result through a
//! channel. The UI polls once a frame; the worker wakes it with `request_repaint`. In the browser
//! (no threads) the work runs after the frame that asked for it, not inside it.

use crossbeam_channel::{Receiver, unbounded};
use eframe::egui;

use crate::error::Result;

/// Work done so far, for a progress bar.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

impl Progress {
    pub fn fraction(&self) -> f32 {
        if self.total == 0 {
            0.0
        } else {
            self.done as f32 / self.total as f32
        }
    }
}

enum Msg<T> {
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    Progress(Progress),
    Done(Result<T>),
}

pub struct Job<T> {
    rx: Receiver<Msg<T>>,
    pub label: String,
    pub progress: Progress,
}

impl<T: Send + 'static> Job<T> {
    pub fn spawn(
        label: impl Into<String>,
        ctx: &egui::Context,
        work: impl FnOnce(&mut dyn FnMut(usize, usize)) -> Result<T> + Send + 'static,
    ) -> Self {
        let (tx, rx) = unbounded();
        let ctx = ctx.clone();
        // No threads in the browser: the work runs once the current frame has returned to the
        // browser, and its result waits for the next poll.
        #[cfg(target_arch = "wasm32")]
        wasm_bindgen_futures::spawn_local(async move {
            let mut report = |_, _| {};
            let _ = tx.send(Msg::Done(work(&mut report)));
            ctx.request_repaint();
        });
        #[cfg(not(target_arch = "wasm32"))]
        std::thread::Builder::new()
            .name("leoclr-app-job".into())
            .spawn(move || {
                let mut report = |done, total| {
                    let _ = tx.send(Msg::Progress(Progress { done, total }));
                    ctx.request_repaint();
                };
                let res =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut report)))
                        .unwrap_or(Err(crate::error::AppError::Panic("the job")));
                let _ = tx.send(Msg::Done(res));
                ctx.request_repaint();
            })
            .expect("spawn job thread");
        Self {
            rx,
            label: label.into(),
            progress: Progress::default(),
        }
    }

    /// Takes the result once the job is done.
    pub fn poll(&mut self) -> Option<Result<T>> {
        while let Ok(m) = self.rx.try_recv() {
            match m {
                Msg::Progress(p) => self.progress = p,
                Msg::Done(r) => return Some(r),
            }
        }
        None
    }

    pub fn show(&self, ui: &mut egui::Ui) {
        ui.add(
            egui::ProgressBar::new(self.progress.fraction())
                .text(format!(
                    "{} {}/{}",
                    self.label, self.progress.done, self.progress.total
                ))
                .desired_width(320.0),
        );
    }
}
