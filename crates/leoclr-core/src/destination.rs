//! Where a command writes, and the one rule for what it may replace there:
//!
//! - only a thing of its own kind, recognised by its content (an index by a readable
//!   `index.json`, a run by its checkpoint or metrics log, an ONNX or safetensors file by its
//!   header, the browser export by its `gallery.json` and model), never by its name;
//! - never one of its own inputs: `--out` equal to, inside or around the data it reads or the
//!   checkpoint it loads;
//! - never the working directory or a directory above it, a file where a directory goes (or the
//!   other way round), or anything at all without `--overwrite`;
//! - and it says what it would replace.
//!
//! `embed`, `export`, `subset` and `train` check their `--out` here before they compute anything.

use std::path::{Component, Path, PathBuf};

use crate::{Error, Result};

/// What a command writes at its `--out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// An embedding index directory (`leoclr embed`).
    Index,
    /// A training run directory (`leoclr train`).
    Run,
    /// The browser demo's files (`leoclr export --format web`).
    WebExport,
    /// An ONNX model file (`leoclr export --format onnx`).
    OnnxFile,
    /// A safetensors file (`leoclr export --format torchvision`).
    SafetensorsFile,
    /// An IDX dataset directory (`leoclr subset`).
    IdxDataset,
    /// A JSON array of benchmark rows (`leoclr bench --out`).
    BenchRows,
    /// A comparison's directory: its results and one run directory a row (`leoclr compare`).
    Comparison,
}

impl OutputKind {
    /// How an error names it.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Index => "an embedding index",
            Self::Run => "a training run",
            Self::WebExport => "a web export",
            Self::OnnxFile => "an ONNX model",
            Self::SafetensorsFile => "a safetensors file",
            Self::IdxDataset => "an IDX dataset written by `leoclr subset`",
            Self::BenchRows => "benchmark rows written by `leoclr bench --out`",
            Self::Comparison => "a comparison written by `leoclr compare`",
        }
    }

    fn is_file(self) -> bool {
        matches!(
            self,
            Self::OnnxFile | Self::SafetensorsFile | Self::BenchRows
        )
    }

    /// Whether `path` (which exists) holds a thing of this kind, judged by its content.
    fn recognises(self, path: &Path) -> bool {
        match self {
            Self::Index => {
                let info = path.join(crate::index::INFO_FILE);
                std::fs::read_to_string(info)
                    .is_ok_and(|t| serde_json::from_str::<crate::index::IndexInfo>(&t).is_ok())
            }
            Self::Run => {
                crate::files::holds_run(path) || path.join(crate::files::CONFIG_FILE).is_file()
            }
            Self::WebExport => {
                path.join("gallery.json").is_file() && path.join("model.leoclr").is_file()
            }
            Self::OnnxFile => starts_like_onnx(path),
            Self::SafetensorsFile => starts_like_safetensors(path),
            Self::IdxDataset => std::fs::read_dir(path).is_ok_and(|entries| {
                entries.flatten().all(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    (name.contains("-idx") && name.contains("-ubyte")) || name == "scenes.json"
                })
            }),
            Self::BenchRows => is_bench_rows(path),
            Self::Comparison => std::fs::read_dir(path).is_ok_and(|entries| {
                entries.flatten().all(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    COMPARISON_FILES.contains(&name.as_ref())
                        || name == crate::files::LOCK_FILE
                        || name.starts_with(".leoclr-")
                })
            }),
        }
    }
}

/// What `leoclr compare` writes in its `--out` (`runs/` holds a run directory a row).
pub const COMPARISON_FILES: [&str; 5] = [
    "runs",
    "results.json",
    "results.md",
    "calibration.json",
    "settings.json",
];

/// A JSON array of objects that each carry `images_per_s` (what `bench --out` writes), read only
/// if small enough to be one.
fn is_bench_rows(path: &Path) -> bool {
    if std::fs::metadata(path).map_or(true, |m| m.len() > 64 << 20) {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    serde_json::from_str::<Vec<serde_json::Map<String, serde_json::Value>>>(&text)
        .is_ok_and(|rows| rows.iter().all(|r| r.contains_key("images_per_s")))
}

/// The first bytes of a file (up to `n`).
fn head(path: &Path, n: usize) -> Vec<u8> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let mut got = 0;
    while got < n {
        match f.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => got += k,
        }
    }
    buf.truncate(got);
    buf
}

/// An ONNX `ModelProto` starts with field 1 (`ir_version`, varint), which no checkpoint, image
/// or text file does; ours also carry the producer name near the start.
fn starts_like_onnx(path: &Path) -> bool {
    let h = head(path, 64);
    h.first() == Some(&0x08) && h.windows(6).any(|w| w == b"leoclr")
}

/// safetensors: an 8-byte little-endian header length, then a JSON object.
fn starts_like_safetensors(path: &Path) -> bool {
    let h = head(path, 9);
    // 0x7b: the opening brace of the header's JSON.
    h.len() == 9 && u64::from_le_bytes(h[..8].try_into().unwrap_or([0; 8])) > 0 && h[8] == 0x7b
}

