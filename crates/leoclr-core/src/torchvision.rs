//! The backbone as a torchvision ResNet state dict in safetensors, for PyTorch users.
//!
//! burn-store writes the tensors with PyTorch's conventions (BatchNorm `gamma/beta` as
//! `weight/bias`); our `downsample.{conv,bn}` become torchvision's `downsample.{0,1}`; and every
//! BatchNorm gets the `num_batches_tracked` counter torchvision keeps and burn does not, so that
//! `load_state_dict(strict=False)` reports only the classifier `fc.*` as missing. Conv weights
//! already share PyTorch's `[out, in, kh, kw]` layout. The small stem is torchvision's ResNet with
//! `conv1` 3x3 stride 1 and `maxpool` replaced by identity (`scripts/torchvision_resnet.py`).

use std::collections::HashMap;

use burn_store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};
use safetensors::tensor::{Dtype, TensorView};

use crate::config::ModelConfig;
use crate::resnet::ResNet;
use crate::{Error, Result};

/// The safetensors bytes of `backbone` under torchvision's key names; `batches` is written as
/// every BatchNorm's `num_batches_tracked` (the optimiser steps the weights saw).
pub fn backbone_safetensors(backbone: &ResNet, cfg: &ModelConfig, batches: u64) -> Result<Vec<u8>> {
    let fail = |e: &dyn std::fmt::Display| Error::Backend(format!("torchvision export: {e}"));
    let mut store = SafetensorsStore::from_bytes(None)
        .with_to_adapter(BurnToPyTorchAdapter)
        .with_key_remapping(r"\.downsample\.conv\.", ".downsample.0.")
        .with_key_remapping(r"\.downsample\.bn\.", ".downsample.1.")
        .skip_enum_variants(true);
    backbone.save_into(&mut store).map_err(|e| fail(&e))?;
    let bytes = store.get_bytes().map_err(|e| fail(&e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| fail(&e))?;
    let counter = (batches as i64).to_le_bytes();
    let mut tensors: Vec<(String, TensorView<'_>)> = st.tensors();
    let norms: Vec<String> = tensors
        .iter()
        .filter_map(|(k, _)| k.strip_suffix(".running_mean"))
        .map(|p| format!("{p}.num_batches_tracked"))
        .collect();
    for name in norms {
        let view = TensorView::new(Dtype::I64, vec![], &counter).map_err(|e| fail(&e))?;
        tensors.push((name, view));
    }
    let (blocks, widths, bottleneck) = cfg.backbone.layout();
    let info = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        ("producer".to_string(), "leoclr".to_string()),
        (
            "architecture".to_string(),
            format!(
                "torchvision ResNet, {} blocks {:?}, widths {:?}, in_channels {}, stem {}",
                if bottleneck {
                    "Bottleneck"
                } else {
                    "BasicBlock"
                },
                blocks,
                widths,
                cfg.in_channels,
                if cfg.small_stem {
                    "small (conv1 3x3 stride 1, no maxpool)"
                } else {
                    "standard (conv1 7x7 stride 2, maxpool)"
                }
            ),
        ),
    ]);
    safetensors::serialize(tensors, Some(info)).map_err(|e| fail(&e))
}

/// The projection head as a PyTorch `nn.Sequential` of Linear/ReLU would hold it: `layers.{i}`
/// are the Linear layers (weights `[out, in]`, transposed from burn's `[in, out]` by burn-store's
/// adapter); in a `Sequential` with ReLUs between, layer `i` sits at index `2 i`.
pub fn head_safetensors(head: &crate::head::ProjectionHead) -> Result<Vec<u8>> {
    let fail = |e: &dyn std::fmt::Display| Error::Backend(format!("head export: {e}"));
    let mut store = SafetensorsStore::from_bytes(None).with_to_adapter(BurnToPyTorchAdapter);
    head.save_into(&mut store).map_err(|e| fail(&e))?;
    store.get_bytes().map_err(|e| fail(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Backbone;
    use burn::tensor::Device;

    #[test]
    fn keys_are_torchvisions_with_counters_and_shapes_match() {
        let cfg = ModelConfig::new(Backbone::ResNet18, 3, false);
        let net = ResNet::new(&cfg, &Device::flex());
        let bytes = backbone_safetensors(&net, &cfg, 7).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut names = st.names();
        names.sort();
        // torchvision resnet18's state dict without fc: 20 convs/BN pairs' worth of keys.
        assert_eq!(names.len(), 122 - 2, "{names:?}");
        for k in [
            "conv1.weight",
            "bn1.weight",
            "bn1.bias",
            "bn1.running_mean",
            "bn1.running_var",
            "bn1.num_batches_tracked",
            "layer1.0.conv1.weight",
            "layer2.0.downsample.0.weight",
            "layer2.0.downsample.1.running_var",
            "layer4.1.bn2.num_batches_tracked",
        ] {
            assert!(names.contains(&k), "{k} missing from {names:?}");
        }
        assert!(
            names
                .iter()
                .all(|n| !n.contains("gamma") && !n.contains("beta"))
        );
        assert_eq!(st.tensor("conv1.weight").unwrap().shape(), [64, 3, 7, 7]);
        assert_eq!(
            st.tensor("layer2.0.downsample.0.weight").unwrap().shape(),
            [128, 64, 1, 1]
        );
        let n = st.tensor("bn1.num_batches_tracked").unwrap();
        assert_eq!((n.dtype(), n.shape()), (Dtype::I64, &[][..]));
        assert_eq!(n.data(), 7i64.to_le_bytes());
    }
}
