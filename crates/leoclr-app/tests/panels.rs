//! Drives each panel of the app headless (egui_kittest, no GPU): select and re-sample views, start
//! / pause / stop a short CPU training run, open a run with a corrupt checkpoint, retrieve the
//! neighbours of a dataset image and of dropped files, hover and click the map.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::tensor::Device;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{By, Queryable};
use leoclr_app::panel::Panel;
use leoclr_app::retrieval::Query;
use leoclr_app::{LeoclrApp, Tab};
use leoclr_core::run::RunMeta;
use leoclr_core::{Method, OriginalBranch, TrainConfig, Trainer, checkpoint};
use leoclr_data::idx;

/// A file dropped on the window, as the native integration hands it over.
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// A labelled 16x16 IDX dataset: each class a bright bar at its own row, plus noise.
fn fixture(dir: &Path, n: usize) {
    let side = 16;
    let mut pixels = Vec::with_capacity(n * side * side);
    let mut labels = Vec::with_capacity(n);
    let mut s = 12345u32;
    for i in 0..n {
        let class = (i % 4) as u8;
        labels.push(class);
        for y in 0..side {
            for _x in 0..side {
                s = s.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let noise = (s >> 24) as u8 / 4;
                let bar = if y / 4 == class as usize { 180 } else { 20 };
                pixels.push(bar + noise);
            }
        }
    }
    for prefix in ["train", "t10k"] {
        std::fs::write(
            dir.join(format!("{prefix}-images-idx3-ubyte")),
            idx::encode(&[n, side, side], &pixels),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{prefix}-labels-idx1-ubyte")),
            idx::encode(&[n], &labels),
        )
        .unwrap();
    }
}

/// A checkpoint of a freshly initialised tiny model (what the panels need is any model).
fn model(dir: &Path) -> PathBuf {
    let mut cfg = TrainConfig::tiny_test(
        1,
        Method::Leoclr {
            original_branch: OriginalBranch::Key,
        },
    );
    cfg.model.small_stem = true;
    let t = Trainer::new(cfg, &Device::flex(), 4).unwrap();
    let aug = leoclr_core::run::augment(1, 16, None).unwrap();
    let meta = RunMeta {
        augment: Some(aug),
        view_size: Some(16),
        ..RunMeta::default()
    };
    checkpoint::save(dir, &t, &meta).unwrap();
    dir.to_path_buf()
}

fn harness(data: &Path) -> Harness<'static, LeoclrApp> {
    let mut app = LeoclrApp::new(Device::flex(), "test: cpu");
    app.open_dataset(data);
    assert!(
        app.shared.workspace.dataset().is_some(),
        "{:?}",
        app.shared.status.notice
    );
    Harness::builder()
        .with_size(egui::vec2(1280.0, 860.0))
        .with_max_steps(64)
        .build_ui_state(|ui, app: &mut LeoclrApp| app.ui(ui), app)
}

/// Steps the UI until `done` holds (workers run on their own threads meanwhile).
fn wait_for(h: &mut Harness<'_, LeoclrApp>, what: &str, done: impl Fn(&LeoclrApp) -> bool) {
    let start = Instant::now();
    // The first frame delivers the click that starts the work.
    h.step();
    while !done(h.state()) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}; status: {:?} / {} / embedding job: {:?}",
            h.state().shared.status.notice,
            h.state().training.status,
            h.state()
                .shared
                .workspace
                .gallery_job
                .as_ref()
                .map(|j| j.progress)
        );
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.step();
}

fn crop_text(app: &LeoclrApp) -> String {
    let s = app.views.sample.as_ref().expect("a sample");
    format!(
        "{:?}",
        s.views.iter().map(|(_, v)| v.1.crop).collect::<Vec<_>>()
    )
}

