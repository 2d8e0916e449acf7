//! The LeOCLR app in the browser, as two modules built from this crate (web/build.sh):
//!
//! - the *viewer* (default features), what the page loads first: the app on burn's CPU backend
//!   (views, retrieval, map, and "Train here" on the CPU), without CubeCL's WebGPU compiler,
//!   which is ~60% of the full module's code;
//! - the *training module* (feature `webgpu`): the same app with WebGPU training, loaded only
//!   when a visitor whose browser has a WebGPU adapter asks for it; the page then hands the
//!   canvas over from one module to the other ([`stop`], then the other's [`start`]).
//!
//! The bundled model, gallery and its precomputed embeddings (made by `leoclr export`, in
//! `assets/web`) are fetched by the page beside the module and handed over through [`assets`]
//! after the first frame, which says it is loading them. Inference (views, uploads, gallery
//! snapshots while training) runs on the CPU backend: one image at a time is instant there, and
//! it needs no asynchronous read-back. Uploads arrive through [`upload`]; [`state_json`] reports
//! what is on screen, for the browser test.
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

/// The bundled files, as the page fetched them.
struct Assets {
    model: Vec<u8>,
    images: Vec<u8>,
    labels: Vec<u8>,
    features: Vec<u8>,
}

thread_local! {
    static UPLOADS: RefCell<Vec<(String, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
    static ASSETS: RefCell<Option<Assets>> = const { RefCell::new(None) };
    static STATE: RefCell<String> = const { RefCell::new(String::new()) };
    /// To wake the app when the page hands it something (egui paints only on events).
    static CTX: RefCell<Option<egui::Context>> = const { RefCell::new(None) };
    static RUNNER: RefCell<Option<eframe::WebRunner>> = const { RefCell::new(None) };
}

fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

fn wake() {
    CTX.with(|c| {
        if let Some(ctx) = c.borrow().as_ref() {
            ctx.request_repaint();
        }
    });
}

/// Which module this is: "viewer" or "webgpu".
#[wasm_bindgen]
pub fn module_kind() -> String {
    if cfg!(feature = "webgpu") {
        "webgpu"
    } else {
        "viewer"
    }
    .into()
}

/// Hands an uploaded or dropped file to the app (it becomes the retrieval query).
#[wasm_bindgen]
pub fn upload(name: String, bytes: Vec<u8>) {
    UPLOADS.with(|u| u.borrow_mut().push((name, bytes)));
    wake();
}

/// Hands the bundled files over (fetched by the page while the module starts).
#[wasm_bindgen]
pub fn assets(model: Vec<u8>, images: Vec<u8>, labels: Vec<u8>, features: Vec<u8>) {
    ASSETS.with(|a| {
        *a.borrow_mut() = Some(Assets {
            model,
            images,
            labels,
            features,
        })
    });
    wake();
}

/// What is on screen, as JSON (for tests and the curious).
#[wasm_bindgen]
pub fn state_json() -> String {
    STATE.with(|s| s.borrow().clone())
}

/// Stops the app and frees the canvas (before the other module starts on it).
#[wasm_bindgen]
pub fn stop() {
    if let Some(r) = RUNNER.with(|r| r.borrow_mut().take()) {
        r.destroy();
    }
    CTX.with(|c| c.borrow_mut().take());
}

/// What the page tells [`start`] (JSON).
#[derive(Default)]
struct Options {
    /// The browser has a WebGPU adapter (the viewer then offers the training module).
    webgpu_adapter: bool,
    /// The training module's download size in MB, for the offer.
    webgpu_module_mb: f64,
    /// Start training as soon as the data is in (the training module, when the visitor asked).
    train: bool,
    from_scratch: bool,
}

impl Options {
    fn parse(json: &str) -> Self {
        let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
        Self {
            webgpu_adapter: v["webgpu_adapter"].as_bool().unwrap_or(false),
            webgpu_module_mb: v["webgpu_module_mb"].as_f64().unwrap_or(0.0),
            train: v["train"].as_bool().unwrap_or(false),
            from_scratch: v["from_scratch"].as_bool().unwrap_or(false),
        }
    }
}

/// Opens the bundled gallery, model and embeddings in `app`.
fn load_bundled(app: &mut LeoclrApp, a: Assets) -> Result<(), AppError> {
    let cpu = Device::flex();
    let ds = leoclr_data::idx::from_files(
        (Path::new("gallery-images-idx3-ubyte.gz"), a.images),
        (Path::new("gallery-labels-idx1-ubyte.gz"), a.labels),
        true,
    )?;
    let ds = Arc::new(ds);
    app.shared
        .workspace
        .set_dataset("Fashion-MNIST gallery", Split::Test, ds.clone());
    let model = LoadedModel::from_bytes(Path::new("model.leoclr"), &a.model, &cpu)?;
    let feats: Vec<f32> = a
        .features
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let dim = feats.len() / ds.len().max(1);
    let gallery = Gallery::from_parts(model.id, ds, dim, feats)?;
    app.shared.workspace.set_model(model);
    app.shared.workspace.gallery = Some(gallery);
    Ok(())
}

struct WebApp {
    app: LeoclrApp,
    options: Options,
    /// The bundled files are in (and when, from `start`).
    loaded_ms: Option<f64>,
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
        // The page's own fields, then what every panel publishes of itself.
        let mut state = serde_json::json!({
            "frame": self.frame,
            "module": module_kind(),
            "first_frame_ms": self.first_frame_ms,
            "loaded_ms": self.loaded_ms,
            "retrieval_ms": self.retrieval_ms,
            "tab": a.tab.name(),
            "notice": a.shared.status.notice.as_ref().map(|n| serde_json::json!({"error": n.error, "text": n.text})),
            "device": a.shared.workspace.device_note,
            "model": a.shared.workspace.model.as_ref().map(|m| m.path.display().to_string()),
            "marks": marks,
        });
        if let Some(o) = state.as_object_mut() {
            o.extend(a.published());
        }
        STATE.with(|s| *s.borrow_mut() = state.to_string());
    }
}

