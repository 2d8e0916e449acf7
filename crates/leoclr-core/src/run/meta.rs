//! What a checkpoint records about its run besides the tensors: the settings to resume with, the
//! augmentation to evaluate with, provenance. Stored under the checkpoint's `extra` key, the name
//! older files used for the same (then untyped) object, so they keep loading.

use std::path::PathBuf;

use leoclr_data::AugmentConfig;
use serde::{Deserialize, Deserializer, Serialize};

use super::metrics::EpochRecord;
use super::spec::{RunSpec, augment};
use crate::{BackendKind, Error, Result};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunMeta {
    /// The run's settings (absent in exported encoders).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<RunSpec>,
    /// The command line that started the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// The augmentation trained with; its evaluation views (resize, normalise) are what the
    /// model expects. Unreadable values of older builds count as absent.
    #[serde(deserialize_with = "lenient")]
    pub augment: Option<AugmentConfig>,
    pub view_size: Option<usize>,
    #[serde(deserialize_with = "lenient")]
    pub backend: Option<BackendKind>,
    /// Name of the training dataset.
    pub dataset: Option<String>,
    /// Set on files written by `leoclr export`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exported_from: Option<PathBuf>,
    /// Every finished epoch's record up to this checkpoint (before its kNN, which comes after
    /// the checkpoint): a metrics line lost to a crash between the two is restored on resume.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<EpochRecord>,
}

/// Reads a value that older files may hold in another shape as `None` instead of an error.
fn lenient<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    d: D,
) -> std::result::Result<Option<T>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(v).ok())
}

impl RunMeta {
    /// The views to evaluate or embed with: the recorded augmentation when it fits (`channels`,
    /// and `size` when one is asked for), else the default preset at `size`, the recorded view
    /// size or `fallback_size`, in that order.
    pub fn eval_augment(
        &self,
        channels: usize,
        size: Option<usize>,
        fallback_size: usize,
    ) -> Result<AugmentConfig> {
        let size = size.or(self.view_size).unwrap_or(fallback_size);
        match &self.augment {
            // Recorded in a file: checked like any other input before it sizes an allocation.
            Some(a) if a.size == size && a.mean.len() == channels => {
                a.validate(channels).map_err(|e| {
                    Error::Config(format!("the recorded view augmentation is unusable: {e}"))
                })?;
                Ok(a.clone())
            }
            _ => augment(channels, size, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_augment_prefers_the_recorded_views() {
        let mut saved = AugmentConfig::small(28, 1);
        saved.mean = vec![0.25];
        let meta = RunMeta {
            augment: Some(saved.clone()),
            view_size: Some(28),
            ..RunMeta::default()
        };
        assert_eq!(meta.eval_augment(1, None, 96).unwrap(), saved);
        assert_eq!(meta.eval_augment(1, Some(28), 96).unwrap(), saved);
        // Another size or channel count: the default preset at that size.
        let other = meta.eval_augment(1, Some(32), 96).unwrap();
        assert_eq!(other, AugmentConfig::small(32, 1));
        assert_eq!(meta.eval_augment(3, None, 96).unwrap().size, 28);
        // Nothing recorded: the fallback size.
        assert_eq!(
            RunMeta::default().eval_augment(1, None, 40).unwrap().size,
            40
        );
    }

    #[test]
    fn unreadable_old_values_count_as_absent() {
        let m: RunMeta = serde_json::from_str(
            r#"{"augment": {"size": "big"}, "backend": "tpu", "view_size": 28, "argv": null}"#,
        )
        .unwrap();
        assert_eq!(m.augment, None);
        assert_eq!(m.backend, None);
        assert_eq!(m.view_size, Some(28));
    }
}
