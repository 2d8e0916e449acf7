//! `leoclr-app`: the desktop window. Chooses the devices, then hands everything to `LeoclrApp`.

use std::path::PathBuf;
use std::sync::Arc;

use burn::tensor::Device;
use clap::Parser;
use eframe::egui;
use eframe::egui_wgpu::{WgpuConfiguration, WgpuSetup, WgpuSetupExisting};
use leoclr_app::{LeoclrApp, Tab};
use leoclr_core::BackendKind;

#[derive(Parser, Debug)]
#[command(
    name = "leoclr-app",
    version,
    about = "LeOCLR desktop app: views, training, retrieval, map"
)]
struct Args {
    /// Dataset to open at start.
    #[arg(long, default_value = "assets/fashion-mnist-subset")]
    data: PathBuf,
    /// Checkpoint file or run directory to load at start.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Run directory to show in the Training panel at start.
    #[arg(long)]
    run: Option<PathBuf>,
    /// Where inference and app-started training compute: auto (wgpu on a real GPU, else CPU),
    /// cpu or wgpu.
    #[arg(long, default_value = "auto")]
    compute: String,
    /// Take a screenshot of each panel into this directory, then quit (for the docs).
    #[arg(long)]
    screenshots: Option<PathBuf>,
}

/// One wgpu device for egui's rendering and burn's compute: burn creates it (with the features and
/// limits its kernels need, which egui's default request lacks) and egui renders on it.
fn devices(compute: &str) -> (Device, Option<WgpuSetup>, String) {
    if compute == "cpu" {
        return (
            Device::flex(),
            None,
            "render: wgpu (own device) · compute: cpu (flex)".into(),
        );
    }
    match Device::wgpu_options().init_with_setup() {
        Ok((device, s)) => {
            let info = s.adapter.get_info();
            let shared = WgpuSetup::Existing(WgpuSetupExisting {
                instance: s.instance,
                adapter: s.adapter,
                device: s.device,
                queue: s.queue,
            });
            let software = info.device_type == eframe::egui_wgpu::wgpu::DeviceType::Cpu;
            if compute == "auto" && software {
                // A software rasteriser (lavapipe): burn's CPU backend is far faster for compute.
                (
                    Device::flex(),
                    Some(shared),
                    format!(
                        "render: wgpu on {} · compute: cpu (flex; the adapter is software)",
                        info.name
                    ),
                )
            } else {
                (
                    device,
                    Some(shared),
                    format!(
                        "one wgpu device for render and compute: {} ({:?})",
                        info.name, info.backend
                    ),
                )
            }
        }
        Err(e) => (
            Device::flex(),
            None,
            format!("render: wgpu (own device) · compute: cpu (burn wgpu unavailable: {e})"),
        ),
    }
}

/// Drives the app through its panels and saves a PNG of each (`--screenshots`).
struct Tour {
    dir: PathBuf,
    step: usize,
    frames: usize,
    pending: Arc<std::sync::atomic::AtomicUsize>,
}

struct Shell {
    app: LeoclrApp,
    tour: Option<Tour>,
}

impl Shell {
    fn tour(&mut self, ctx: &egui::Context) {
        let Some(t) = &mut self.tour else { return };
        t.frames += 1;
        ctx.request_repaint();
        let stops = [Tab::Views, Tab::Training, Tab::Retrieval, Tab::Map];
        if t.step >= stops.len() {
            if t.pending.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
            return;
        }
        // A screenshot arrives some frames after it is requested: wait for it before moving on.
        if t.pending.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            t.frames = 0;
            return;
        }
        let tab = stops[t.step];
        if t.frames == 1 {
            self.app.tab = tab;
            match tab {
                Tab::Views => self.app.views.selected = Some(0),
                Tab::Retrieval => {
                    self.app.shared.start_gallery(ctx);
                    self.app.retrieval.query = Some(leoclr_app::retrieval::Query::Index(0));
                }
                _ => {}
            }
        }
        let busy =
            self.app.shared.workspace.gallery_job.is_some() || self.app.training.is_running();
        if t.frames > 30 && !busy {
            let path = t.dir.join(format!("{}.png", tab.name().to_lowercase()));
            let pending = t.pending.clone();
            pending.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            ctx.request_screenshot(move |img| {
                let bytes: Vec<u8> = img.pixels.iter().flat_map(|c| c.to_array()).collect();
                let res = image::RgbaImage::from_raw(img.size[0] as u32, img.size[1] as u32, bytes)
                    .ok_or_else(|| "bad screenshot buffer".to_string())
                    .and_then(|i| i.save(&path).map_err(|e| e.to_string()));
                match res {
                    Ok(()) => println!("saved {}", path.display()),
                    Err(e) => eprintln!("error: {}: {e}", path.display()),
                }
                pending.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            });
            t.step += 1;
            t.frames = 0;
        }
    }
}

impl eframe::App for Shell {
    fn raw_input_hook(&mut self, _ctx: &egui::Context, raw: &mut egui::RawInput) {
        // The tour hovers a point of the map, as a user would.
        if let Some(t) = &self.tour
            && self.app.tab == Tab::Map
            && t.frames > 20
            && let Some(p) = self.app.map.point_pos(0)
        {
            raw.events.push(egui::Event::PointerMoved(p));
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.tour(ui.ctx());
        self.app.ui(ui);
    }
}

fn main() -> eframe::Result {
    leoclr_core::default_device_on_cpu();
    let args = Args::parse();
    let (device, setup, note) = devices(&args.compute);
    let mut app = LeoclrApp::new(device, note);
    if args.compute == "wgpu" {
        app.training.spec.backend = BackendKind::Wgpu;
    }
    app.open_dataset(&args.data);
    if let Some(m) = &args.model {
        app.load_model(m);
    }
    if let Some(r) = &args.run {
        app.training.open_path = r.display().to_string();
        app.training.open_run(r.clone(), &mut app.shared);
    }
    let tour = args.screenshots.map(|dir| {
        let _ = std::fs::create_dir_all(&dir);
        Tour {
            dir,
            step: 0,
            frames: 0,
            pending: Arc::default(),
        }
    });
    let mut options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("LeOCLR")
            .with_inner_size([1280.0, 800.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    if let Some(s) = setup {
        options.wgpu_options = WgpuConfiguration {
            wgpu_setup: s,
            ..Default::default()
        };
    }
    eframe::run_native(
        "LeOCLR",
        options,
        Box::new(|_cc| Ok(Box::new(Shell { app, tour }))),
    )
}
