//! The Map's t-SNE: computed on demand for the gallery on screen, on a worker thread with progress
//! on the desktop, a few iterations a frame in the browser (which has no threads). A new model or
//! gallery (a "Train here" snapshot) starts it again.

use eframe::egui;
use leoclr_core::tsne::{MAX_POINTS, Tsne, TsneParams};

use crate::gallery::Gallery;

/// Which gallery a computation is for: the model that embedded it and its size.
type Key = (u64, usize);

#[derive(Default)]
pub struct TsneMap {
    key: Option<Key>,
    #[cfg(not(target_arch = "wasm32"))]
    job: Option<crate::jobs::Job<Vec<[f32; 2]>>>,
    #[cfg(target_arch = "wasm32")]
    run: Option<Tsne>,
    points: Option<Vec<[f32; 2]>>,
    pub error: Option<String>,
    /// (iterations done, in all) of the computation under way.
    pub progress: (usize, usize),
}

impl TsneMap {
    /// The gallery's t-SNE map once computed; until then `None`, with the computation started
    /// (or advanced, in the browser) and `progress` updated.
    pub fn points(&mut self, ctx: &egui::Context, g: &Gallery) -> Option<&[[f32; 2]]> {
        let key = (g.model_id, g.len());
        if self.key != Some(key) {
            self.start(ctx, g, key);
        }
        self.advance();
        self.points.as_deref()
    }

    /// Why this gallery gets no t-SNE, if it does not.
    pub fn unavailable(g: &Gallery) -> Option<String> {
        (g.len() > MAX_POINTS || g.len() < 4).then(|| {
            format!(
                "t-SNE maps 4 to {MAX_POINTS} images (exact, its cost grows with the square); this \
                 gallery has {}",
                g.len()
            )
        })
    }

    fn start(&mut self, ctx: &egui::Context, g: &Gallery, key: Key) {
        *self = Self {
            key: Some(key),
            ..Self::default()
        };
        let params = TsneParams::default();
        self.progress = (0, params.iterations);
        let (features, dim) = (g.features.clone(), g.dim);
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.job = Some(crate::jobs::Job::spawn("t-SNE", ctx, move |report| {
                let mut t = Tsne::new(&features, dim, params)?;
                while !t.step(10) {
                    let (done, total) = t.progress();
                    report(done, total);
                }
                Ok(t.points().to_vec())
            }));
        }
        #[cfg(target_arch = "wasm32")]
        {
            let _ = ctx;
            match Tsne::new(&features, dim, params) {
                Ok(t) => self.run = Some(t),
                Err(e) => self.error = Some(e.to_string()),
            }
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn advance(&mut self) {
        let Some(job) = &mut self.job else { return };
        let p = job.progress;
        self.progress.0 = p.done;
        match job.poll() {
            Some(Ok(pts)) => {
                self.points = Some(pts);
                self.job = None;
            }
            Some(Err(e)) => {
                self.error = Some(e.to_string());
                self.job = None;
            }
            None => {}
        }
    }

    /// In the browser: as many iterations as keep a frame short (each costs the square of the
    /// gallery's size).
    #[cfg(target_arch = "wasm32")]
    fn advance(&mut self) {
        let Some(t) = &mut self.run else { return };
        let n = self.key.map_or(1, |k| k.1.max(1));
        let steps = (4_000_000 / (n * n)).clamp(1, 50);
        let done = t.step(steps);
        self.progress = t.progress();
        if done {
            self.points = Some(t.points().to_vec());
            self.run = None;
        }
    }
}

/// Where a feature from outside the gallery lands on a t-SNE map (which has no projection for new
/// points): the similarity-weighted mean of its five nearest gallery images' positions.
pub fn place(g: &Gallery, points: &[[f32; 2]], feature: &[f32]) -> Option<[f32; 2]> {
    if feature.len() != g.dim {
        return None;
    }
    let near = g.search(feature, 5, None);
    let (mut sum, mut w) = ([0f32; 2], 0f32);
    for (i, s) in near {
        let p = points.get(i)?;
        let s = s.max(1e-3);
        sum = [sum[0] + s * p[0], sum[1] + s * p[1]];
        w += s;
    }
    (w > 0.0).then(|| [sum[0] / w, sum[1] / w])
}