#[test]
fn views_select_resample_and_sliders() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), 24);
    let mut h = harness(dir.path());
    h.run();
    h.get_by_label("Select an image on the left.");
    h.get_by_label("image 3 · 3").click();
    h.run();
    assert_eq!(h.state().views.selected, Some(3));
    // The heading names the selected image too.
    assert_eq!(h.query_all_by_label("image 3 · 3").count(), 2);
    h.get_by_label("crop 1");
    h.get_by_label("original");
    // Resize + flip only without a model: the original gets no colour augmentation.
    let original = |h: &Harness<'_, LeoclrApp>| {
        h.state()
            .views
            .sample
            .as_ref()
            .expect("a sample")
            .views
            .original
            .1
            .clone()
    };
    assert!(original(&h).jitter.is_none() && !original(&h).grayscale);
    // "augmented": the crops' colour pipeline on the original too (jitter at p = 0.8).
    h.get_by_label("augmented").click();
    h.run();
    assert_eq!(
        h.state().views.original_aug,
        Some(leoclr_data::OriginalAug::Aug)
    );
    let mut seen = original(&h).jitter.is_some();
    for _ in 0..8 {
        if seen {
            break;
        }
        h.get_by_label("Re-sample").click();
        h.run();
        seen = original(&h).jitter.is_some();
    }
    assert!(seen, "the augmented original never drew a colour jitter");
    assert_eq!(original(&h).crop.w, 16.0, "the original stays uncropped");
    h.get_by_label("as trained").click();
    h.run();
    assert!(
        !h.query_all_by_label_contains("box ")
            .collect::<Vec<_>>()
            .is_empty()
    );
    let before = crop_text(h.state());

    h.get_by_label("Re-sample").click();
    h.run();
    assert_ne!(crop_text(h.state()), before, "re-sample draws new crops");

    // Moving the scale slider's minimum to 0.9 re-samples crops covering most of the image.
    h.get(By::new().label("min").role(egui::accesskit::Role::Slider))
        .set_value_accesskit(0.9);
    h.run();
    assert_eq!(h.state().views.scale, (0.9, 1.0));
    let s = h.state().views.sample.as_ref().unwrap();
    for (_, p) in [&s.views.crop1, &s.views.crop2] {
        assert!(p.crop.w * p.crop.h >= 0.85 * 256.0, "{:?}", p.crop);
    }
    h.get_by_label_contains("Load a model");

    // With a model: the three similarities appear.
    let mdir = tempfile::tempdir().unwrap();
    let m = model(mdir.path());
    h.state_mut().load_model(&m);
    // The views are embedded on a worker thread.
    wait_for(&mut h, "the similarities", |a| {
        a.views
            .sample
            .as_ref()
            .is_some_and(|s| s.similarity.is_some())
    });
    let sim = h.state().views.sample.as_ref().unwrap().similarity.unwrap();
    let names = [
        "crop 1 vs original",
        "crop 2 vs original",
        "crop 1 vs crop 2",
    ];
    let values = [sim.crop1_original, sim.crop2_original, sim.crop1_crop2];
    for (name, v) in names.iter().zip(values) {
        assert!((-1.0..=1.0).contains(&v));
        h.get_by_label(&format!("{name}: {v:.3}"));
    }
}

