//! InfoNCE, the loss every objective here is made of.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// The negatives a query is contrasted with: the queue of past keys, at a temperature, and
/// optionally which of them to leave out.
#[derive(Clone, Copy)]
pub struct Negatives<'a> {
    /// `[K, C]` L2-normalised past keys.
    pub queue: &'a Tensor<2>,
    pub temperature: f64,
    /// Leave out the queued keys of the batch's own images (`None`: every key is a negative).
    pub same_image: Option<SameImage<'a>>,
}

/// The image ids that say which queued keys are the batch's own images' (stale keys of the same
/// image, from the previous epoch: nearly the positive itself).
#[derive(Clone, Copy)]
pub struct SameImage<'a> {
    /// `[K]`: the image of each queued key.
    pub queue_ids: &'a Tensor<1, Int>,
    /// `[N]`: the image of each query row.
    pub batch_ids: &'a Tensor<1, Int>,
}

/// A logit small enough that its exponential is 0 in f32 after any temperature here.
const LEFT_OUT: f32 = -1e4;

/// InfoNCE of MoCo: logits `[q.k+, q.queue] / T`, cross-entropy with the positive at index 0.
/// `q`, `k`: `[N, C]` L2-normalised. Keys and queue are detached here. With `same_image`, a
/// queued key of a row's own image is no negative of that row.
pub fn info_nce(q: &Tensor<2>, k: &Tensor<2>, negatives: &Negatives<'_>) -> Tensor<1> {
    let [n, _] = q.dims();
    let pos = (q.clone() * k.clone().detach()).sum_dim(1);
    let mut neg = q
        .clone()
        .matmul(negatives.queue.clone().detach().transpose());
    if let Some(same) = negatives.same_image {
        let kq = neg.dims()[1];
        let own = same
            .batch_ids
            .clone()
            .reshape([n, 1])
            .expand([n, kq])
            .equal(same.queue_ids.clone().reshape([1, kq]).expand([n, kq]));
        neg = neg.mask_fill(own, LEFT_OUT);
    }
    let logits = Tensor::cat(vec![pos, neg], 1).div_scalar(negatives.temperature);
    let lsm = log_softmax(logits, 1);
    lsm.slice([0..n, 0..1]).mean().neg()
}

/// The hand-computed InfoNCE the objectives' tests compare with.
#[cfg(test)]
pub(crate) fn tests_reference(
    q: &[[f32; 2]],
    k: &[[f32; 2]],
    queue: &[[f32; 2]],
    temp: f32,
) -> f32 {
    tests::reference(q, k, queue, temp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t(v: Vec<f32>, r: usize, c: usize) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v, [r, c]), &Device::flex())
    }

    /// -log(exp(pos/T) / (exp(pos/T) + sum exp(neg/T))), averaged over rows.
    pub(crate) fn reference(q: &[[f32; 2]], k: &[[f32; 2]], queue: &[[f32; 2]], temp: f32) -> f32 {
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
        let qt = t(queue.concat(), 3, 2);
        let negatives = Negatives {
            queue: &qt,
            temperature: 0.5,
            same_image: None,
        };
        let got =
            info_nce(&t(q.concat(), 2, 2), &t(k.concat(), 2, 2), &negatives).into_scalar::<f32>();
        let want = reference(&q, &k, &queue, 0.5);
        // Row 1: pos 1.414, negs e^-2 + e^0 + e^1.414; row 2: pos e^2, negs e^0 + e^-2 + e^-1.414.
        let row1 = -((2f32.sqrt()).exp()
            / (2f32.sqrt().exp() + (-2f32).exp() + 1.0 + 2f32.sqrt().exp()))
        .ln();
        let row2 = -(2f32.exp() / (2f32.exp() + 1.0 + (-2f32).exp() + (-(2f32.sqrt())).exp())).ln();
        assert!((want - (row1 + row2) / 2.0).abs() < 1e-6);
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");

        // Row 0's image also has queue key 2 (a stale key of itself), row 1's nothing queued:
        // masked, row 0 is contrasted with keys 0 and 1 alone, row 1 unchanged.
        let dev = Device::flex();
        let ids =
            |v: Vec<i64>| Tensor::<1, Int>::from_data(TensorData::new(v.clone(), [v.len()]), &dev);
        let (queue_ids, batch_ids) = (ids(vec![5, 6, 7]), ids(vec![7, 9]));
        let masked = Negatives {
            same_image: Some(SameImage {
                queue_ids: &queue_ids,
                batch_ids: &batch_ids,
            }),
            ..negatives
        };
        let got =
            info_nce(&t(q.concat(), 2, 2), &t(k.concat(), 2, 2), &masked).into_scalar::<f32>();
        let want = (reference(&q[..1], &k[..1], &queue[..2], 0.5)
            + reference(&q[1..], &k[1..], &queue, 0.5))
            / 2.0;
        assert!((got - want).abs() < 1e-5, "masked {got} vs {want}");
    }
}
