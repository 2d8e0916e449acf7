//! MoCo-v2: two random crops attracted to each other. Symmetric, `l(q(c1), k(c2)) + l(q(c2),
//! k(c1))` with both crops' keys enqueued; asymmetric, `l(q(c1), k(c2))` with `k(c2)` enqueued.

use burn::tensor::Tensor;

use super::info_nce::{Negatives, info_nce};
use super::{Encoded, Objective, Reads, ViewKind, missing};
use crate::Result;

use ViewKind::{Crop1, Crop2};

pub struct Mocov2 {
    pub symmetric: bool,
}

impl Objective for Mocov2 {
    fn label(&self) -> &'static str {
        match self.symmetric {
            true => "mocov2_sym",
            false => "mocov2_asym",
        }
    }

    fn reads(&self) -> Reads {
        match self.symmetric {
            true => Reads {
                query: &[Crop1, Crop2],
                key: &[Crop1, Crop2],
            },
            false => Reads {
                query: &[Crop1],
                key: &[Crop2],
            },
        }
    }

    fn loss(&self, e: &Encoded, n: &Negatives<'_>) -> Result<Tensor<1>> {
        let l = |qv: ViewKind, kv: ViewKind| match (&e.queries[qv], &e.keys[kv]) {
            (Some(q), Some(k)) => Ok(info_nce(q, k, n)),
            _ => Err(missing(self, qv, kv)),
        };
        match self.symmetric {
            true => Ok(l(Crop1, Crop2)? + l(Crop2, Crop1)?),
            false => l(Crop1, Crop2),
        }
    }
}