#[test]
fn training_start_pause_stop_and_corrupt_run() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), 64);
    let runs = tempfile::tempdir().unwrap();
    let mut h = harness(dir.path());
    {
        let t = &mut h.state_mut().training;
        t.spec.epochs = 1000;
        t.spec.batch = 16;
        t.spec.queue = 64;
        t.spec.model.backbone = leoclr_core::Backbone::Tiny;
        t.spec.out = runs.path().join("run");
    }
    h.get_by_label("Training").click();
    h.run();
    h.get_by_label("Start").click();
    wait_for(&mut h, "the first steps", |a| {
        a.training.curves.lr.len() >= 2
    });
    h.get_by_label_contains("running: ");

    h.get_by_label("Pause").click();
    h.run();
    h.get_by_label("Continue");
    h.get_by_label_contains("paused");
    h.get_by_label("Continue").click();
    h.run();

    h.get_by_label("Stop").click();
    wait_for(&mut h, "the stop", |a| !a.training.is_running());
    let status = h.state().training.status.clone();
    assert!(status.starts_with("stopped after"), "{status}");
    h.get_by_label_contains("stopped after");
    h.get_by_label("Start"); // ready again

    // A run directory whose checkpoint is corrupt: the curves show, resuming fails with a message,
    // and nothing on disk changes.
    let bad = runs.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("metrics.jsonl"),
        "{\"epoch\":1,\"loss\":5.0,\"lr\":0.06,\"images_per_s\":100.0,\"step\":4,\"knn_top1\":0.5}\n",
    )
    .unwrap();
    let garbage = b"LEOCLR\x00\x01 this is not a checkpoint".to_vec();
    std::fs::write(bad.join("checkpoint.leoclr"), &garbage).unwrap();
    h.state_mut().training.open_path = bad.display().to_string();
    h.get_by_label("Open run").click();
    h.run();
    assert_eq!(h.state().training.curves.epochs.len(), 1);
    h.get_by_label("Resume run").click();
    wait_for(&mut h, "the failed resume", |a| !a.training.is_running());
    let notice = h.state().shared.status.notice.clone().unwrap();
    assert!(
        notice.error && notice.text.contains("checkpoint.leoclr"),
        "{notice:?}"
    );
    h.get_by_label_contains("training failed");
    assert_eq!(
        std::fs::read(bad.join("checkpoint.leoclr")).unwrap(),
        garbage
    );
    assert_eq!(std::fs::read_dir(&bad).unwrap().count(), 2);
}

#[test]
fn training_runs_to_the_end_and_loads_the_model() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), 32);
    let runs = tempfile::tempdir().unwrap();
    let mut h = harness(dir.path());
    {
        let t = &mut h.state_mut().training;
        t.spec.epochs = 2;
        t.spec.batch = 16;
        t.spec.queue = 32;
        t.spec.out = runs.path().join("run");
    }
    // Text typed in the top bar but not opened does not change what the run trains on.
    h.state_mut().top.data_path = "/elsewhere/not-opened".into();
    h.get_by_label("Training").click();
    h.run();
    // Views made on the training device, chosen in the form.
    h.get(
        By::new()
            .label("augment on")
            .role(egui::accesskit::Role::ComboBox),
    )
    .click();
    h.run();
    h.get_by_label("device (kernels on the backend)").click();
    h.run();
    assert_eq!(
        h.state().training.spec.augment_on,
        leoclr_core::augment_device::AugmentOn::Device
    );
    h.get_by_label("Start").click();
    wait_for(&mut h, "the end of training", |a| !a.training.is_running());
    let config = std::fs::read_to_string(runs.path().join("run/config.json")).unwrap();
    assert!(config.contains("\"augment_on\": \"device\""), "{config}");
    let spec: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(
        spec["spec"]["data"]["data"].as_str(),
        dir.path().to_str(),
        "trains on the opened dataset"
    );
    let t = &h.state().training;
    assert!(t.status.starts_with("finished"), "{}", t.status);
    assert_eq!(t.curves.epochs.len(), 2);
    assert!(t.curves.epochs.iter().all(|r| r.knn_top1.is_some()));
    // The metrics on disk are the ones plotted.
    let logged = leoclr_core::run::read_metrics(&runs.path().join("run")).unwrap();
    assert_eq!(logged.len(), 2);
    for (a, b) in logged.iter().zip(&t.curves.epochs) {
        assert_eq!(
            (a.epoch, a.step, a.loss, a.knn_top1),
            (b.epoch, b.step, b.loss, b.knn_top1)
        );
    }
    h.get_by_label("Load this run's model").click();
    h.run();
    assert_eq!(
        h.state()
            .shared
            .workspace
            .model
            .as_ref()
            .unwrap()
            .meta
            .epoch,
        2
    );
}

