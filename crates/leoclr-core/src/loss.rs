//! InfoNCE, and the LeOCLR / MoCo-v2 objectives built from it.

use burn::tensor::Tensor;
use burn::tensor::activation::log_softmax;

/// InfoNCE of MoCo: logits `[q.k+, q.queue] / T`, cross-entropy with the positive at index 0.
/// `q`, `k`: `[N, C]` L2-normalised; `queue`: `[K, C]`. Keys are detached here.
pub fn info_nce(q: Tensor<2>, k: Tensor<2>, queue: Tensor<2>, temperature: f64) -> Tensor<1> {
    let [n, _] = q.dims();
    let pos = (q.clone() * k.detach()).sum_dim(1);
    let neg = q.matmul(queue.detach().transpose());
    let logits = Tensor::cat(vec![pos, neg], 1).div_scalar(temperature);
    let lsm = log_softmax(logits, 1);
    lsm.slice([0..n, 0..1]).mean().neg()
}

use crate::config::{Method, OriginalBranch};

pub const CROP1: usize = 0;
pub const CROP2: usize = 1;
pub const ORIGINAL: usize = 2;

/// Which views (crop 1, crop 2, original) each encoder must see for a method.
pub fn views_needed(method: Method) -> (&'static [usize], &'static [usize]) {
    match method {
        Method::Leoclr {
            original_branch: OriginalBranch::Key,
        } => (&[CROP1, CROP2], &[ORIGINAL]),
        Method::Leoclr {
            original_branch: OriginalBranch::Query,
        } => (&[ORIGINAL], &[CROP1, CROP2]),
        Method::Mocov2 { symmetric: true } => (&[CROP1, CROP2], &[CROP1, CROP2]),
        Method::Mocov2 { symmetric: false } => (&[CROP1], &[CROP2]),
    }
}

/// Encoder forward passes per image and step (both encoders): 4 for symmetric MoCo-v2, 3 for
/// LeOCLR, 2 for asymmetric MoCo-v2. Equal epochs are not equal compute.
pub fn forward_passes(method: Method) -> usize {
    let (q, k) = views_needed(method);
    q.len() + k.len()
}

/// The objective of a method from the encoded views (`q[i]`: online encoder, `k[i]`: key encoder,
/// indexed by [`CROP1`], [`CROP2`], [`ORIGINAL`]). Returns the loss and the keys to enqueue.
///
/// - LeOCLR, original through the key encoder: l(q(c1), k(o)) + l(q(c2), k(o)); enqueue k(o).
/// - LeOCLR, original through the query encoder: l(q(o), k(c1)) + l(q(o), k(c2)); enqueue k(c1), k(c2).
/// - MoCo-v2 symmetric: l(q(c1), k(c2)) + l(q(c2), k(c1)); enqueue k(c1), k(c2).
/// - MoCo-v2 asymmetric: l(q(c1), k(c2)); enqueue k(c2).
pub fn objective(
    method: Method,
    q: &[Option<Tensor<2>>; 3],
    k: &[Option<Tensor<2>>; 3],
    queue: &Tensor<2>,
    temperature: f64,
) -> crate::Result<(Tensor<1>, Tensor<2>)> {
    let l =
        |a: &Tensor<2>, b: &Tensor<2>| info_nce(a.clone(), b.clone(), queue.clone(), temperature);
    let (qv, kv) = views_needed(method);
    let missing = || {
        crate::Error::Config(format!(
            "{} needs query views {qv:?} and key views {kv:?} (0 crop 1, 1 crop 2, 2 original)",
            method.label()
        ))
    };
    let [q1, q2, qo] = q;
    let [k1, k2, ko] = k;
    let loss = match method {
        Method::Leoclr {
            original_branch: OriginalBranch::Key,
        } => match (q1, q2, ko) {
            (Some(q1), Some(q2), Some(ko)) => l(q1, ko) + l(q2, ko),
            _ => return Err(missing()),
        },
        Method::Leoclr {
            original_branch: OriginalBranch::Query,
        } => match (qo, k1, k2) {
            (Some(qo), Some(k1), Some(k2)) => l(qo, k1) + l(qo, k2),
            _ => return Err(missing()),
        },
        Method::Mocov2 { symmetric: true } => match (q1, q2, k1, k2) {
            (Some(q1), Some(q2), Some(k1), Some(k2)) => l(q1, k2) + l(q2, k1),
            _ => return Err(missing()),
        },
        Method::Mocov2 { symmetric: false } => match (q1, k2) {
            (Some(q1), Some(k2)) => l(q1, k2),
            _ => return Err(missing()),
        },
    };
    Ok((loss, enqueue_keys(method, k)?))
}

