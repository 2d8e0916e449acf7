//! Files written before the run settings and checkpoint metadata were typed still load:
//! - `assets/web/model.leoclr`, an encoder exported by `leoclr export` (committed with the browser
//!   demo, written by the code of 2026-11-26);
//! - `fixtures/checkpoint-meta-2026-11-26.json`, the metadata of a training checkpoint written by
//!   that code (`leoclr train ... --max-steps 3`). The tensor sections' format did not change, so
//!   the test puts that metadata in front of a fresh trainer's sections, as the old file had it.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use leoclr_core::checkpoint::{self, FILE_NAME};
use leoclr_core::run::Plan;
use leoclr_core::{Method, OriginalBranch, Trainer};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `file` with its metadata JSON replaced by `json` (and the checksum redone).
fn with_meta(file: &[u8], json: &[u8]) -> Vec<u8> {
    let old_len = u64::from_le_bytes(file[8..16].try_into().unwrap()) as usize;
    let mut out = file[..8].to_vec();
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(json);
    out.extend_from_slice(&file[16 + old_len..file.len() - 8]);
    let sum = fnv1a(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

#[test]
fn an_encoder_exported_before_the_change_loads_with_its_views() {
    let path = repo().join("assets/web/model.leoclr");
    let (enc, meta) = checkpoint::load_encoder(&path, &Device::flex()).unwrap();
    assert_eq!(meta.epoch, 8);
    let run = &meta.run;
    assert_eq!(run.view_size, Some(28));
    assert_eq!(run.exported_from.as_deref(), Some(Path::new("runs/demo")));
    assert_eq!(run.dataset.as_deref(), Some("train-images-idx3-ubyte"));
    let saved = run.augment.clone().expect("the recorded augmentation");
    assert_eq!((saved.size, saved.mean.clone()), (28, vec![0.286]));
    // The views to embed with are the recorded ones.
    assert_eq!(run.eval_augment(1, None, 96).unwrap(), saved);
    let x = burn::tensor::Tensor::<4>::zeros([2, 1, 28, 28], &Device::flex());
    assert_eq!(enc.valid().features(x).dims(), [2, 128]);
}

#[test]
fn a_training_checkpoint_written_before_the_change_resumes() {
    let old_json = include_bytes!("fixtures/checkpoint-meta-2026-11-26.json");
    let old: serde_json::Value = serde_json::from_slice(old_json).unwrap();
    assert!(
        old["extra"]["spec"]["method"].is_string(),
        "an old-style file"
    );
    let config: leoclr_core::TrainConfig = serde_json::from_value(old["config"].clone()).unwrap();
    let steps_per_epoch = old["steps_per_epoch"].as_u64().unwrap() as usize;

    let dir = tempfile::tempdir().unwrap();
    let t = Trainer::new(config.clone(), &Device::flex(), steps_per_epoch).unwrap();
    let fresh = checkpoint::save(dir.path(), &t, &Default::default()).unwrap();
    let bytes = with_meta(&std::fs::read(&fresh).unwrap(), old_json);
    std::fs::write(dir.path().join(FILE_NAME), bytes).unwrap();

    let (trainer, meta) = checkpoint::load_trainer(dir.path(), &Device::flex()).unwrap();
    assert_eq!((meta.epoch, meta.step), (1, 3));
    let spec = meta.run.spec.clone().expect("the run settings");
    assert_eq!(spec.model.method.name(), "leoclr");
    assert_eq!(
        spec.model.method(),
        Method::Leoclr {
            original_branch: OriginalBranch::Key
        }
    );
    assert_eq!((spec.epochs, spec.batch, spec.queue), (2, 32, 64));
    assert_eq!(spec.data.limit, Some(96));
    assert!(meta.run.argv.as_ref().is_some_and(|a| a[1] == "train"));
    assert_eq!(meta.run.view_size, Some(28));

    // The recorded settings make the same plan, and the session continues from step 3.
    let mut spec = spec;
    spec.data.data = repo().join(&spec.data.data);
    spec.data.workers = Some(1);
    let plan = Plan::new(spec).unwrap();
    assert_eq!(plan.config, config);
    let mut session = plan.session_with(trainer).unwrap();
    let e = session.step().unwrap().unwrap();
    assert_eq!((e.step, e.step_in_epoch), (4, 1));
    assert!(e.loss.unwrap().is_finite());
}