#[test]
fn retrieval_by_click_and_drop_then_map() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), 40);
    let mdir = tempfile::tempdir().unwrap();
    let mut h = harness(dir.path());
    h.state_mut().load_model(model(mdir.path()));
    h.get_by_label("Retrieval").click();
    h.run();
    // A model and data: Retrieval embeds the dataset by itself.
    wait_for(&mut h, "the embeddings", |a| {
        a.shared.workspace.gallery.is_some()
    });

    h.get_by_label("image 5 · 1").click();
    h.run();
    h.get_by_label("query: image 5 · 1");
    h.get_by_label("10 nearest neighbours (exact search)");
    let r = h.state().retrieval.results.as_ref().unwrap();
    assert_eq!(r.neighbours.len(), 10);
    assert!(r.neighbours.iter().all(|(j, _)| *j != 5));
    assert!(r.neighbours.windows(2).all(|w| w[0].1 >= w[1].1));
    let p = r.precision.unwrap();
    h.get_by_label(&format!(
        "precision@10: {:.0}% share the query's label",
        100.0 * p
    ));

    // A dropped image file (RGB, another size) is converted and answered.
    let png = mdir.path().join("photo.png");
    image::RgbImage::from_fn(40, 30, |x, _| image::Rgb([x as u8 * 6, 90, 200]))
        .save(&png)
        .unwrap();
    h.input_mut()
        .dropped_files
        .push(Arc::new(Dropped(png.clone())));
    h.run();
    assert!(matches!(
        h.state().retrieval.query,
        Some(Query::File { .. })
    ));
    // The file is embedded on a worker thread; its answer has no label, so no precision.
    wait_for(&mut h, "the dropped file's neighbours", |a| {
        a.retrieval
            .results
            .as_ref()
            .is_some_and(|r| r.precision.is_none())
    });
    h.get_by_label(&format!("query: {} (40x30)", png.display()));
    h.get_by_label("10 nearest neighbours (exact search)");
    h.get_by_label("the query has no label: precision@k not defined");
    // The photo is in Views too: its two crops inside its own bounds, the three views and, with
    // the model, the three similarities.
    h.get_by_label("Views").click();
    h.run();
    h.get_by_label(&format!("{} (your image)", png.display()));
    wait_for(&mut h, "the photo's similarities", |a| {
        a.views
            .sample
            .as_ref()
            .is_some_and(|s| s.similarity.is_some())
    });
    let s = h.state().views.sample.as_ref().unwrap();
    assert_eq!(s.original_size, (40, 30));
    for (_, p) in [&s.views.crop1, &s.views.crop2] {
        let c = p.crop;
        assert!(
            c.x >= 0.0 && c.y >= 0.0 && c.x + c.w <= 40.0 && c.y + c.h <= 30.0,
            "{c:?}"
        );
    }
    // A click on a dataset image shows that instead; a button brings the photo back.
    h.get_by_label("image 3 · 3").click();
    h.run();
    assert!(!h.state().views.show_photo);
    h.get_by_label(&format!("show {}", png.display())).click();
    h.run();
    assert!(h.state().views.show_photo);

    // An undecodable drop: a message, the previous query stays.
    let txt = mdir.path().join("notes.txt");
    std::fs::write(&txt, "not an image").unwrap();
    h.input_mut()
        .dropped_files
        .push(Arc::new(Dropped(txt.clone())));
    h.run();
    h.get_by_label_contains("cannot use dropped file");
    h.get_by_label_contains("notes.txt");
    assert!(matches!(
        h.state().retrieval.query,
        Some(Query::File { .. })
    ));

    // Map: hover a point, see its image named; click it, land in Retrieval with it as the query.
    h.get_by_label("Map").click();
    h.run();
    assert_eq!(h.state().map.screen.len(), 40);
    // The dropped photo, placed on the same axes, ringed.
    assert!(h.state().map.photo.is_some());
    h.get_by_label(&format!("ringed: {} (your image)", png.display()));
    // Dots at first; zoomed in on a point, few enough are on screen to draw their thumbnails.
    assert_eq!(h.state().map.thumbnails, 0);
    let target = h.state().map.point_pos(7).unwrap();
    h.hover_at(target);
    for _ in 0..12 {
        h.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Point,
            delta: egui::vec2(0.0, 120.0),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Wheel,
            modifiers: Default::default(),
        });
        h.run();
    }
    let m = &h.state().map;
    assert!(m.zoom > 4.0, "zoom {}", m.zoom);
    assert!(
        m.thumbnails > 0 && m.thumbnails < 40,
        "{} thumbnails",
        m.thumbnails
    );
    // The point under the pointer stayed there.
    let moved = m.point_pos(7).unwrap().distance(target);
    assert!(moved < 2.0, "point 7 moved {moved} px while zooming on it");
    // "Fit all" shows every point again, as dots.
    h.get_by_label("Fit all").click();
    h.run();
    assert_eq!((h.state().map.zoom, h.state().map.thumbnails), (1.0, 0));
    h.get_by_label("Retrieval").click();
    h.run();
    h.get_by_label("Map").click();
    h.run();
    let pos = h.state().map.point_pos(7).unwrap();
    h.hover_at(pos);
    h.run();
    let hovered = h.state().map.hovered.expect("a hovered point");
    h.get_by_label(&format!("hovered: image {hovered} · {}", hovered % 4));
    h.event(egui::Event::PointerButton {
        pos,
        button: egui::PointerButton::Primary,
        pressed: true,
        modifiers: Default::default(),
    });
    h.event(egui::Event::PointerButton {
        pos,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: Default::default(),
    });
    h.run();
    assert_eq!(h.state().tab, Tab::Retrieval);
    assert!(matches!(h.state().retrieval.query, Some(Query::Index(i)) if i == hovered));
    h.get_by_label(&format!("query: image {hovered} · {}", hovered % 4));
}