/// The keys a step of `method` enqueues, from its key views: k(o) for LeOCLR with the original
/// through the key encoder, k(c2) for asymmetric MoCo-v2, k(c1) then k(c2) (view-major) for the
/// two-key methods. Data-parallel training calls it on the keys gathered from every device, so
/// the queue receives the global batch in the order one device would enqueue it.
pub fn enqueue_keys(method: Method, k: &[Option<Tensor<2>>; 3]) -> crate::Result<Tensor<2>> {
    let [k1, k2, ko] = k;
    let missing = || {
        crate::Error::Config(format!(
            "{} needs key views {:?} (0 crop 1, 1 crop 2, 2 original)",
            method.label(),
            views_needed(method).1
        ))
    };
    Ok(match method {
        Method::Leoclr {
            original_branch: OriginalBranch::Key,
        } => ko.clone().ok_or_else(missing)?,
        Method::Mocov2 { symmetric: false } => k2.clone().ok_or_else(missing)?,
        Method::Leoclr {
            original_branch: OriginalBranch::Query,
        }
        | Method::Mocov2 { symmetric: true } => match (k1, k2) {
            (Some(k1), Some(k2)) => Tensor::cat(vec![k1.clone(), k2.clone()], 0),
            _ => return Err(missing()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t(v: Vec<f32>, r: usize, c: usize) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v, [r, c]), &Device::flex())
    }

    /// Reference: -log(exp(pos/T) / (exp(pos/T) + sum exp(neg/T))), averaged over rows.
    fn reference(q: &[[f32; 2]], k: &[[f32; 2]], queue: &[[f32; 2]], temp: f32) -> f32 {
        let dot = |a: &[f32; 2], b: &[f32; 2]| a[0] * b[0] + a[1] * b[1];
        let mut total = 0.0;
        for (qi, ki) in q.iter().zip(k) {
            let pos = (dot(qi, ki) / temp).exp();
            let neg: f32 = queue.iter().map(|n| (dot(qi, n) / temp).exp()).sum();
            total += -(pos / (pos + neg)).ln();
        }
        total / q.len() as f32
    }

    #[test]
    fn info_nce_equals_hand_computed_value() {
        let s = std::f32::consts::FRAC_1_SQRT_2;
        let q = [[1.0, 0.0], [0.0, 1.0]];
        let k = [[s, s], [0.0, 1.0]];
        let queue = [[-1.0, 0.0], [0.0, -1.0], [s, -s]];
        let got = info_nce(
            t(q.concat(), 2, 2),
            t(k.concat(), 2, 2),
            t(queue.concat(), 3, 2),
            0.5,
        )
        .into_scalar::<f32>();
        let want = reference(&q, &k, &queue, 0.5);
        // Row 1: pos 1.414, negs e^-2 + e^0 + e^1.414; row 2: pos e^2, negs e^0 + e^-2 + e^-1.414.
        let row1 = -((2f32.sqrt()).exp()
            / (2f32.sqrt().exp() + (-2f32).exp() + 1.0 + 2f32.sqrt().exp()))
        .ln();
        let row2 = -(2f32.exp() / (2f32.exp() + 1.0 + (-2f32).exp() + (-(2f32.sqrt())).exp())).ln();
        assert!((want - (row1 + row2) / 2.0).abs() < 1e-6);
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }

    #[test]
    fn each_method_equals_its_hand_computed_objective() {
        let s = std::f32::consts::FRAC_1_SQRT_2;
        // Distinct unit vectors per view and encoder, one row each.
        let qv = [[1.0, 0.0], [0.0, 1.0], [s, s]];
        let kv = [[s, -s], [-1.0, 0.0], [0.6, 0.8]];
        let queue = [[0.0, -1.0], [-s, s]];
        let temp = 0.2;
        let r = |a: usize, b: usize| reference(&[qv[a]], &[kv[b]], &queue, temp);
        let qs = [0, 1, 2].map(|i| Some(t(qv[i].to_vec(), 1, 2)));
        let ks = [0, 1, 2].map(|i| Some(t(kv[i].to_vec(), 1, 2)));
        let qt = t(queue.concat(), 2, 2);
        let cases = [
            (
                Method::Leoclr {
                    original_branch: OriginalBranch::Key,
                },
                r(CROP1, ORIGINAL) + r(CROP2, ORIGINAL),
                1,
            ),
            (
                Method::Leoclr {
                    original_branch: OriginalBranch::Query,
                },
                r(ORIGINAL, CROP1) + r(ORIGINAL, CROP2),
                2,
            ),
            (
                Method::Mocov2 { symmetric: true },
                r(CROP1, CROP2) + r(CROP2, CROP1),
                2,
            ),
            (Method::Mocov2 { symmetric: false }, r(CROP1, CROP2), 1),
        ];
        for (method, want, enqueued) in cases {
            let (loss, keys) = objective(method, &qs, &ks, &qt, temp as f64).unwrap();
            let got = loss.into_scalar::<f32>();
            assert!((got - want).abs() < 1e-4, "{method:?}: {got} vs {want}");
            assert_eq!(keys.dims()[0], enqueued, "{method:?}");
        }
        // The branch setting matters: the two LeOCLR variants differ on these tensors.
        assert!(
            (r(CROP1, ORIGINAL) + r(CROP2, ORIGINAL) - r(ORIGINAL, CROP1) - r(ORIGINAL, CROP2))
                .abs()
                > 1e-3
        );
    }
}
