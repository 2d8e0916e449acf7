//! The LeOCLR app in the browser. The page (`web/index.html`) calls [`start`]; it opens the
//! bundled Fashion-MNIST gallery, the bundled model and its precomputed embeddings (made by
//! `leoclr export`, in `assets/web`), picks WebGPU for "Train here" when the browser offers an
//! adapter (else the CPU, and says so), and runs the same `LeoclrApp` as the desktop.
//!
//! Inference (views, uploads) runs on burn's CPU backend: one image at a time is instant there,
//! and it needs no asynchronous read-back. Uploads arrive through [`upload`]; [`state_json`]
//! reports what is on screen, for the browser test.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use burn::tensor::Device;
use eframe::egui;
use leoclr_app::gallery::Gallery;
use leoclr_app::model::LoadedModel;
use leoclr_app::retrieval::Query;
use leoclr_app::train_here::TrainHere;
use leoclr_app::{AppError, LeoclrApp, Tab};
use leoclr_data::Split;
use wasm_bindgen::prelude::*;

const MODEL: &[u8] = include_bytes!("../../../assets/web/model.leoclr");
const IMAGES: &[u8] = include_bytes!("../../../assets/web/gallery-images-idx3-ubyte.gz");
const LABELS: &[u8] = include_bytes!("../../../assets/web/gallery-labels-idx1-ubyte.gz");
const FEATURES: &[u8] = include_bytes!("../../../assets/web/gallery-features.f32");

thread_local! {
    static UPLOADS: RefCell<Vec<(String, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
    static STATE: RefCell<String> = const { RefCell::new(String::new()) };
    /// To wake the app when the page hands it something (egui paints only on events).
    static CTX: RefCell<Option<egui::Context>> = const { RefCell::new(None) };
}

fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// Hands an uploaded or dropped file to the app (it becomes the retrieval query).
#[wasm_bindgen]
pub fn upload(name: String, bytes: Vec<u8>) {
    UPLOADS.with(|u| u.borrow_mut().push((name, bytes)));
    CTX.with(|c| {
        if let Some(ctx) = c.borrow().as_ref() {
            ctx.request_repaint();
        }
    });
}

/// What is on screen, as JSON (for tests and the curious).
#[wasm_bindgen]
pub fn state_json() -> String {
    STATE.with(|s| s.borrow().clone())
}

fn bundled_app(train_device: Device, train_name: String) -> Result<LeoclrApp, AppError> {
    let cpu = Device::flex();
    let mut app = LeoclrApp::new(
        cpu.clone(),
        format!("inference: CPU · training: {train_name}"),
    );
    app.training = TrainHere::new(train_device, train_name);
    let ds = leoclr_data::idx::from_files(
        (Path::new("gallery-images-idx3-ubyte.gz"), IMAGES.to_vec()),
        (Path::new("gallery-labels-idx1-ubyte.gz"), LABELS.to_vec()),
        true,
    )?;
    let ds = Arc::new(ds);
    app.shared
        .workspace
        .set_dataset("Fashion-MNIST gallery", Split::Test, ds.clone());
    let model = LoadedModel::from_bytes(Path::new("model.leoclr"), MODEL, &cpu)?;
    let feats: Vec<f32> = FEATURES
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let dim = feats.len() / ds.len().max(1);
    let gallery = Gallery::from_parts(model.id, ds, dim, feats)?;
    app.shared.workspace.set_model(model);
    app.shared.workspace.gallery = Some(gallery);
    app.retrieval.k = 10;
    Ok(app)
}

struct WebApp {
    app: LeoclrApp,
    frame: u64,
    started_ms: f64,
    first_frame_ms: Option<f64>,
    /// When the current retrieval query was set.
    query_ms: f64,
    retrieval_ms: Option<f64>,
}

/// Which retrieval query is set, to notice a new one.
fn query_id(a: &LeoclrApp) -> Option<String> {
    match &a.retrieval.query {
        Some(Query::Index(i)) => Some(format!("#{i}")),
        Some(Query::File { name, .. }) => Some(name.clone()),
        None => None,
    }
}

impl WebApp {
    fn publish(&self) {
        let a = &self.app;
        let marks: serde_json::Map<String, serde_json::Value> = a
            .shared
            .status
            .marks
            .iter()
            .map(|(k, r)| (k.clone(), serde_json::json!([r.center().x, r.center().y])))
            .collect();
        let boxes: Vec<[f32; 4]> = a
            .views
            .sample
            .as_ref()
            .map(|s| {
                s.views[..2]
                    .iter()
                    .map(|(_, p)| [p.crop.x, p.crop.y, p.crop.w, p.crop.h])
                    .collect()
            })
            .unwrap_or_default();
        let sample = a.views.sample.as_ref();
        let views = serde_json::json!({
            "selected": a.views.selected,
            "boxes": boxes,
            "photo": sample.and_then(|s| s.photo()),
            "size": sample.map(|s| [s.original_size.0, s.original_size.1]),
            "similarity": sample.and_then(|s| s.similarity),
        });
        let query = match &a.retrieval.query {
            Some(Query::Index(i)) => serde_json::json!(i),
            Some(Query::File { name, .. }) => serde_json::json!(name),
            None => serde_json::Value::Null,
        };
        let neighbours: Vec<(usize, f32)> = a
            .retrieval
            .results
            .as_ref()
            .map(|r| r.neighbours.clone())
            .unwrap_or_default();
        let t = &a.training;
        let losses = t.losses.borrow();
        let state = serde_json::json!({
            "frame": self.frame,
            "first_frame_ms": self.first_frame_ms,
            "retrieval_ms": self.retrieval_ms,
            "tab": a.tab.name(),
            "notice": a.shared.status.notice.as_ref().map(|n| serde_json::json!({"error": n.error, "text": n.text})),
            "device": a.shared.workspace.device_note,
            "train_device": t.device_name,
            "marks": marks,
            "views": views,
            "map": {"photo": a.map.photo.map(|p| [p.x, p.y])},
            "retrieval": {"query": query, "k": a.retrieval.k, "neighbours": neighbours},
            "train": {"steps": t.steps, "losses": losses.len(), "last_loss": losses.last().map(|l| l[1]), "error": t.error},
        });
        STATE.with(|s| *s.borrow_mut() = state.to_string());
    }
}

impl eframe::App for WebApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let t0 = now_ms();
        let query_before = query_id(&self.app);
        for (name, bytes) in UPLOADS.with(|u| std::mem::take(&mut *u.borrow_mut())) {
            let img = leoclr_app::error::decode_dropped(&name, &bytes);
            self.app.query_file(name, img);
        }
        let before = self
            .app
            .retrieval
            .results
            .as_ref()
            .map(|r| r.neighbours.clone());
        self.app.ui(ui);
        if query_id(&self.app) != query_before {
            self.query_ms = t0;
        }
        let after = self
            .app
            .retrieval
            .results
            .as_ref()
            .map(|r| r.neighbours.clone());
        if after.is_some() && after != before {
            // From the frame that set the query to the one that answered it: embedding (uploads,
            // between frames) plus the search.
            self.retrieval_ms = Some(now_ms() - self.query_ms);
        }
        self.frame += 1;
        if self.first_frame_ms.is_none() {
            self.first_frame_ms = Some(now_ms() - self.started_ms);
        }
        self.publish();
    }
}