#[test]
fn bad_model_and_data_paths_show_messages() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), 8);
    let mut h = harness(dir.path());
    let bad = dir.path().join("checkpoint.leoclr");
    std::fs::write(&bad, b"garbage").unwrap();
    h.state_mut().top.model_path = bad.display().to_string();
    h.get_by_label("Load model").click();
    h.run();
    h.get_by_label_contains("not a LeOCLR checkpoint");
    assert!(h.state().shared.workspace.model.is_none());
    h.state_mut().top.data_path = "/nonexistent/data".into();
    h.get_by_label("Open data").click();
    h.run();
    h.get_by_label_contains("/nonexistent/data");
    assert_eq!(
        h.state().shared.workspace.dataset().unwrap().len(),
        8,
        "old dataset kept"
    );
}

/// An index as `leoclr embed` writes it (features, metadata, info), one image left out, opened
/// through the Model field: the app shows its data and uses its features without re-embedding.
#[test]
fn an_embed_index_opens_with_its_model_data_and_features() {
    use leoclr_core::index::{FEATURES_FILE, INFO_FILE, IndexInfo, METADATA_FILE};
    use leoclr_data::formats::npy::NpyWriter;
    let data = tempfile::tempdir().unwrap();
    fixture(data.path(), 12);
    let run = tempfile::tempdir().unwrap();
    model(run.path());
    let other = tempfile::tempdir().unwrap();
    fixture(other.path(), 8);
    let mut h = harness(other.path());
    let index = tempfile::tempdir().unwrap();
    let dim = 128;
    let rows: Vec<usize> = (0..12).filter(|&i| i != 7).collect();
    // Feature row r points along axis r (distinct, easy to recognise after normalisation).
    let mut w = NpyWriter::create(&index.path().join(FEATURES_FILE), rows.len(), dim).unwrap();
    let mut unit = Vec::new();
    for r in 0..rows.len() {
        let mut f = vec![0.0f32; dim];
        f[r] = 2.0;
        w.write_rows(&f).unwrap();
        f[r] = 1.0;
        unit.extend(f);
    }
    w.finish().unwrap();
    // With the HNSW graph `embed --ann on` saves: the gallery searches through it.
    let ann = leoclr_core::ann::AnnIndex::build(&unit, dim, Default::default()).unwrap();
    let ann = ann.save(index.path()).unwrap();
    let mut meta = String::from("index\tname\tlabel\n");
    for &i in &rows {
        meta.push_str(&format!("{i}\ttrain#{i}\t{}\n", i % 4));
    }
    std::fs::write(index.path().join(METADATA_FILE), &meta).unwrap();
    let info = IndexInfo {
        checkpoint: run.path().join(checkpoint::FILE_NAME),
        encoder: "query".into(),
        images: rows.len(),
        dim,
        channels: 1,
        augment: leoclr_core::run::augment(1, 16, None).unwrap(),
        data: data.path().to_path_buf(),
        split: "train".into(),
        skipped: vec!["train#7: unreadable".into()],
        projections: false,
        model: None,
        ann: Some(ann),
    };
    std::fs::write(
        index.path().join(INFO_FILE),
        serde_json::to_string(&info).unwrap(),
    )
    .unwrap();
    h.state_mut().top.model_path = index.path().display().to_string();
    h.get_by_label("Load model").click();
    h.run();
    h.get_by_label_contains("opened index");
    let app = h.state_mut();
    assert_eq!(app.top.data_path, data.path().display().to_string());
    let ws = &mut app.shared.workspace;
    assert_eq!(ws.dataset().unwrap().len(), 11);
    // Image 7 is gone: dataset position 7 is the file's image 8.
    assert_eq!(ws.dataset().unwrap().label(7), Some(0));
    let g = ws
        .current_gallery()
        .expect("the index's features are the gallery");
    assert_eq!(g.len(), 11);
    assert_eq!(&g.features[3 * dim..3 * dim + 4], &[0.0, 0.0, 0.0, 1.0]);
    assert_eq!(g.search_kind(), "approximate (HNSW, ef 64)");
    let q = g.row(3).to_vec();
    assert_eq!(g.search(&q, 1, None)[0].0, 3);
    assert_eq!(g.search(&q, 1, Some(3)).len(), 1);
    // A broken index is a message, and the state stays.
    std::fs::write(index.path().join(METADATA_FILE), "index\tname\tlabel\n").unwrap();
    h.get_by_label("Load model").click();
    h.run();
    h.get_by_label_contains("rows for 11 feature rows");
    assert_eq!(h.state().shared.workspace.dataset().unwrap().len(), 11);
    // Features made by another state of the checkpoint (a run that trained on since): refused,
    // naming both states.
    std::fs::write(index.path().join(METADATA_FILE), meta).unwrap();
    let mut moved = info.clone();
    moved.model = Some(checkpoint::Identity {
        epoch: 9,
        step: 99,
        checksum: "0123456789abcdef".into(),
    });
    std::fs::write(
        index.path().join(INFO_FILE),
        serde_json::to_string(&moved).unwrap(),
    )
    .unwrap();
    h.get_by_label("Load model").click();
    h.run();
    h.get_by_label_contains("epoch 9, step 99");
    h.get_by_label_contains("embed again");
}

