//! The one registry of methods: every objective's setting as a typed [`Method`] (what run files
//! and checkpoints record), and the named [`Recipe`]s built on them (what `--method` takes, what
//! `compare` trains a row of, what the app and the browser list).

use leoclr_data::OriginalAug;
use serde::{Deserialize, Serialize};

use super::{Leoclr, Mocov2, Objective, OriginalBranch};

/// An objective with its settings, as run files and checkpoints record it
/// (`{"name": "leoclr", "original_branch": "key"}`, `{"name": "mocov2", "symmetric": true}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum Method {
    /// L = l(crop1, original) + l(crop2, original) ([`Leoclr`]).
    Leoclr { original_branch: OriginalBranch },
    /// MoCo-v2: symmetric l(q1,k2) + l(q2,k1), or asymmetric l(q1,k2) ([`Mocov2`]).
    Mocov2 { symmetric: bool },
}

impl Method {
    /// Every method, LeOCLR's two branches first (for tests and sweeps over all of them).
    pub const ALL: [Method; 4] = [
        Method::Leoclr {
            original_branch: OriginalBranch::Key,
        },
        Method::Leoclr {
            original_branch: OriginalBranch::Query,
        },
        Method::Mocov2 { symmetric: true },
        Method::Mocov2 { symmetric: false },
    ];

    /// The objective this method trains.
    pub fn objective(&self) -> Box<dyn Objective> {
        match *self {
            Self::Leoclr { original_branch } => Box::new(Leoclr { original_branch }),
            Self::Mocov2 { symmetric } => Box::new(Mocov2 { symmetric }),
        }
    }

    /// Short stable name, as used in result tables.
    pub fn label(&self) -> &'static str {
        self.objective().label()
    }
}

/// A named method: the objective with its settings and the treatment of the original view.
#[derive(Debug, PartialEq)]
pub struct Recipe {
    /// What `--method` takes and run files record.
    pub name: &'static str,
    /// Other names accepted for it (older spellings, the table label).
    pub aliases: &'static [&'static str],
    /// The row name in result tables and results.json.
    pub label: &'static str,
    /// One line for help texts and the app's menu.
    pub summary: &'static str,
    pub method: Method,
    /// How the uncropped original is augmented (LeOCLR; MoCo-v2 never encodes it).
    pub original_aug: OriginalAug,
}

use OriginalBranch::{Key, Query};

/// Every recipe, in table order (MoCo-v2 first: the baselines).
pub static RECIPES: [Recipe; 6] = [
    Recipe {
        name: "mocov2",
        aliases: &["mocov2-sym", "mocov2_sym"],
        label: "mocov2_sym",
        summary: "MoCo-v2, symmetric loss: each crop attracted to the other",
        method: Method::Mocov2 { symmetric: true },
        original_aug: OriginalAug::Flip,
    },
    Recipe {
        name: "mocov2-asym",
        aliases: &["mocov2_asym"],
        label: "mocov2_asym",
        summary: "MoCo-v2, asymmetric loss: crop 1 attracted to crop 2 (2 of LeOCLR's 3 passes)",
        method: Method::Mocov2 { symmetric: false },
        original_aug: OriginalAug::Flip,
    },
    Recipe {
        name: "leoclr",
        aliases: &["leoclr-key", "leoclr_key"],
        label: "leoclr_key",
        summary: "LeOCLR (ours): each crop attracted to the original, which goes through the \
                  momentum encoder, resized and flipped",
        method: Method::Leoclr {
            original_branch: Key,
        },
        original_aug: OriginalAug::Flip,
    },
    Recipe {
        name: "leoclr-query",
        aliases: &["leoclr_query"],
        label: "leoclr_query",
        summary: "LeOCLR with the original through the query encoder, resized and flipped",
        method: Method::Leoclr {
            original_branch: Query,
        },
        original_aug: OriginalAug::Flip,
    },
    Recipe {
        name: "leoclr-paper",
        aliases: &["leoclr_paper"],
        label: "leoclr_paper",
        summary: "LeOCLR as the paper's Algorithm 1: the original through the query encoder, \
                  augmented like the crops (without the crop)",
        method: Method::Leoclr {
            original_branch: Query,
        },
        original_aug: OriginalAug::Aug,
    },
    Recipe {
        name: "leoclr-key-aug",
        aliases: &["leoclr_key_aug"],
        label: "leoclr_key_aug",
        summary: "LeOCLR with the original through the momentum encoder, augmented like the crops",
        method: Method::Leoclr {
            original_branch: Key,
        },
        original_aug: OriginalAug::Aug,
    },
];

/// The project's default: LeOCLR with the original through the momentum encoder, resized and
/// flipped (best at small scale over 3 seeds, docs/results.md).
pub fn default_recipe() -> &'static Recipe {
    &RECIPES[2]
}

/// The recipe a name, alias or table label names.
pub fn recipe(name: &str) -> Option<&'static Recipe> {
    RECIPES
        .iter()
        .find(|r| r.name == name || r.label == name || r.aliases.contains(&name))
}

impl Recipe {
    /// The recipe of `method` with `original_aug` (the row a run's settings make), if any.
    pub fn of(method: Method, original_aug: OriginalAug) -> Option<&'static Recipe> {
        let aug = match method {
            // MoCo-v2 never encodes the original: its augmentation does not tell recipes apart.
            Method::Mocov2 { .. } => OriginalAug::Flip,
            Method::Leoclr { .. } => original_aug,
        };
        RECIPES
            .iter()
            .find(|r| r.method == method && r.original_aug == aug)
    }

    /// Every accepted name, for error messages.
    pub fn names() -> String {
        RECIPES
            .iter()
            .map(|r| r.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_aliases_and_labels_are_unique_and_every_method_has_a_recipe() {
        let mut all: Vec<&str> = RECIPES
            .iter()
            .flat_map(|r| {
                std::iter::once(r.name)
                    .chain([r.label])
                    .chain(r.aliases.iter().copied())
            })
            .collect();
        all.sort();
        let n = all.len();
        all.dedup();
        // A name and its label may coincide, nothing else.
        assert!(n - all.len() <= RECIPES.len(), "duplicates among {all:?}");
        for r in &RECIPES {
            assert_eq!(recipe(r.name), Some(r));
            assert_eq!(recipe(r.label), Some(r));
            assert_eq!(Recipe::of(r.method, r.original_aug), Some(r));
            if let Method::Leoclr { .. } = r.method {
                assert!(r.label.starts_with("leoclr_"), "{}", r.label);
            } else {
                assert_eq!(r.label, r.method.label());
            }
        }
        for m in Method::ALL {
            assert!(Recipe::of(m, OriginalAug::Flip).is_some(), "{m:?}");
        }
        assert_eq!(recipe("simclr"), None);
        assert_eq!(default_recipe().name, "leoclr");
    }
}
