//! Dataset thumbnails as egui textures, decoded on first display and cached per dataset.

use std::collections::HashMap;
use std::sync::Arc;

use eframe::egui;
use leoclr_data::{Dataset, ImageU8};

/// Largest thumbnail side; bigger images are shrunk (box filter) before upload.
const MAX_SIDE: usize = 96;

/// Nearest-multiple box downscale so a 4000-pixel photo does not become a 4000-pixel texture.
pub fn shrink(img: &ImageU8) -> ImageU8 {
    let f = img.width.max(img.height).div_ceil(MAX_SIDE).max(1);
    if f == 1 {
        return img.clone();
    }
    let (w, h, c) = (
        (img.width / f).max(1),
        (img.height / f).max(1),
        img.channels,
    );
    let mut data = Vec::with_capacity(w * h * c);
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                let mut s = 0u32;
                for dy in 0..f {
                    for dx in 0..f {
                        let (sx, sy) = (
                            (x * f + dx).min(img.width - 1),
                            (y * f + dy).min(img.height - 1),
                        );
                        s += img.at(sx, sy, ch) as u32;
                    }
                }
                data.push((s / (f * f) as u32) as u8);
            }
        }
    }
    ImageU8::new(w, h, c, data)
}

pub fn texture(ctx: &egui::Context, name: String, img: &ImageU8) -> egui::TextureHandle {
    let img = shrink(img);
    let color = egui::ColorImage::from_rgb([img.width, img.height], &img.to_rgb());
    ctx.load_texture(name, color, egui::TextureOptions::NEAREST)
}

/// Texture cache for one dataset.
#[derive(Default)]
pub struct Thumbs {
    dataset: Option<Arc<Dataset>>,
    cache: HashMap<usize, Option<egui::TextureHandle>>,
}

impl Thumbs {
    /// The thumbnail of item `i`, `None` when it cannot be decoded (the grid shows a placeholder).
    pub fn get(
        &mut self,
        ctx: &egui::Context,
        ds: &Arc<Dataset>,
        i: usize,
    ) -> Option<egui::TextureHandle> {
        if !self.dataset.as_ref().is_some_and(|d| Arc::ptr_eq(d, ds)) {
            self.dataset = Some(ds.clone());
            self.cache.clear();
        }
        self.cache
            .entry(i)
            .or_insert_with(|| {
                ds.get(i)
                    .ok()
                    .map(|img| texture(ctx, format!("thumb-{i}"), &img))
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_keeps_small_and_averages_large() {
        let small = ImageU8::new(28, 28, 1, vec![7; 28 * 28]);
        assert_eq!(shrink(&small), small);
        let big = ImageU8::new(400, 200, 3, vec![200; 400 * 200 * 3]);
        let s = shrink(&big);
        assert!(s.width <= MAX_SIDE && s.height <= MAX_SIDE && s.width == 2 * s.height);
        assert!(s.data.iter().all(|&v| v == 200));
    }
}