/// At 1100 px (and a phone's 390 px) the top bar wraps instead of running off the edge: every
/// control stays inside the window.
#[test]
fn the_top_bar_wraps_in_a_narrow_window() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), 8);
    for width in [1100.0, 390.0] {
        let mut app = LeoclrApp::new(Device::flex(), "test: cpu");
        app.open_dataset(dir.path());
        let mut h = Harness::builder()
            .with_size(egui::vec2(width, 844.0))
            .with_max_steps(16)
            .build_ui_state(|ui, app: &mut LeoclrApp| app.ui(ui), app);
        h.run();
        for label in ["Open data", "Load model", "Map", "Retrieval"] {
            let r = h.get_by_label(label).rect();
            assert!(
                r.max.x <= width + 0.5,
                "{label} at {r:?} in a {width} px window"
            );
        }
    }
}

#[test]
fn train_here_steps_and_pauses() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), 64);
    let mut app = LeoclrApp::new(Device::flex(), "test: cpu");
    app.open_dataset(dir.path());
    let th = leoclr_app::train_here::TrainHere::default();
    let mut h = Harness::builder()
        .with_size(egui::vec2(1000.0, 700.0))
        .with_max_steps(64)
        .build_ui_state(
            |ui, (th, app): &mut (leoclr_app::train_here::TrainHere, LeoclrApp)| {
                th.poll(&mut app.shared);
                th.ui(ui, &mut app.shared);
            },
            (th, app),
        );
    h.run();
    h.get_by_label("Start").click();
    for _ in 0..8 {
        h.step();
    }
    let losses = h.state().0.losses.borrow().clone();
    assert!(losses.len() >= 5, "{losses:?}");
    // The queue starts full of real keys: the first loss is already in the regime of the rest
    // (with the random initial queue it would be ~2, the negatives being easy, and then climb).
    let max = 2.0 * (256f64 + 1.0).ln();
    assert!(
        losses.iter().all(|l| l[1] > 4.0 && l[1] < max + 1.0),
        "{losses:?}"
    );
    assert!(losses.iter().all(|l| l[1].is_finite() && l[1] > 0.0));
    assert!(
        losses.windows(2).all(|w| w[1][0] == w[0][0] + 1.0),
        "one step a frame"
    );
    h.get_by_label("Pause").click();
    h.step();
    let n = h.state().0.steps;
    for _ in 0..3 {
        h.step();
    }
    assert_eq!(h.state().0.steps, n, "paused");
    h.get_by_label(&format!("{n} steps"));
}

