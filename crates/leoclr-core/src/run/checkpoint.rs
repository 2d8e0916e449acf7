//! Checkpoints: one file holding the run's settings, epoch, RNG state, both encoders, the optimiser
//! state and the queue, followed by a checksum. Written to a temporary file, synced, then renamed
//! over the old one, so a crash or a full disk never leaves a half-written checkpoint behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use serde::{Deserialize, Deserializer, Serialize};

use super::meta::RunMeta;
use crate::config::TrainConfig;
use crate::encoder::Encoder;
use crate::queue::KeyQueue;
use crate::trainer::{Parts, Trainer, sgd};
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"LEOCLR\x00\x01";
pub const FILE_NAME: &str = crate::files::CHECKPOINT_FILE;

/// Everything but the tensors, as JSON inside the checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Meta {
    pub config: TrainConfig,
    /// Epochs completed.
    pub epoch: usize,
    pub step: usize,
    pub steps_per_epoch: usize,
    pub queue_ptr: usize,
    pub queue_len: usize,
    pub queue_dim: usize,
    /// Data randomness is derived from (seed, epoch, image): the seed and the next epoch are the
    /// whole RNG state.
    pub rng_seed: u64,
    pub next_epoch: usize,
    /// The run's settings and provenance (under `extra`, as older files name it).
    #[serde(rename = "extra", default, deserialize_with = "null_as_default")]
    pub run: RunMeta,
}

/// `null` (what the earliest files wrote when they had nothing to record) reads as empty.
fn null_as_default<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<RunMeta, D::Error> {
    Ok(Option::<RunMeta>::deserialize(d)?.unwrap_or_default())
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn err(path: &Path, message: impl Into<String>) -> Error {
    Error::checkpoint(path, message)
}

fn encode(meta: &Meta, sections: &[&[u8]]) -> Result<Vec<u8>> {
    let json =
        serde_json::to_vec(meta).map_err(|e| Error::Config(format!("checkpoint metadata: {e}")))?;
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&(sections.len() as u64).to_le_bytes());
    for s in sections {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s);
    }
    let sum = fnv1a(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    Ok(out)
}

/// A little-endian u64 from the first 8 bytes (0 when there are fewer: callers take exactly 8).
fn le_u64(s: &[u8]) -> u64 {
    s.first_chunk::<8>().map_or(0, |b| u64::from_le_bytes(*b))
}

fn decode(path: &Path, bytes: &[u8]) -> Result<(Meta, Vec<Vec<u8>>)> {
    if bytes.len() < MAGIC.len() + 24 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(err(
            path,
            "not a LeOCLR checkpoint (bad magic or too short)",
        ));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    if fnv1a(body) != le_u64(sum) {
        return Err(err(
            path,
            "checkpoint is corrupt or truncated (checksum mismatch)",
        ));
    }
    let mut pos = MAGIC.len();
    let mut take = |n: usize| -> Result<&[u8]> {
        // Lengths come from the file: a crafted one must not overflow or over-read.
        let s = pos
            .checked_add(n)
            .and_then(|end| body.get(pos..end))
            .ok_or_else(|| err(path, "truncated checkpoint (a length points past the end)"))?;
        pos += n;
        Ok(s)
    };
    let u64_at = |s: &[u8]| le_u64(s) as usize;
    let json_len = u64_at(take(8)?);
    let meta: Meta = serde_json::from_slice(take(json_len)?)
        .map_err(|e| err(path, format!("unreadable checkpoint metadata: {e}")))?;
    let n = u64_at(take(8)?);
    if n > 16 {
        return Err(err(path, "unreadable checkpoint (absurd section count)"));
    }
    let mut sections = Vec::with_capacity(n);
    for _ in 0..n {
        let len = u64_at(take(8)?);
        sections.push(take(len)?.to_vec());
    }
    Ok((meta, sections))
}