/// `path` made absolute and free of `.`/`..` and symbolic links as far as it exists (the parts
/// that do not exist yet are appended as given).
pub fn resolved(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = abs.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut out = std::fs::canonicalize(&existing).unwrap_or(existing);
    for name in rest.into_iter().rev() {
        if name == ".." {
            out.pop();
        } else if name != "." {
            out.push(name);
        }
    }
    out
}

/// `a` equals `b` or lies inside it.
fn within(a: &Path, b: &Path) -> bool {
    a.starts_with(b)
}

/// What the check found at `--out`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    pub path: PathBuf,
    /// A thing of the command's kind is there and `--overwrite` replaces it.
    pub replaces: bool,
}

fn refuse(out: &Path, message: impl Into<String>) -> Error {
    Error::Refused {
        path: out.to_path_buf(),
        message: message.into(),
    }
}

/// A file or directory a command reads, with how the error names it.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    pub path: &'a Path,
    pub what: &'static str,
}

impl<'a> Input<'a> {
    pub fn data(path: &'a Path) -> Self {
        Self {
            path,
            what: "the dataset being read",
        }
    }

    pub fn checkpoint(path: &'a Path) -> Self {
        Self {
            path,
            what: "the checkpoint being read",
        }
    }
}

/// Checks that a command writing `kind` at `out` may do so. `inputs` are the files and
/// directories the command reads (data, checkpoint): `out` may not be one of them, inside one,
/// or contain one.
pub fn check(
    out: &Path,
    kind: OutputKind,
    overwrite: bool,
    inputs: &[Input<'_>],
) -> Result<Destination> {
    let target = check_place(out, inputs)?;
    let fresh = Destination {
        path: out.to_path_buf(),
        replaces: false,
    };
    let Ok(meta) = std::fs::symlink_metadata(&target) else {
        return Ok(fresh);
    };
    if kind.is_file() != meta.is_file() {
        let expects = if kind.is_file() {
            "a file"
        } else {
            "a directory"
        };
        let found = if meta.is_dir() {
            "a directory"
        } else if meta.is_file() {
            "a file"
        } else {
            "neither a file nor a directory"
        };
        return Err(refuse(
            out,
            format!(
                "exists and is {found}; --out names {expects} to write {}",
                kind.noun()
            ),
        ));
    }
    if meta.is_dir() && holds_nothing(&target) {
        return Ok(fresh);
    }
    if !kind.recognises(&target) {
        return Err(refuse(
            out,
            format!(
                "already exists and is not {}; nothing there is replaced, even with --overwrite: \
                 choose another --out",
                kind.noun()
            ),
        ));
    }
    if !overwrite {
        return Err(refuse(
            out,
            format!(
                "already holds {}; pass --overwrite to replace it, or choose another --out",
                kind.noun()
            ),
        ));
    }
    Ok(Destination {
        path: out.to_path_buf(),
        replaces: true,
    })
}

/// Whether a directory holds nothing but our own lock files.
fn holds_nothing(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|d| {
        d.flatten().all(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name == crate::files::LOCK_FILE
                || (name.starts_with(".leoclr-") && name.ends_with(".lock"))
        })
    })
}

/// The place itself: a name (not a root, not `..`), not the working directory or above it, not
/// one of the inputs, inside one or around one. Returns `out` resolved.
fn check_place(out: &Path, inputs: &[Input<'_>]) -> Result<PathBuf> {
    if out.as_os_str().is_empty() {
        return Err(refuse(out, "--out is empty"));
    }
    let target = resolved(out);
    if target.file_name().is_none() || out.components().next_back() == Some(Component::ParentDir) {
        return Err(refuse(
            out,
            "--out must name a file or directory, not a root or `..`",
        ));
    }
    if let Ok(cwd) = std::env::current_dir().map(|c| resolved(&c))
        && within(&cwd, &target)
    {
        return Err(refuse(
            out,
            "--out is the working directory or a directory above it; name a new directory",
        ));
    }
    for &Input { path, what: named } in inputs {
        let input = resolved(path);
        if within(&target, &input) || within(&input, &target) {
            let what = if target == input {
                "is"
            } else if within(&target, &input) {
                "lies inside"
            } else {
                "contains"
            };
            return Err(refuse(
                out,
                format!(
                    "--out {what} {}, {named}; write to another path",
                    input.display()
                ),
            ));
        }
    }
    Ok(target)
}

/// A scratch path beside `out` for writing before the rename into place, short whatever the
/// length of `out`'s own name (a 250-byte `--out` name still leaves room), unique per process.
pub fn scratch_beside(out: &Path, what: &str) -> PathBuf {
    let name = format!(".leoclr-{what}-{}.partial", std::process::id());
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(name),
        _ => PathBuf::from(name),
    }
}

/// An exclusive claim on writing `out`: a second command writing the same path is refused and
/// told which process holds it. A lock file beside `out`, named by a digest of its full path
/// (short whatever `out`'s length), removed when the claim ends.
#[derive(Debug)]
pub struct OutLock {
    _file: std::fs::File,
    path: PathBuf,
}

