//! Image folders: `root/<class>/*.jpg` (labelled) or `root/*.jpg` (unlabelled), decoded by `image`.

use std::path::{Path, PathBuf};

use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::image::ImageU8;

const EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff", "pgm",
];
/// Larger images are almost certainly a mistake (or a decompression bomb).
const MAX_SIDE: u32 = 16384;

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn list(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let p = entry.map_err(|e| DataError::io(dir, e))?.path();
        if p.is_dir() {
            dirs.push(p);
        } else if is_image(&p) {
            files.push(p);
        }
    }
    files.sort();
    dirs.sort();
    Ok((files, dirs))
}

pub fn open(root: &Path) -> Result<Dataset> {
    let (top, dirs) = list(root)?;
    let mut paths = Vec::new();
    let mut labels = Vec::new();
    let mut classes = Vec::new();
    let class_dirs: Vec<(PathBuf, Vec<PathBuf>)> = dirs
        .into_iter()
        .map(|d| list(&d).map(|(f, _)| (d, f)))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .filter(|(_, f)| !f.is_empty())
        .collect();
    if !class_dirs.is_empty() {
        for (d, files) in class_dirs {
            let label = classes.len() as u32;
            classes.push(
                d.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string(),
            );
            labels.extend(std::iter::repeat_n(Some(label), files.len()));
            paths.extend(files);
        }
        // Loose files next to class folders have no label.
        labels.extend(std::iter::repeat_n(None, top.len()));
        paths.extend(top);
    } else {
        labels = vec![None; top.len()];
        paths = top;
    }
    if paths.is_empty() {
        return Err(DataError::format(
            root,
            format!("no images found (looked for {})", EXTENSIONS.join(", ")),
        ));
    }
    let name = root
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    Ok(Dataset::files(name, 3, paths, decode_file, labels, classes))
}

/// Decodes any supported file to 8-bit RGB (grayscale, alpha and 16-bit inputs are converted).
pub fn decode_file(path: &Path) -> Result<ImageU8> {
    use std::io::Read;
    let bad = |message: String| DataError::Decode {
        path: path.to_path_buf(),
        message,
    };
    let mut f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let len = f.metadata().map_err(|e| DataError::io(path, e))?.len();
    if len > MAX_FILE_BYTES {
        return Err(bad(format!(
            "{len} bytes, larger than any image this reads ({} MiB)",
            MAX_FILE_BYTES >> 20
        )));
    }
    // The format from the first bytes, before the rest is read: a 3 GB file that is no image
    // used to be read whole first.
    let mut bytes = Vec::new();
    (&mut f)
        .take(64)
        .read_to_end(&mut bytes)
        .map_err(|e| DataError::io(path, e))?;
    if image::guess_format(&bytes).is_err() {
        return Err(bad("unrecognised image format".into()));
    }
    f.read_to_end(&mut bytes)
        .map_err(|e| DataError::io(path, e))?;
    decode_bytes(path, &bytes)
}

/// Largest image file read (an uncompressed 16384 x 16384 RGB image is 768 MiB).
const MAX_FILE_BYTES: u64 = 1 << 30;

/// Decodes image bytes (for uploads and drops as well as files); `name` names them in the error.
pub fn decode_bytes(name: &Path, bytes: &[u8]) -> Result<ImageU8> {
    decode(bytes).map_err(|message| DataError::Decode {
        path: name.to_path_buf(),
        message,
    })
}

fn decode(bytes: &[u8]) -> std::result::Result<ImageU8, String> {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    if reader.format().is_none() {
        return Err("unrecognised image format".into());
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    let mut reader = reader;
    reader.limits(limits);
    let img = reader.decode().map_err(|e| e.to_string())?;
    if img.width() == 0 || img.height() == 0 {
        return Err("image has zero size".into());
    }
    let rgb = img.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    Ok(ImageU8::new(w, h, 3, rgb.into_raw()))
}