fn record_bytes(m: Encoder, path: &Path) -> Result<Vec<u8>> {
    let b = m
        .into_record()
        .into_bytes()
        .map_err(|e| err(path, format!("cannot serialise model: {e}")))?;
    Ok(b.to_vec())
}

fn load_encoder_bytes(
    cfg: &TrainConfig,
    bytes: Vec<u8>,
    device: &Device,
    path: &Path,
) -> Result<Encoder> {
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| err(path, format!("unreadable model weights: {e}")))?;
    Encoder::new(&cfg.model, device)
        .try_load_record(record)
        .map_err(|e| {
            err(
                path,
                format!("weights do not fit the configured model: {e}"),
            )
        })
}

/// What a checkpoint of `trainer` now would record about it (also the description of a model
/// snapshot taken while training, in the app).
pub fn meta_of(trainer: &Trainer, run: &RunMeta) -> Meta {
    let queue = trainer.queue();
    Meta {
        config: trainer.config().clone(),
        epoch: trainer.epoch(),
        step: trainer.step_count(),
        steps_per_epoch: trainer.steps_per_epoch(),
        queue_ptr: queue.ptr,
        queue_len: queue.len(),
        queue_dim: queue.keys.dims()[1],
        rng_seed: trainer.config().seed,
        next_epoch: trainer.epoch(),
        run: run.clone(),
    }
}

/// Starts `trainer` from an encoder's weights (fine-tuning an exported model, e.g. the browser's
/// bundled one): the online encoder takes them, the key encoder becomes its copy; the optimiser
/// state, queue and counters stay those of a fresh run. The encoder's configuration must be the
/// trainer's (the error says what differs); it may live on any device.
pub fn start_from(
    trainer: &mut Trainer,
    encoder: &Encoder,
    model: &crate::config::ModelConfig,
) -> Result<()> {
    let own = &trainer.config().model;
    if model != own {
        return Err(Error::Config(format!(
            "the model to start from ({:?}, {} channels, head {}) is not the one this run trains \
             ({:?}, {} channels, head {})",
            model.backbone,
            model.in_channels,
            model.head_out,
            own.backbone,
            own.in_channels,
            own.head_out
        )));
    }
    let name = Path::new("start model");
    let bytes = record_bytes(encoder.clone(), name)?;
    let online = load_encoder_bytes(trainer.config(), bytes, trainer.device(), name)?;
    trainer.set_encoders(online);
    Ok(())
}

/// Writes `dir/checkpoint.leoclr` atomically.
pub fn save(dir: &Path, trainer: &Trainer, run: &RunMeta) -> Result<PathBuf> {
    let path = dir.join(FILE_NAME);
    let bytes = state_bytes(&path, trainer, run)?;
    write_atomic(&path, &bytes)?;
    Ok(path)
}

/// A whole training state as the bytes of a checkpoint file (`path` only names it in errors):
/// what `save` writes, and how data-parallel training copies a trainer onto another device.
pub fn state_bytes(path: &Path, trainer: &Trainer, run: &RunMeta) -> Result<Vec<u8>> {
    let meta = meta_of(trainer, run);
    // BatchNorm running statistics are folded in lazily; `valid()` syncs them (in place, the state
    // is shared) so the record holds the latest values rather than ones lagging an update.
    let _ = trainer.online().valid();
    let _ = trainer.key().valid();
    let online = record_bytes(trainer.online().clone(), path)?;
    let key = record_bytes(trainer.key().clone(), path)?;
    let optim = trainer
        .optimizer()
        .into_bytes()
        .map_err(|e| err(path, format!("cannot serialise optimiser: {e}")))?
        .to_vec();
    let queue: Vec<u8> = trainer
        .queue()
        .to_vec()?
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    // The queued keys' image ids: a fifth section (files without it read as ids unknown).
    let ids: Vec<u8> = trainer
        .queue()
        .ids_vec()?
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    encode(&meta, &[&online, &key, &optim, &queue, &ids])
}