/// The browser's bundled gallery (1000 Fashion-MNIST test images) and model, as the page has them.
fn bundled_gallery(app: &mut LeoclrApp) {
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/web");
    let read = |n: &str| std::fs::read(assets.join(n)).unwrap();
    let ds = idx::from_files(
        (
            Path::new("gallery-images-idx3-ubyte.gz"),
            read("gallery-images-idx3-ubyte.gz"),
        ),
        (
            Path::new("gallery-labels-idx1-ubyte.gz"),
            read("gallery-labels-idx1-ubyte.gz"),
        ),
        true,
    )
    .unwrap();
    app.shared
        .workspace
        .set_dataset("gallery", leoclr_data::Split::Test, Arc::new(ds));
    let model = leoclr_app::model::LoadedModel::from_bytes(
        Path::new("model.leoclr"),
        &read("model.leoclr"),
        &Device::flex(),
    )
    .unwrap();
    app.shared.workspace.set_model(model);
}

/// Learning you can watch: from scratch, the gallery's kNN is scored before the first step and
/// every few steps after; it rises, the map's points move (turned to the previous map, not
/// flipped), Retrieval and the Map use the model being trained, and Reset puts the bundled
/// model back.
#[test]
fn train_here_from_scratch_shows_knn_rising_and_the_map_moving() {
    let mut app = LeoclrApp::new(Device::flex(), "test: cpu");
    bundled_gallery(&mut app);
    let bundled_id = app.shared.workspace.model.as_ref().unwrap().id;
    let mut th = leoclr_app::train_here::TrainHere::default();
    th.from_scratch = true;
    th.watch.every = 15;
    th.watch.embed_slice = 250;
    th.watch.score_slice = 500;
    th.start(&mut app.shared);
    assert!(th.error.is_none(), "{:?}", th.error);
    assert_eq!(th.started_from, "random weights");
    let mut moved = Vec::new();
    for _ in 0..200 {
        th.tick(&mut app.shared);
        if let Some(m) = th.watch.moved.take() {
            moved.push(m);
        }
        if th.watch.knn.len() >= 5 {
            break;
        }
    }
    let knn = th.watch.knn.clone();
    eprintln!("kNN by step: {knn:?}; map moved by {moved:?}");
    assert!(knn.len() >= 5, "{knn:?}");
    assert_eq!(knn[0][0], 0.0, "the random-init score comes first");
    let best_later = knn[1..].iter().map(|k| k[1]).fold(0.0, f64::max);
    assert!(best_later > knn[0][1] + 2.0, "kNN does not rise: {knn:?}");
    assert!(moved.iter().all(|m| *m > 0.0 && m.is_finite()), "{moved:?}");
    let ws = &mut app.shared.workspace;
    let snap = ws.model.as_ref().unwrap();
    assert_ne!(snap.id, bundled_id, "the workspace shows the snapshot");
    assert!(
        snap.path
            .display()
            .to_string()
            .starts_with("Train here, step")
    );
    assert!(
        ws.current_gallery().is_some(),
        "its gallery is current, nothing to embed"
    );
    th.reset(&mut app.shared);
    assert_eq!(app.shared.workspace.model.as_ref().unwrap().id, bundled_id);
    assert!(th.watch.knn.is_empty());
}