/// Starts the app on the canvas with id `canvas_id`.
#[wasm_bindgen]
pub async fn start(canvas_id: String) -> Result<(), JsValue> {
    let started_ms = now_ms();
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&format!("leoclr panicked: {info}").into());
    }));
    let (train_device, train_name) = match Device::wgpu_options().init_async().await {
        Ok(d) => (d, "WebGPU".to_string()),
        Err(e) => {
            web_sys::console::info_1(&format!("leoclr: no WebGPU for training: {e}").into());
            (Device::flex(), "the CPU (no WebGPU adapter)".to_string())
        }
    };
    let webgpu = train_name == "WebGPU";
    let mut app =
        bundled_app(train_device, train_name).map_err(|e| JsValue::from_str(&e.to_string()))?;
    if !webgpu {
        app.shared
            .status
            .info("No WebGPU adapter in this browser: Train here runs on the CPU backend.");
    }
    app.tab = Tab::Views;
    app.views.selected = Some(0);
    let canvas = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(&canvas_id))
        .ok_or_else(|| JsValue::from_str("no canvas element"))?
        .dyn_into::<web_sys::HtmlCanvasElement>()?;
    let web = WebApp {
        app,
        frame: 0,
        started_ms,
        first_frame_ms: None,
        query_ms: started_ms,
        retrieval_ms: None,
    };
    eframe::WebRunner::new()
        .start(
            canvas,
            eframe::WebOptions::default(),
            Box::new(|cc| {
                CTX.with(|c| *c.borrow_mut() = Some(cc.egui_ctx.clone()));
                Ok(Box::new(web))
            }),
        )
        .await
}
