//! Every reader on small fixtures written in the real formats, and on broken ones.

use std::io::Write;
use std::path::Path;

use leoclr_data::{Dataset, DatasetFormat, DatasetSpec, ImageU8, Split, cifar, idx, stl10};

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn open(path: &Path, split: Split) -> Result<Dataset, leoclr_data::DataError> {
    Dataset::open(&DatasetSpec::new(path, split))
}

fn rgb(w: usize, h: usize, seed: u8) -> ImageU8 {
    ImageU8::new(
        w,
        h,
        3,
        (0..w * h * 3)
            .map(|i| (i as u8).wrapping_mul(seed))
            .collect(),
    )
}

#[test]
fn idx_raw_and_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    let pixels: Vec<u8> = (0..3 * 4 * 5).map(|i| i as u8).collect();
    std::fs::write(
        dir.path().join("train-images-idx3-ubyte.gz"),
        gz(&idx::encode(&[3, 4, 5], &pixels)),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("train-labels-idx1-ubyte"),
        idx::encode(&[3], &[7, 0, 9]),
    )
    .unwrap();
    let ds = open(dir.path(), Split::Train).unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!(ds.channels, 1);
    let img = ds.get(1).unwrap();
    assert_eq!((img.width, img.height), (5, 4));
    assert_eq!(img.data, pixels[20..40].to_vec());
    assert_eq!(ds.label(2), Some(9));
    assert!(ds.has_labels());
    // Missing test split: the error names the file it looked for.
    let e = open(dir.path(), Split::Test).unwrap_err().to_string();
    assert!(e.contains("t10k-images-idx3-ubyte"), "{e}");
}

#[test]
fn idx_truncated_corrupt_and_mismatched() {
    let dir = tempfile::tempdir().unwrap();
    let img_path = dir.path().join("train-images-idx3-ubyte");
    let lbl_path = dir.path().join("train-labels-idx1-ubyte");
    let full = idx::encode(&[3, 4, 5], &[1; 60]);
    std::fs::write(&lbl_path, idx::encode(&[3], &[0, 1, 2])).unwrap();
    std::fs::write(&img_path, &full[..full.len() - 7]).unwrap();
    let e = open(dir.path(), Split::Train).unwrap_err().to_string();
    assert!(
        e.contains("train-images-idx3-ubyte") && e.contains("truncated"),
        "{e}"
    );
    // A truncated gzip stream.
    std::fs::remove_file(&img_path).unwrap();
    let z = gz(&full);
    std::fs::write(
        dir.path().join("train-images-idx3-ubyte.gz"),
        &z[..z.len() / 2],
    )
    .unwrap();
    let e = open(dir.path(), Split::Train).unwrap_err().to_string();
    assert!(e.contains("idx3-ubyte.gz") && e.contains("gzip"), "{e}");
    // Not IDX at all.
    std::fs::write(
        dir.path().join("train-images-idx3-ubyte.gz"),
        b"<html>not found</html>",
    )
    .unwrap();
    let e = open(dir.path(), Split::Train).unwrap_err().to_string();
    assert!(e.contains("not an IDX file"), "{e}");
    // Label count differs from image count.
    std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), gz(&full)).unwrap();
    std::fs::write(&lbl_path, idx::encode(&[2], &[0, 1])).unwrap();
    let e = open(dir.path(), Split::Train).unwrap_err().to_string();
    assert!(
        e.contains("train-labels") && e.contains("2 labels for 3 images"),
        "{e}"
    );
    // Images of no pixels: refused when opened, naming the file (they used to reach the loader
    // and panic there).
    std::fs::write(
        dir.path().join("train-images-idx3-ubyte.gz"),
        gz(&idx::encode(&[3, 0, 0], &[])),
    )
    .unwrap();
    std::fs::write(&lbl_path, idx::encode(&[3], &[0, 1, 2])).unwrap();
    let e = open(dir.path(), Split::Train).unwrap_err().to_string();
    assert!(
        e.contains("train-images-idx3-ubyte") && e.contains("0x0 pixels"),
        "{e}"
    );
}