impl Drop for OutLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub fn lock(out: &Path) -> Result<OutLock> {
    let target = resolved(out);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in target.as_os_str().as_encoded_bytes() {
        h = (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = dir.join(format!(".leoclr-{h:016x}.lock"));
    match crate::files::claim(&path)? {
        Ok(file) => Ok(OutLock { _file: file, path }),
        Err(pid) => Err(refuse(
            out,
            format!(
                "another leoclr process (pid {pid}) is writing here; wait for it or choose another --out"
            ),
        )),
    }
}

/// A scratch directory that is removed when dropped, unless it was moved into place.
#[derive(Debug)]
pub struct Scratch {
    pub path: PathBuf,
    kept: bool,
}

impl Scratch {
    /// An empty scratch directory beside `out` (see [`scratch_beside`]).
    pub fn beside(out: &Path, what: &str) -> Result<Self> {
        let path = scratch_beside(out, what);
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        }
        std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Self { path, kept: false })
    }

    /// Moves the finished directory to `out`. A thing already there (checked by [`check`] to be
    /// of the command's kind) is moved aside first and removed only once the new one is in place.
    pub fn install(mut self, out: &Path) -> Result<()> {
        let aside = scratch_beside(out, "old");
        if std::fs::symlink_metadata(out).is_ok() {
            if aside.exists() {
                std::fs::remove_dir_all(&aside).map_err(|e| Error::io(&aside, e))?;
            }
            std::fs::rename(out, &aside).map_err(|e| Error::io(out, e))?;
        }
        if let Err(e) = std::fs::rename(&self.path, out) {
            // Put the old one back: nothing is lost when the new one cannot go in.
            if aside.exists() {
                let _ = std::fs::rename(&aside, out);
            }
            return Err(Error::io(out, e));
        }
        self.kept = true;
        if aside.exists() {
            std::fs::remove_dir_all(&aside).map_err(|e| Error::io(&aside, e))?;
        }
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    #[test]
    fn only_its_own_kind_is_replaced_and_only_when_told() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        touch(&data.join("train-images-idx3-ubyte"), b"x");
        // A data set is not an index: refused even with --overwrite.
        let e = check(&data, OutputKind::Index, true, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not an embedding index"), "{e}");
        // An index: refused without --overwrite, replaced with it.
        let index = tmp.path().join("index");
        let info = crate::index::IndexInfo {
            checkpoint: "/x".into(),
            encoder: "query".into(),
            images: 0,
            dim: 1,
            channels: 1,
            augment: leoclr_data::AugmentConfig::small(8, 1),
            data: "/d".into(),
            split: "train".into(),
            skipped: vec![],
            projections: false,
            model: None,
            #[cfg(not(target_arch = "wasm32"))]
            ann: None,
        };
        touch(
            &index.join("index.json"),
            &serde_json::to_vec(&info).unwrap(),
        );
        assert!(OutputKind::Index.recognises(&index));
        let e = check(&index, OutputKind::Index, false, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("pass --overwrite"), "{e}");
        assert!(
            check(&index, OutputKind::Index, true, &[])
                .unwrap()
                .replaces
        );
        // New and empty paths are fine.
        assert!(
            !check(&tmp.path().join("new"), OutputKind::Index, false, &[])
                .unwrap()
                .replaces
        );
        std::fs::create_dir(tmp.path().join("empty")).unwrap();
        check(&tmp.path().join("empty"), OutputKind::Run, false, &[]).unwrap();
    }

    #[test]
    fn never_its_own_input_a_file_for_a_directory_or_the_working_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        let ckpt = run.join("checkpoint.leoclr");
        touch(&ckpt, b"LEOCLR");
        for out in [run.clone(), ckpt.clone(), tmp.path().to_path_buf()] {
            let e = check(&out, OutputKind::Index, true, &[Input::checkpoint(&ckpt)])
                .unwrap_err()
                .to_string();
            assert!(e.contains("the checkpoint being read"), "{out:?}: {e}");
        }
        // Inside a directory it reads (the data), spelled with `..` too.
        let data = tmp.path().join("data");
        std::fs::create_dir_all(data.join("a")).unwrap();
        for out in [
            data.join("index"),
            data.join("a/../index"),
            data.join("a/b/c"),
        ] {
            let e = check(&out, OutputKind::Index, true, &[Input::data(&data)])
                .unwrap_err()
                .to_string();
            assert!(e.contains("lies inside"), "{out:?}: {e}");
        }
        let e = check(&ckpt, OutputKind::Index, true, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("exists and is a file"), "{e}");
        let e = check(&ckpt, OutputKind::OnnxFile, true, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not an ONNX model"), "{e}");
        let e = check(&run, OutputKind::OnnxFile, true, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("exists and is a directory"), "{e}");
        let e = check(Path::new("."), OutputKind::Index, true, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("working directory"), "{e}");
        let long = tmp.path().join("x".repeat(250));
        assert!(scratch_beside(&long, "embed").file_name().unwrap().len() < 40);
    }
}
