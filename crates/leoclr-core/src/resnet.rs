//! ResNet-18/50 in torchvision's layout (same parameter names and shapes: `conv1`, `bn1`,
//! `layer1.0.conv1`, ...; only `downsample.{0,1}` is spelled `downsample.{conv,bn}`), with the
//! small-image stem option and any number of input channels.

use burn::module::{Initializer, Module};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};

use crate::config::ModelConfig;

fn conv(cin: usize, cout: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
    // torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu"), no bias.
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
        .with_bias(false)
        .with_initializer(Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: true,
        })
        .init(device)
}

/// A convolution layer's forward through the project's kernels where they apply (the CPU
/// backend), burn's elsewhere; `Conv2d` stays the parameter holder, so records and torchvision
/// names are unchanged.
pub fn conv_forward(layer: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    // Our layers pad explicitly; anything else is burn's own forward.
    let PaddingConfig2d::Explicit(top, left, bottom, right) = layer.padding else {
        return layer.forward(x);
    };
    let options = ConvOptions::new_with_padding(
        layer.stride,
        [(top, bottom), (left, right)],
        layer.dilation,
        layer.groups,
    );
    leoclr_kernels::conv2d(
        x,
        layer.weight.val(),
        layer.bias.as_ref().map(|b| b.val()),
        options,
    )
}

/// A BatchNorm layer's forward: in training on the CPU backend through our fused kernel, with
/// burn's running-statistics update (momentum, biased variance) done here the way burn's layer
/// does it; everywhere else (inference, other devices) burn's own forward.
pub fn bn_forward(layer: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let training = x.device().is_autodiff() && layer.training.is_enabled();
    if !training || !leoclr_kernels::ours_for(&x) {
        return layer.forward(x);
    }
    let device = x.device();
    let (y, mean, var) =
        leoclr_kernels::batch_norm_train(x, layer.gamma.val(), layer.beta.val(), layer.epsilon);
    let m = layer.momentum;
    let running_mean = layer.running_mean.value_sync().to_device(&device);
    let running_var = layer.running_var.value_sync().to_device(&device);
    let running_mean = running_mean
        .mul_scalar(1.0 - m)
        .add(mean.detach().mul_scalar(m));
    let running_var = running_var
        .mul_scalar(1.0 - m)
        .add(var.detach().mul_scalar(m));
    layer.running_mean.update(running_mean.detach());
    layer.running_var.update(running_var.detach());
    y
}

/// A max-pool layer's forward through our kernel on the CPU backend (explicit padding, dilation
/// 1, floor), burn's elsewhere.
pub fn pool_forward(layer: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    match layer.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right)
            if top == bottom
                && left == right
                && layer.dilation == [1, 1]
                && !layer.ceil_mode
                && leoclr_kernels::ours_for(&x) =>
        {
            leoclr_kernels::max_pool2d(x, layer.kernel_size, layer.stride, [top, left])
        }
        _ => layer.forward(x),
    }
}

fn bn(c: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(c).init(device)
}