#[test]
fn cifar10_and_cifar100() {
    let dir = tempfile::tempdir().unwrap();
    let c10 = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&c10).unwrap();
    for i in 1..=5 {
        let imgs: Vec<(u8, ImageU8)> = (0..2)
            .map(|j| ((i + j) as u8 % 10, rgb(32, 32, i as u8 + j as u8)))
            .collect();
        std::fs::write(
            c10.join(format!("data_batch_{i}.bin")),
            cifar::encode(&imgs, false),
        )
        .unwrap();
    }
    let test_img = rgb(32, 32, 77);
    std::fs::write(
        c10.join("test_batch.bin"),
        cifar::encode(&[(3, test_img.clone())], false),
    )
    .unwrap();
    std::fs::write(
        c10.join("batches.meta.txt"),
        "airplane\nautomobile\nbird\ncat\n",
    )
    .unwrap();
    let train = open(dir.path(), Split::Train).unwrap();
    assert_eq!(train.len(), 10);
    let test = open(dir.path(), Split::Test).unwrap();
    assert_eq!(
        test.get(0).unwrap(),
        test_img,
        "planar CHW decoded to the same pixels"
    );
    assert_eq!(test.label(0), Some(3));
    assert_eq!(test.classes[3], "cat");
    // Truncated batch file.
    let p = c10.join("data_batch_3.bin");
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() - 100]).unwrap();
    let e = open(dir.path(), Split::Train).unwrap_err().to_string();
    assert!(
        e.contains("data_batch_3.bin") && e.contains("not a multiple"),
        "{e}"
    );

    let c100 = dir.path().join("c100");
    std::fs::create_dir(&c100).unwrap();
    let imgs: Vec<(u8, ImageU8)> = vec![(42, rgb(32, 32, 3)), (99, rgb(32, 32, 5))];
    std::fs::write(c100.join("train.bin"), cifar::encode(&imgs, true)).unwrap();
    std::fs::write(c100.join("test.bin"), cifar::encode(&imgs[..1], true)).unwrap();
    let ds = open(&c100, Split::Train).unwrap();
    assert_eq!(
        leoclr_data::detect_format(&c100).unwrap(),
        DatasetFormat::Cifar100
    );
    assert_eq!(
        (ds.label(0), ds.label(1)),
        (Some(42), Some(99)),
        "fine labels"
    );
    assert_eq!(ds.get(1).unwrap(), imgs[1].1);
    // A CIFAR-10 file read as CIFAR-100 shows absurd labels or sizes: an error, not garbage.
    let bad = Dataset::open(&DatasetSpec {
        path: c10.clone(),
        format: Some(DatasetFormat::Cifar100),
        split: Split::Test,
        limit: None,
    });
    assert!(bad.is_err());
}

#[test]
fn stl10_splits_layout_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("stl10_binary");
    std::fs::create_dir(&d).unwrap();
    let a = rgb(96, 96, 3);
    let b = rgb(96, 96, 11);
    let rec = |imgs: &[&ImageU8]| {
        imgs.iter()
            .flat_map(|i| stl10::encode_record(i))
            .collect::<Vec<u8>>()
    };
    std::fs::write(d.join("train_X.bin"), rec(&[&a, &b])).unwrap();
    std::fs::write(d.join("train_y.bin"), [1u8, 10]).unwrap();
    std::fs::write(d.join("test_X.bin"), rec(&[&b])).unwrap();
    std::fs::write(d.join("test_y.bin"), [4u8]).unwrap();
    std::fs::write(d.join("unlabeled_X.bin"), rec(&[&a, &a, &b])).unwrap();
    let train = open(dir.path(), Split::Train).unwrap();
    assert_eq!(train.get(1).unwrap(), b, "column-major planes decoded");
    assert_eq!((train.label(0), train.label(1)), (Some(0), Some(9)));
    assert_eq!(open(dir.path(), Split::Test).unwrap().label(0), Some(3));
    let un = open(dir.path(), Split::Unlabeled).unwrap();
    assert_eq!(un.len(), 3);
    assert!(!un.has_labels());
    let both = open(dir.path(), Split::TrainUnlabeled).unwrap();
    assert_eq!(both.len(), 5);
    assert_eq!(both.get(4).unwrap(), b);
    // Truncated unlabeled file.
    let x = std::fs::read(d.join("unlabeled_X.bin")).unwrap();
    std::fs::write(d.join("unlabeled_X.bin"), &x[..x.len() - 1]).unwrap();
    let e = open(dir.path(), Split::Unlabeled).unwrap_err().to_string();
    assert!(
        e.contains("unlabeled_X.bin") && e.contains("truncated"),
        "{e}"
    );
    // A label out of range.
    std::fs::write(d.join("test_y.bin"), [0u8]).unwrap();
    assert!(
        open(dir.path(), Split::Test)
            .unwrap_err()
            .to_string()
            .contains("test_y.bin")
    );
}