/// Temporary file in the same directory, fsync, rename: the old checkpoint survives any failure.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| err(dir, format!("cannot create directory: {e}")))?;
    // A name no other writer uses (another process, or another thread of this one).
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    // Named after the file where that fits in a file name (a run's stale ones are recognised
    // by it), a short name for a long one.
    let pid = std::process::id();
    let tmp = match name.len() <= 200 {
        true => dir.join(format!(".{name}.{pid}.{n}.tmp")),
        false => dir.join(format!(".leoclr-{pid}-{n}.tmp")),
    };
    let res = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    res.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(path, format!("cannot write checkpoint: {e}"))
    })
}

/// Which state of a run a checkpoint file holds: its counters and the checksum its writer put at
/// the end (a new one every save). An index records it, so features computed by epoch 3 are not
/// searched with the model of epoch 5 without a word.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub epoch: usize,
    pub step: usize,
    /// The file's trailing checksum, hex.
    pub checksum: String,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "epoch {}, step {}, checksum {}",
            self.epoch, self.step, self.checksum
        )
    }
}

/// The identity of the checkpoint at `path` (a file or run directory), after checking it reads.
pub fn identity(path: &Path) -> Result<Identity> {
    let file = file_of(path);
    let bytes =
        std::fs::read(&file).map_err(|e| err(&file, format!("cannot read checkpoint: {e}")))?;
    let (meta, _) = decode_checked(&file, &bytes)?;
    Ok(Identity {
        epoch: meta.epoch,
        step: meta.step,
        checksum: format!("{:016x}", le_u64(&bytes[bytes.len() - 8..])),
    })
}

/// A run directory stands for the checkpoint inside it.
fn file_of(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(FILE_NAME)
    } else {
        path.to_path_buf()
    }
}

fn read(path: &Path) -> Result<(Meta, Vec<Vec<u8>>)> {
    let path = file_of(path);
    let bytes =
        std::fs::read(&path).map_err(|e| err(&path, format!("cannot read checkpoint: {e}")))?;
    decode_checked(&path, &bytes)
}

/// Decodes and checks a checkpoint: 4 or 5 sections (a training state; the fifth, the queue's
/// image ids, since they are recorded) or 1 (an exported encoder).
fn decode_checked(path: &Path, bytes: &[u8]) -> Result<(Meta, Vec<Vec<u8>>)> {
    let (meta, sections) = decode(path, bytes)?;
    if !matches!(sections.len(), 1 | 4 | 5) {
        return Err(err(
            path,
            format!("expected 1, 4 or 5 sections, found {}", sections.len()),
        ));
    }
    meta.config
        .validate()
        .map_err(|e| err(path, e.to_string()))?;
    Ok((meta, sections))
}

/// Writes only the query encoder (with the run's metadata): a small file for inference, which is
/// what `leoclr export` ships to the browser. `load_encoder` reads it; `load_trainer` refuses it.
pub fn save_encoder(path: &Path, encoder: &Encoder, meta: &Meta) -> Result<()> {
    let _ = encoder.valid();
    let online = record_bytes(encoder.clone(), path)?;
    write_atomic(path, &encode(meta, &[&online])?)
}

/// `load_encoder` on bytes already in memory (the browser's fetched or embedded model); `name`
/// only names them in errors.
pub fn load_encoder_from_bytes(
    name: &Path,
    bytes: &[u8],
    device: &Device,
) -> Result<(Encoder, Meta)> {
    let (meta, mut sections) = decode_checked(name, bytes)?;
    let online = sections.swap_remove(0);
    let enc = load_encoder_bytes(&meta.config, online, device, name)?;
    Ok((enc, meta))
}

/// Restores a whole run to continue training on `device`.
pub fn load_trainer(path: &Path, device: &Device) -> Result<(Trainer, Meta)> {
    let file = file_of(path);
    let bytes =
        std::fs::read(&file).map_err(|e| err(&file, format!("cannot read checkpoint: {e}")))?;
    trainer_from_bytes(&file, &bytes, device)
}