impl WebApp {
    /// The bundled files arrived: open them; the training module starts training if asked.
    fn loaded(&mut self, a: Assets) {
        self.loaded_ms = Some(now_ms() - self.started_ms);
        let app = &mut self.app;
        if let Err(e) = load_bundled(app, a) {
            app.shared
                .status
                .error(format!("cannot open the bundled files: {e}"));
            return;
        }
        app.shared.status.notice = None;
        if app.training.device_name.contains("no WebGPU") {
            app.shared
                .status
                .info("No WebGPU adapter in this browser: Train here runs on the CPU backend.");
        }
        app.views.selected = Some(0);
        if self.options.train {
            app.tab = Tab::Training;
            app.training.from_scratch = self.options.from_scratch;
            app.training.start(&mut app.shared);
        }
    }

    /// The visitor asked for WebGPU training: the page loads the training module and hands it
    /// the canvas (`window.leoclrUseWebgpu`, see web/index.html).
    fn ask_for_webgpu(&mut self) {
        let opts = serde_json::json!({"from_scratch": self.app.training.from_scratch}).to_string();
        let f = web_sys::window()
            .and_then(|w| js_sys::Reflect::get(&w, &JsValue::from_str("leoclrUseWebgpu")).ok())
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        match f {
            Some(f) => {
                if f.call1(&JsValue::NULL, &JsValue::from_str(&opts)).is_err() {
                    self.app
                        .shared
                        .status
                        .error("the page could not load the WebGPU module");
                }
            }
            None => self
                .app
                .shared
                .status
                .error("this page cannot load the WebGPU module"),
        }
    }
}

impl eframe::App for WebApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let t0 = now_ms();
        if self.loaded_ms.is_none()
            && let Some(a) = ASSETS.with(|a| a.borrow_mut().take())
        {
            self.loaded(a);
        }
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
        if std::mem::take(&mut self.app.training.upgrade_requested) {
            self.ask_for_webgpu();
        }
        self.frame += 1;
        if self.first_frame_ms.is_none() {
            self.first_frame_ms = Some(now_ms() - self.started_ms);
        }
        self.publish();
    }
}

/// Starts the app on the canvas with id `canvas_id`; `options` is JSON (see [`Options`]). The
/// first frame comes before the bundled files: it says they are loading.
#[wasm_bindgen]
pub async fn start(canvas_id: String, options: String) -> Result<(), JsValue> {
    let started_ms = now_ms();
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&format!("leoclr panicked: {info}").into());
    }));
    let options = Options::parse(&options);
    let (train_device, train_name) = training_device(&options).await;
    let mut app = LeoclrApp::new(
        Device::flex(),
        format!("inference: CPU · training: {train_name}"),
    );
    app.training = TrainHere::new(train_device, train_name);
    if !cfg!(feature = "webgpu") && options.webgpu_adapter {
        app.training.offer = Some(format!(
            "Train on WebGPU (loads the {:.1} MB training module)",
            options.webgpu_module_mb
        ));
    }
    app.retrieval.k = 10;
    app.tab = Tab::Views;
    app.shared
        .status
        .info("Loading the bundled model and gallery…");
    let canvas = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(&canvas_id))
        .ok_or_else(|| JsValue::from_str("no canvas element"))?
        .dyn_into::<web_sys::HtmlCanvasElement>()?;
    let web = WebApp {
        app,
        options,
        loaded_ms: None,
        frame: 0,
        started_ms,
        first_frame_ms: None,
        query_ms: started_ms,
        retrieval_ms: None,
    };
    let runner = eframe::WebRunner::new();
    runner
        .start(
            canvas,
            eframe::WebOptions::default(),
            Box::new(|cc| {
                CTX.with(|c| *c.borrow_mut() = Some(cc.egui_ctx.clone()));
                Ok(Box::new(web))
            }),
        )
        .await?;
    RUNNER.with(|r| *r.borrow_mut() = Some(runner));
    Ok(())
}

/// Where "Train here" runs: WebGPU in the training module when the browser has an adapter, else
/// the CPU backend.
async fn training_device(options: &Options) -> (Device, String) {
    #[cfg(feature = "webgpu")]
    match Device::wgpu_options().init_async().await {
        Ok(d) => return (d, "WebGPU".to_string()),
        Err(e) => {
            web_sys::console::info_1(&format!("leoclr: no WebGPU for training: {e}").into());
        }
    }
    let name = if options.webgpu_adapter {
        "the CPU"
    } else {
        "the CPU (no WebGPU adapter)"
    };
    (Device::flex(), name.to_string())
}
