//! Training objectives. An objective says which views each encoder reads, what its loss is, and
//! what a step enqueues; a [`Recipe`] in the registry names it with its settings, and every front
//! end (`train`, `compare`, the app, the browser) lists methods from that registry.
//!
//! Adding an objective: a file here implementing [`Objective`], and in `registry.rs` a variant of
//! [`Method`] and a line in [`RECIPES`].

mod info_nce;
mod leoclr;
mod mocov2;
mod registry;

use burn::tensor::Tensor;
pub use leoclr_data::{ViewKind, Views};

pub use info_nce::{Negatives, SameImage, info_nce};
pub use leoclr::{Leoclr, OriginalBranch};
pub use mocov2::Mocov2;
pub use registry::{Method, RECIPES, Recipe, default_recipe, recipe};

use crate::{Error, Result};

/// The views each encoder encodes in a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reads {
    /// Through the query (online) encoder, with gradients.
    pub query: &'static [ViewKind],
    /// Through the momentum (key) encoder, without.
    pub key: &'static [ViewKind],
}

impl Reads {
    /// Every view either encoder reads.
    pub fn any(&self) -> Views<bool> {
        Views::from_fn(|v| self.query.contains(&v) || self.key.contains(&v))
    }

    /// Encoder forward passes per image and step, both encoders.
    pub fn forward_passes(&self) -> usize {
        self.query.len() + self.key.len()
    }

    /// The compute of a step per image in forward-pass units: a query view costs a forward and
    /// a backward ([`BACKWARD_COST`] forwards), a key view a forward alone. LeOCLR (original as
    /// key) 2 x 3 + 1 = 7, asymmetric MoCo-v2 3 + 1 = 4, symmetric 2 x 3 + 2 = 8.
    pub fn cost(&self) -> f64 {
        self.query.len() as f64 * (1.0 + BACKWARD_COST) + self.key.len() as f64
    }
}

/// A backward pass through an encoder costs about this many forward passes (the input and the
/// weight gradient, each a convolution as large as the forward's): the usual factor of two,
/// checked against measured step times in docs/results.md.
pub const BACKWARD_COST: f64 = 2.0;

/// A step's encoded views: `queries[v]` for the views the query encoder read, `keys[v]` for the
/// key encoder's; `None` elsewhere.
pub struct Encoded {
    pub queries: Views<Option<Tensor<2>>>,
    pub keys: Views<Option<Tensor<2>>>,
}

/// A contrastive objective over the three views.
pub trait Objective {
    /// The short stable name result tables use (`leoclr_key`, `mocov2_asym`, ...).
    fn label(&self) -> &'static str;

    fn reads(&self) -> Reads;

    /// The loss of a step (`n` carries the queue and temperature).
    fn loss(&self, e: &Encoded, n: &Negatives<'_>) -> Result<Tensor<1>>;

    /// The keys a step enqueues: by default every key view read, in view order (crop 1 before
    /// crop 2), which is also the order data-parallel training gathers them in.
    fn enqueued(&self, keys: &Views<Option<Tensor<2>>>) -> Result<Tensor<2>> {
        let reads = self.reads();
        let mut out = Vec::with_capacity(reads.key.len());
        for v in ViewKind::ALL.into_iter().filter(|v| reads.key.contains(v)) {
            match &keys[v] {
                Some(k) => out.push(k.clone()),
                None => return Err(missing_key(self.label(), v)),
            }
        }
        match out.len() {
            0 => Err(Error::Config(format!("{} reads no key view", self.label()))),
            1 => Ok(out.swap_remove(0)),
            _ => Ok(Tensor::cat(out, 0)),
        }
    }
}

/// The image ids of [`Objective::enqueued`]'s keys, for images `ids` of a batch: the batch's ids
/// once per key view, in the same order.
pub fn enqueued_ids(o: &dyn Objective, ids: &[usize]) -> Vec<i64> {
    let views = o.reads().key.len();
    (0..views)
        .flat_map(|_| ids.iter().map(|&i| i as i64))
        .collect()
}

fn missing_key(label: &str, v: ViewKind) -> Error {
    Error::Config(format!("{label} needs the key of the {v} view"))
}

/// The error of an objective whose step lacks the query of `q` or the key of `k`.
fn missing(o: &dyn Objective, q: ViewKind, k: ViewKind) -> Error {
    Error::Config(format!(
        "{} needs the query of the {q} view and the key of the {k} view",
        o.label()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t(v: Vec<f32>, r: usize, c: usize) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v, [r, c]), &Device::flex())
    }

    #[test]
    fn each_method_equals_its_hand_computed_objective() {
        let s = std::f32::consts::FRAC_1_SQRT_2;
        // Distinct unit vectors per view and encoder, one row each.
        let qv = Views {
            crop1: [1.0, 0.0],
            crop2: [0.0, 1.0],
            original: [s, s],
        };
        let kv = Views {
            crop1: [s, -s],
            crop2: [-1.0, 0.0],
            original: [0.6, 0.8],
        };
        let queue = [[0.0, -1.0], [-s, s]];
        let temp = 0.2;
        let r =
            |a: ViewKind, b: ViewKind| info_nce::tests_reference(&[qv[a]], &[kv[b]], &queue, temp);
        let e = Encoded {
            queries: qv.map(|_, v| Some(t(v.to_vec(), 1, 2))),
            keys: kv.map(|_, v| Some(t(v.to_vec(), 1, 2))),
        };
        let qt = t(queue.concat(), 2, 2);
        let n = Negatives {
            queue: &qt,
            temperature: temp as f64,
            same_image: None,
        };
        use ViewKind::{Crop1, Crop2, Original};
        let cases = [
            (
                Method::Leoclr {
                    original_branch: OriginalBranch::Key,
                },
                r(Crop1, Original) + r(Crop2, Original),
                1,
            ),
            (
                Method::Leoclr {
                    original_branch: OriginalBranch::Query,
                },
                r(Original, Crop1) + r(Original, Crop2),
                2,
            ),
            (
                Method::Mocov2 { symmetric: true },
                r(Crop1, Crop2) + r(Crop2, Crop1),
                2,
            ),
            (Method::Mocov2 { symmetric: false }, r(Crop1, Crop2), 1),
        ];
        for (method, want, enqueued) in cases {
            let o = method.objective();
            let got = o.loss(&e, &n).unwrap().into_scalar::<f32>();
            assert!((got - want).abs() < 1e-4, "{method:?}: {got} vs {want}");
            assert_eq!(
                o.enqueued(&e.keys).unwrap().dims()[0],
                enqueued,
                "{method:?}"
            );
        }
        // The branch setting matters: the two LeOCLR variants differ on these tensors.
        assert!(
            (r(Crop1, Original) + r(Crop2, Original) - r(Original, Crop1) - r(Original, Crop2))
                .abs()
                > 1e-3
        );
        // A missing view is an error naming it, not a panic.
        let partial = Encoded {
            queries: Views::from_fn(|_| None),
            keys: Views::from_fn(|_| None),
        };
        let err = Method::ALL[0].objective().loss(&partial, &n).err().unwrap();
        assert!(err.to_string().contains("crop 1"), "{err}");
    }
}