/// `load_trainer` on checkpoint bytes in memory (`file` only names them in errors).
pub fn trainer_from_bytes(file: &Path, bytes: &[u8], device: &Device) -> Result<(Trainer, Meta)> {
    let (meta, sections) = decode_checked(file, bytes)?;
    let file = file.to_path_buf();
    if sections.len() == 1 {
        return Err(err(
            &file,
            "holds only an exported encoder, not a training state to resume",
        ));
    }
    let cfg = meta.config.clone();
    // Counters come from the file: keep the schedule's arithmetic (steps x epochs) in range and
    // the queue the shape the configuration says.
    let fits = meta.steps_per_epoch > 0
        && meta
            .steps_per_epoch
            .checked_mul(cfg.epochs)
            .is_some_and(|total| meta.step <= total)
        && meta.epoch <= cfg.epochs
        && meta.queue_len == cfg.queue_size
        && meta.queue_dim == cfg.model.head_out;
    if !fits {
        return Err(err(
            &file,
            "unreadable checkpoint (step, epoch or queue counters out of range)",
        ));
    }
    let device = device.clone().autodiff();
    let mut sections = sections.into_iter();
    let (Some(online_bytes), Some(key_bytes), Some(optim_bytes), Some(queue_bytes)) = (
        sections.next(),
        sections.next(),
        sections.next(),
        sections.next(),
    ) else {
        return Err(err(&file, "holds only an exported encoder"));
    };
    let id_bytes = sections.next();
    let online = load_encoder_bytes(&cfg, online_bytes, &device, &file)?;
    let key = load_encoder_bytes(&cfg, key_bytes, &device, &file)?;
    // Fresh parameter ids for the key encoder (the record carries the online encoder's).
    let key = crate::ema::copy_values(Encoder::new(&cfg.model, &device), &key).no_grad();
    let optim = sgd(&cfg)
        .from_bytes(Bytes::from_bytes_vec(optim_bytes))
        .map_err(|e| err(&file, format!("unreadable optimiser state: {e}")))?;
    let queue = restore_queue(&file, &meta, &queue_bytes, id_bytes.as_deref(), &device)?;
    let trainer = Trainer::restore(Parts {
        config: cfg,
        device,
        online,
        key,
        optim,
        queue,
        step: meta.step,
        epoch: meta.epoch,
        steps_per_epoch: meta.steps_per_epoch,
    });
    Ok((trainer, meta))
}

/// The queue a checkpoint holds: its keys and (in files that record them) their image ids.
fn restore_queue(
    file: &Path,
    meta: &Meta,
    queue_bytes: &[u8],
    id_bytes: Option<&[u8]>,
    device: &Device,
) -> Result<KeyQueue> {
    let queue_size = meta
        .queue_len
        .checked_mul(meta.queue_dim)
        .and_then(|n| n.checked_mul(4));
    if queue_size != Some(queue_bytes.len()) || meta.queue_len == 0 {
        return Err(err(file, "queue size does not match its metadata"));
    }
    let q: Vec<f32> = queue_bytes
        .as_chunks::<4>()
        .0
        .iter()
        .map(|c| f32::from_le_bytes(*c))
        .collect();
    let queue = KeyQueue::from_vec(
        q,
        meta.queue_len,
        meta.queue_dim,
        meta.queue_ptr % meta.queue_len,
        device,
    );
    let queue = match id_bytes {
        Some(b) if b.len() == meta.queue_len * 8 => queue.with_ids(
            b.as_chunks::<8>()
                .0
                .iter()
                .map(|c| i64::from_le_bytes(*c))
                .collect(),
        ),
        Some(_) => return Err(err(file, "queue ids do not match the queue's length")),
        None => queue,
    };
    Ok(queue)
}

/// A copy of a whole training state on another device, through the bytes of a checkpoint (same
/// weights, optimiser state, queue, counters and parameter ids): data-parallel replicas, made the
/// same way for a fresh and a resumed run, whatever device count the run had before.
pub fn replicate(trainer: &Trainer, device: &Device) -> Result<Trainer> {
    let name = Path::new("replica");
    let bytes = state_bytes(name, trainer, &RunMeta::default())?;
    let (copy, _) = trainer_from_bytes(name, &bytes, device)?;
    Ok(copy)
}

