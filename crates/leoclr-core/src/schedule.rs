//! Learning-rate and EMA-momentum schedules, as pure functions of the global step.

use std::f64::consts::PI;

/// Linear warm-up to `base`, then cosine decay to 0 at `total`.
pub fn cosine_lr(base: f64, step: usize, total: usize, warmup: usize) -> f64 {
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    let span = (total - warmup).max(1) as f64;
    let t = ((step - warmup) as f64 / span).min(1.0);
    base * 0.5 * (1.0 + (PI * t).cos())
}

/// EMA momentum, optionally ramped to 1 with a cosine (BYOL): m_t = 1 - (1 - m)(cos(pi t/T) + 1)/2.
pub fn ema_momentum(m: f64, step: usize, total: usize, cosine: bool) -> f64 {
    if !cosine {
        return m;
    }
    let t = (step as f64 / total.max(1) as f64).min(1.0);
    1.0 - (1.0 - m) * ((PI * t).cos() + 1.0) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_have_the_right_shape() {
        assert!((cosine_lr(1.0, 0, 100, 10) - 0.1).abs() < 1e-12);
        assert!((cosine_lr(1.0, 9, 100, 10) - 1.0).abs() < 1e-12);
        assert!((cosine_lr(1.0, 10, 100, 10) - 1.0).abs() < 1e-12);
        assert!((cosine_lr(1.0, 55, 100, 10) - 0.5).abs() < 1e-12);
        assert!(cosine_lr(1.0, 100, 100, 10).abs() < 1e-12);
        assert_eq!(ema_momentum(0.99, 50, 100, false), 0.99);
        assert!((ema_momentum(0.99, 0, 100, true) - 0.99).abs() < 1e-12);
        assert!((ema_momentum(0.99, 100, 100, true) - 1.0).abs() < 1e-12);
    }
}