/// Train here continues the open model when it fits (the browser's default): its first score is
/// the bundled model's, well above a random network's.
#[test]
fn train_here_continues_the_bundled_model() {
    let mut app = LeoclrApp::new(Device::flex(), "test: cpu");
    bundled_gallery(&mut app);
    let mut th = leoclr_app::train_here::TrainHere::default();
    th.watch.embed_slice = 1000;
    th.watch.score_slice = 1000;
    th.start(&mut app.shared);
    assert!(
        th.started_from.starts_with("the open model"),
        "{}",
        th.started_from
    );
    for _ in 0..4 {
        th.tick(&mut app.shared);
    }
    let knn = th.watch.knn.clone();
    eprintln!("bundled model, kNN by step: {knn:?}");
    assert!(!knn.is_empty() && knn[0][0] <= 1.0, "{knn:?}");
    // The bundled model scores ~70% (a random network ~53%, the test above).
    assert!(knn[0][1] > 65.0, "{knn:?}");
}

/// On a phone-sized screen (390 px) the neighbours of a query wrap into rows inside the window,
/// and the grid beside them narrows to two columns.
#[test]
fn retrieval_fits_a_phone_screen() {
    let mut app = LeoclrApp::new(Device::flex(), "test: cpu");
    bundled_gallery(&mut app);
    app.tab = Tab::Retrieval;
    app.retrieval.k = 10;
    app.retrieval.query = Some(Query::Index(5));
    let mut h = Harness::builder()
        .with_size(egui::vec2(390.0, 844.0))
        .with_max_steps(64)
        .build_ui_state(|ui, app: &mut LeoclrApp| app.ui(ui), app);
    let t0 = Instant::now();
    while h.state().retrieval.results.is_none() && t0.elapsed() < Duration::from_secs(60) {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    h.run();
    let marks = h.state().shared.status.marks.clone();
    let neighbours: Vec<_> = marks
        .iter()
        .filter(|(k, _)| k.starts_with("neighbour:"))
        .collect();
    assert_eq!(neighbours.len(), 10, "{marks:?}");
    for (k, r) in neighbours {
        assert!(r.max.x <= 390.5, "{k} at {r:?}");
    }
}

/// The Map's t-SNE beside PCA: computed on a worker thread with a progress bar, then drawn (one
/// point per image, the uploaded photo placed among its neighbours); PCA comes back at a click.
#[test]
fn map_offers_tsne_beside_pca() {
    let mut app = LeoclrApp::new(Device::flex(), "test: cpu");
    bundled_gallery(&mut app);
    app.tab = Tab::Map;
    let mut h = Harness::builder()
        .with_size(egui::vec2(1100.0, 800.0))
        .with_max_steps(64)
        .build_ui_state(|ui, app: &mut LeoclrApp| app.ui(ui), app);
    let t0 = Instant::now();
    while h.state().map.screen.len() != 1000 && t0.elapsed() < Duration::from_secs(60) {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    let pca = h.state().map.screen.clone();
    assert_eq!(pca.len(), 1000);
    h.get_by_label("t-SNE").click();
    h.step();
    h.step();
    assert!(
        h.state().map.screen.is_empty(),
        "nothing drawn while t-SNE runs"
    );
    let mut saw_progress = false;
    let t0 = Instant::now();
    while h.state().map.screen.is_empty() && t0.elapsed() < Duration::from_secs(120) {
        h.step();
        saw_progress |= h.state().map.tsne.progress.0 > 0;
        std::thread::sleep(Duration::from_millis(50));
    }
    let tsne = h.state().map.screen.clone();
    assert_eq!(tsne.len(), 1000, "t-SNE drawn");
    assert!(saw_progress, "progress reported while computing");
    assert_ne!(tsne, pca);
    h.get_by_label_contains("t-SNE of backbone features");
    h.get_by_label("PCA").click();
    h.run();
    assert_eq!(h.state().map.screen, pca, "PCA again");
}