/// Loads only the query (online) encoder, for evaluation and embedding, on a plain device.
pub fn load_encoder(path: &Path, device: &Device) -> Result<(Encoder, Meta)> {
    let (meta, mut sections) = read(path)?;
    let file = file_of(path);
    let online = sections.swap_remove(0);
    let enc = load_encoder_bytes(&meta.config, online, device, &file)?;
    Ok((enc, meta))
}

/// Loads the momentum (key) encoder of a training checkpoint, on a plain device.
pub fn load_key_encoder(path: &Path, device: &Device) -> Result<(Encoder, Meta)> {
    let (meta, mut sections) = read(path)?;
    let file = file_of(path);
    if sections.len() < 4 {
        return Err(err(
            &file,
            "holds only an exported query encoder, not the key encoder",
        ));
    }
    let key = sections.swap_remove(1);
    let enc = load_encoder_bytes(&meta.config, key, device, &file)?;
    Ok((enc, meta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::{Method, OriginalBranch};

    fn cfg() -> TrainConfig {
        TrainConfig::tiny_test(
            1,
            Method::Leoclr {
                original_branch: OriginalBranch::Key,
            },
        )
    }

    #[test]
    fn corrupt_and_truncated_checkpoints_are_clear_errors_and_old_one_survives() {
        let dev = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let t = Trainer::new(cfg(), &dev, 1).unwrap();
        let path = save(dir.path(), &t, &RunMeta::default()).unwrap();
        let good = std::fs::read(&path).unwrap();
        // Truncated.
        std::fs::write(&path, &good[..good.len() / 2]).unwrap();
        let e = load_trainer(&path, &dev).err().unwrap().to_string();
        assert!(
            e.contains("checkpoint.leoclr") && e.contains("corrupt or truncated"),
            "{e}"
        );
        // One flipped byte.
        let mut bad = good.clone();
        bad[good.len() / 3] ^= 0xff;
        std::fs::write(&path, &bad).unwrap();
        assert!(load_encoder(&path, &dev).is_err());
        // Not a checkpoint at all.
        std::fs::write(&path, b"hello").unwrap();
        assert!(
            load_encoder(&path, &dev)
                .err()
                .unwrap()
                .to_string()
                .contains("not a LeOCLR checkpoint")
        );
        // A failed write (target is a directory) leaves the previous file intact.
        std::fs::write(&path, &good).unwrap();
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join(FILE_NAME)).unwrap();
        assert!(save(&blocked, &t, &RunMeta::default()).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), good);
        load_encoder(&path, &dev).unwrap();
    }

    #[test]
    fn exported_encoder_loads_for_inference_only() {
        let dev = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let t = Trainer::new(cfg(), &dev, 1).unwrap();
        let noted = RunMeta {
            dataset: Some("note".into()),
            ..RunMeta::default()
        };
        let full = save(dir.path(), &t, &noted).unwrap();
        let (enc, meta) = load_encoder(&full, &dev).unwrap();
        let small = dir.path().join("model.leoclr");
        save_encoder(&small, &enc, &meta).unwrap();
        assert!(
            std::fs::metadata(&small).unwrap().len() < std::fs::metadata(&full).unwrap().len() / 2
        );
        let bytes = std::fs::read(&small).unwrap();
        let (enc2, meta2) = load_encoder_from_bytes(&small, &bytes, &dev).unwrap();
        assert_eq!(meta2.run.dataset.as_deref(), Some("note"));
        assert_eq!(crate::ema::parameters(&enc), crate::ema::parameters(&enc2));
        let e = load_trainer(&small, &dev).err().unwrap().to_string();
        assert!(
            e.contains("model.leoclr") && e.contains("exported encoder"),
            "{e}"
        );
    }
}