#[test]
fn image_folders_labelled_flat_and_every_pixel_format() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    for c in ["cats", "dogs"] {
        std::fs::create_dir_all(root.join(c)).unwrap();
    }
    image::RgbImage::from_fn(10, 6, |x, y| image::Rgb([x as u8 * 20, y as u8 * 30, 7]))
        .save(root.join("cats/a.png"))
        .unwrap();
    image::RgbImage::from_fn(8, 8, |x, _| image::Rgb([x as u8 * 30, 100, 200]))
        .save(root.join("cats/b.jpg"))
        .unwrap();
    image::GrayImage::from_fn(5, 5, |x, _| image::Luma([x as u8 * 50]))
        .save(root.join("dogs/gray.png"))
        .unwrap();
    image::RgbaImage::from_fn(4, 4, |_, _| image::Rgba([10, 20, 30, 0]))
        .save(root.join("dogs/alpha.png"))
        .unwrap();
    image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::from_fn(3, 3, |_, _| {
        image::Rgb([65535, 32768, 0])
    })
    .save(root.join("dogs/deep.png"))
    .unwrap();
    let webp =
        image::RgbImage::from_fn(6, 6, |x, y| image::Rgb([(x * 40) as u8, (y * 40) as u8, 0]));
    let mut buf = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut buf)
        .encode(webp.as_raw(), 6, 6, image::ExtendedColorType::Rgb8)
        .unwrap();
    std::fs::write(root.join("dogs/w.webp"), buf).unwrap();
    std::fs::write(root.join("dogs/notes.txt"), "ignored").unwrap();

    let ds = open(&root, Split::Train).unwrap();
    assert_eq!(ds.len(), 6);
    assert_eq!(ds.classes, vec!["cats", "dogs"]);
    assert_eq!(ds.channels, 3);
    for i in 0..ds.len() {
        let img = ds.get(i).unwrap();
        assert_eq!(img.channels, 3);
        assert_eq!(img.data.len(), img.width * img.height * 3);
    }
    let find = |name: &str| {
        (0..ds.len())
            .find(|&i| ds.describe(i).ends_with(name))
            .unwrap()
    };
    let g = ds.get(find("gray.png")).unwrap();
    assert_eq!(&g.data[3..6], &[50, 50, 50], "grayscale replicated");
    assert_eq!(
        &ds.get(find("deep.png")).unwrap().data[..3],
        &[255, 128, 0],
        "16-bit scaled to 8"
    );
    assert_eq!(
        &ds.get(find("alpha.png")).unwrap().data[..3],
        &[10, 20, 30],
        "alpha dropped"
    );
    assert_eq!(ds.get(find("w.webp")).unwrap().width, 6);
    assert_eq!(ds.label(find("b.jpg")), Some(0));

    // A corrupt file: a clear error naming it when it is read.
    std::fs::write(
        root.join("dogs/broken.jpg"),
        b"\xff\xd8\xff\xe0 definitely not a jpeg",
    )
    .unwrap();
    let ds = open(&root, Split::Train).unwrap();
    let i = (0..ds.len())
        .find(|&i| ds.describe(i).ends_with("broken.jpg"))
        .unwrap();
    let e = ds.get(i).unwrap_err().to_string();
    assert!(
        e.contains("broken.jpg") && e.contains("cannot decode"),
        "{e}"
    );
    // Truncated PNG.
    let png = std::fs::read(root.join("cats/a.png")).unwrap();
    std::fs::write(root.join("cats/a.png"), &png[..png.len() / 2]).unwrap();
    assert!(
        ds.get(find("a.png"))
            .unwrap_err()
            .to_string()
            .contains("a.png")
    );

    // Flat folder: unlabelled.
    let flat = dir.path().join("flat");
    std::fs::create_dir(&flat).unwrap();
    std::fs::copy(root.join("cats/b.jpg"), flat.join("x.jpg")).unwrap();
    let ds = open(&flat, Split::Train).unwrap();
    assert_eq!(ds.len(), 1);
    assert!(!ds.has_labels());
    // Empty folder.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(
        open(&empty, Split::Train)
            .unwrap_err()
            .to_string()
            .contains("no images")
    );
    // A path that does not exist.
    assert!(
        open(&dir.path().join("nope"), Split::Train)
            .unwrap_err()
            .to_string()
            .contains("nope")
    );
}
