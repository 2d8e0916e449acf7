//! LeOCLR: each crop attracted to the uncropped original, `L = l(X, X1) + l(X, X2)`.
//!
//! With the original through the momentum (key) encoder, the project's default, the queries are
//! the two crops and the key their original: `l(q(c1), k(o)) + l(q(c2), k(o))`, and `k(o)` is
//! enqueued. With the original through the query encoder (the paper's Algorithm 1), the query is
//! the original and the keys the crops: `l(q(o), k(c1)) + l(q(o), k(c2))`, both crops' keys
//! enqueued.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::info_nce::{Negatives, info_nce};
use super::{Encoded, Objective, Reads, ViewKind, missing};
use crate::Result;

use ViewKind::{Crop1, Crop2, Original};

/// Which encoder sees the uncropped original in LeOCLR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OriginalBranch {
    /// Crops through the query encoder, the original through the momentum encoder (default).
    Key,
    /// The original through the query encoder, crops through the momentum encoder (the paper).
    Query,
}

impl std::str::FromStr for OriginalBranch {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "key" => Ok(Self::Key),
            "query" => Ok(Self::Query),
            _ => Err(crate::Error::Config(format!(
                "unknown original branch '{s}' (key, query)"
            ))),
        }
    }
}

impl std::fmt::Display for OriginalBranch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Key => "key",
            Self::Query => "query",
        })
    }
}

pub struct Leoclr {
    pub original_branch: OriginalBranch,
}

impl Objective for Leoclr {
    fn label(&self) -> &'static str {
        match self.original_branch {
            OriginalBranch::Key => "leoclr_key",
            OriginalBranch::Query => "leoclr_query",
        }
    }

    fn reads(&self) -> Reads {
        match self.original_branch {
            OriginalBranch::Key => Reads {
                query: &[Crop1, Crop2],
                key: &[Original],
            },
            OriginalBranch::Query => Reads {
                query: &[Original],
                key: &[Crop1, Crop2],
            },
        }
    }

    fn loss(&self, e: &Encoded, n: &Negatives<'_>) -> Result<Tensor<1>> {
        let (q, k) = (&e.queries, &e.keys);
        let pairs = match self.original_branch {
            OriginalBranch::Key => [(Crop1, Original), (Crop2, Original)],
            OriginalBranch::Query => [(Original, Crop1), (Original, Crop2)],
        };
        let mut total: Option<Tensor<1>> = None;
        for (qv, kv) in pairs {
            let (Some(q), Some(k)) = (&q[qv], &k[kv]) else {
                return Err(missing(self, qv, kv));
            };
            let l = info_nce(q, k, n);
            total = Some(match total {
                Some(t) => t + l,
                None => l,
            });
        }
        total.ok_or_else(|| missing(self, Crop1, Original))
    }
}