#[derive(Module, Debug)]
pub struct Downsample {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

/// A BasicBlock (two 3x3 convs) or, when `conv3` is present, a Bottleneck (1x1, 3x3, 1x1 x4).
#[derive(Module, Debug)]
pub struct Block {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub conv3: Option<Conv2d>,
    pub bn3: Option<BatchNorm>,
    pub downsample: Option<Downsample>,
}

impl Block {
    fn new(cin: usize, width: usize, stride: usize, bottleneck: bool, device: &Device) -> Self {
        let (cout, block) = if bottleneck {
            let cout = width * 4;
            let b = Block {
                conv1: conv(cin, width, 1, 1, device),
                bn1: bn(width, device),
                conv2: conv(width, width, 3, stride, device),
                bn2: bn(width, device),
                conv3: Some(conv(width, cout, 1, 1, device)),
                bn3: Some(bn(cout, device)),
                downsample: None,
            };
            (cout, b)
        } else {
            let b = Block {
                conv1: conv(cin, width, 3, stride, device),
                bn1: bn(width, device),
                conv2: conv(width, width, 3, 1, device),
                bn2: bn(width, device),
                conv3: None,
                bn3: None,
                downsample: None,
            };
            (width, b)
        };
        let downsample = (stride != 1 || cin != cout).then(|| Downsample {
            conv: conv(cin, cout, 1, stride, device),
            bn: bn(cout, device),
        });
        Block {
            downsample,
            ..block
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            Some(d) => bn_forward(&d.bn, conv_forward(&d.conv, x.clone())),
            None => x.clone(),
        };
        let mut out = relu(bn_forward(&self.bn1, conv_forward(&self.conv1, x)));
        out = bn_forward(&self.bn2, conv_forward(&self.conv2, out));
        if let (Some(c3), Some(b3)) = (&self.conv3, &self.bn3) {
            out = bn_forward(b3, conv_forward(c3, relu(out)));
        }
        relu(out + identity)
    }
}

#[derive(Module, Debug)]
pub struct ResNet {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub maxpool: Option<MaxPool2d>,
    pub layer1: Vec<Block>,
    pub layer2: Vec<Block>,
    pub layer3: Vec<Block>,
    pub layer4: Vec<Block>,
}

impl ResNet {
    pub fn new(cfg: &ModelConfig, device: &Device) -> Self {
        let (blocks, widths, bottleneck) = cfg.backbone.layout();
        let stem = widths[0];
        let (conv1, maxpool) = if cfg.small_stem {
            (conv(cfg.in_channels, stem, 3, 1, device), None)
        } else {
            let pool = MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init();
            (conv(cfg.in_channels, stem, 7, 2, device), Some(pool))
        };
        let mut cin = stem;
        let mut stage = |i: usize| {
            let stride = if i == 0 { 1 } else { 2 };
            (0..blocks[i])
                .map(|b| {
                    let blk = Block::new(
                        cin,
                        widths[i],
                        if b == 0 { stride } else { 1 },
                        bottleneck,
                        device,
                    );
                    cin = widths[i] * if bottleneck { 4 } else { 1 };
                    blk
                })
                .collect::<Vec<_>>()
        };
        let (layer1, layer2, layer3, layer4) = (stage(0), stage(1), stage(2), stage(3));
        Self {
            conv1,
            bn1: bn(stem, device),
            maxpool,
            layer1,
            layer2,
            layer3,
            layer4,
        }
    }

    /// Globally average-pooled features `[N, feature_dim]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = relu(bn_forward(&self.bn1, conv_forward(&self.conv1, x)));
        if let Some(p) = &self.maxpool {
            x = pool_forward(p, x);
        }
        for blk in self
            .layer1
            .iter()
            .chain(&self.layer2)
            .chain(&self.layer3)
            .chain(&self.layer4)
        {
            x = blk.forward(x);
        }
        let [n, c, _, _] = x.dims();
        x.mean_dim(3).mean_dim(2).reshape([n, c])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Backbone;

    #[test]
    fn resnet18_and_50_match_torchvision_parameter_counts() {
        let dev = Device::flex();
        // torchvision resnet18 without fc: 11,689,512 - 513,000 = 11,176,512.
        let r18 = ResNet::new(&ModelConfig::new(Backbone::ResNet18, 3, false), &dev);
        assert_eq!(
            r18.num_params(),
            11_176_512 + 9_600 /* BN running stats */
        );
        // torchvision resnet50 without fc: 25,557,032 - 2,049,000 = 23,508,032.
        let r50 = ResNet::new(&ModelConfig::new(Backbone::ResNet50, 3, false), &dev);
        assert_eq!(r50.num_params(), 23_508_032 + 53_120);
    }

    #[test]
    fn tiny_small_stem_shapes_and_channels() {
        let dev = Device::flex();
        let net = ResNet::new(&ModelConfig::new(Backbone::Tiny, 1, true), &dev);
        let x = Tensor::<4>::ones([2, 1, 28, 28], &dev);
        assert_eq!(net.forward(x).dims(), [2, 128]);
        let net = ResNet::new(&ModelConfig::new(Backbone::Tiny, 3, false), &dev);
        let x = Tensor::<4>::ones([2, 3, 64, 64], &dev);
        assert_eq!(net.forward(x).dims(), [2, 128]);
    }
}
