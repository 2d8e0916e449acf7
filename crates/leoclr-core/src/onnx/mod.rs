//! The backbone as an ONNX graph (opset 13), for ONNX Runtime, TensorRT, OpenVINO and the rest.
//!
//! Written directly from the ResNet's modules, with torchvision's tensor names
//! (`layer1.0.conv1.weight`, `bn1.running_mean`, ...): Conv, BatchNormalization (inference form,
//! running statistics), Relu, MaxPool, Add, GlobalAveragePool and Flatten. burn-onnx 0.22's
//! exporter would capture the forward pass instead, but it is experimental, writes opset 18 only
//! (newer than the `onnx` checker Debian ships) and needs burn rebuilt with its graph-capture
//! feature; this backbone is seven operator types, and the test runs the graph in Python against
//! burn's features, so a drift between the two fails CI.
//!
//! The input is the normalised image batch `[N, C, H, W]` (the run's view size and per-channel
//! mean/std, recorded in the model's metadata); the output `features` is `[N, feature_dim]`, the
//! backbone features kNN and the linear probe evaluate.

pub mod proto;

use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::Tensor;

use crate::config::ModelConfig;
use crate::resnet::{Block, ResNet};
use crate::{Error, Result};
use proto::{Msg, field as f};

/// The operator set written; 13 is read by every maintained runtime and by onnx >= 1.8.
pub const OPSET: i64 = 13;
/// The IR version that goes with opset 13.
pub const IR_VERSION: i64 = 7;
pub const INPUT: &str = "input";
pub const OUTPUT: &str = "features";

/// The input's shape: the batch axis fixed or symbolic (`batch`); height and width are the
/// view size the model was trained at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputShape {
    pub batch: Option<usize>,
    pub height: usize,
    pub width: usize,
}

/// The ONNX model bytes of `backbone`; `metadata` goes into the model's `metadata_props`.
pub fn backbone_onnx(
    backbone: &ResNet,
    cfg: &ModelConfig,
    shape: InputShape,
    metadata: &[(String, String)],
) -> Result<Vec<u8>> {
    if shape.batch == Some(0) || shape.height == 0 || shape.width == 0 {
        return Err(Error::Config(format!(
            "ONNX input shape {shape:?}: every fixed axis must be positive"
        )));
    }
    let g = nodes(backbone)?;
    let (input_shape, output_shape) = io_shapes(cfg, shape);
    let mut graph = Msg::new();
    for n in &g.nodes {
        graph = graph.msg(f::graph::NODE, n);
    }
    graph = graph.string(f::graph::NAME, "leoclr_backbone");
    for t in &g.initializers {
        graph = graph.msg(f::graph::INITIALIZER, t);
    }
    graph = graph
        .msg(f::graph::INPUT, &value_info(INPUT, input_shape))
        .msg(f::graph::OUTPUT, &value_info(OUTPUT, output_shape));
    Ok(model(&graph, metadata).into_bytes())
}

/// The forward pass of `ResNet::forward` as nodes, from `INPUT` to `OUTPUT`.
fn nodes(backbone: &ResNet) -> Result<Graph> {
    let mut g = Graph::default();
    let mut x = g.conv("conv1", &backbone.conv1, INPUT)?;
    x = g.bn("bn1", &backbone.bn1, &x)?;
    x = g.relu("relu", &x);
    if let Some(pool) = &backbone.maxpool {
        x = g.maxpool("maxpool", pool, &x)?;
    }
    let stages = [
        &backbone.layer1,
        &backbone.layer2,
        &backbone.layer3,
        &backbone.layer4,
    ];
    for (s, blocks) in stages.into_iter().enumerate() {
        for (b, block) in blocks.iter().enumerate() {
            x = g.block(&format!("layer{}.{b}", s + 1), block, &x)?;
        }
    }
    x = g.node("avgpool", "GlobalAveragePool", &[&x], Vec::new());
    g.node_to(
        "flatten",
        "Flatten",
        &[&x],
        vec![attr_int("axis", 1)],
        OUTPUT,
    );
    Ok(g)
}

/// The input's `[batch, C, H, W]` and the output's `[batch, D]` shapes.
fn io_shapes(cfg: &ModelConfig, shape: InputShape) -> (Msg, Msg) {
    let batch = |m: Msg| match shape.batch {
        Some(n) => m.msg(f::dim::DIM, &Msg::new().int(f::dim::VALUE, n as i64)),
        None => m.msg(f::dim::DIM, &Msg::new().string(f::dim::PARAM, "batch")),
    };
    let dim = |m: Msg, d: usize| m.msg(f::dim::DIM, &Msg::new().int(f::dim::VALUE, d as i64));
    let input = [cfg.in_channels, shape.height, shape.width]
        .into_iter()
        .fold(batch(Msg::new()), dim);
    let output = dim(batch(Msg::new()), cfg.backbone.feature_dim());
    (input, output)
}

fn model(graph: &Msg, metadata: &[(String, String)]) -> Msg {
    let mut model = Msg::new()
        .int(f::model::IR_VERSION, IR_VERSION)
        .string(f::model::PRODUCER_NAME, "leoclr")
        .string(f::model::PRODUCER_VERSION, env!("CARGO_PKG_VERSION"))
        .string(
            f::model::DOC_STRING,
            "LeOCLR backbone: input the normalised image batch [N, C, H, W] \
             (metadata: mean, std, view_size); output the globally pooled features [N, D].",
        )
        .msg(f::model::GRAPH, graph)
        .msg(
            f::model::OPSET_IMPORT,
            &Msg::new()
                .string(f::opset::DOMAIN, "")
                .int(f::opset::VERSION, OPSET),
        );
    for (k, v) in metadata {
        model = model.msg(
            f::model::METADATA_PROPS,
            &Msg::new()
                .string(f::entry::KEY, k)
                .string(f::entry::VALUE, v),
        );
    }
    model
}

fn value_info(name: &str, shape: Msg) -> Msg {
    let tensor = Msg::new()
        .int(f::type_proto::ELEM_TYPE, f::tensor::FLOAT)
        .msg(f::type_proto::SHAPE, &shape);
    Msg::new().string(f::value_info::NAME, name).msg(
        f::value_info::TYPE,
        &Msg::new().msg(f::type_proto::TENSOR_TYPE, &tensor),
    )
}

fn attr_int(name: &str, v: i64) -> Msg {
    Msg::new()
        .string(f::attr::NAME, name)
        .int(f::attr::I, v)
        .int(f::attr::TYPE, f::attr::INT)
}

fn attr_ints(name: &str, vs: &[usize]) -> Msg {
    let vs: Vec<i64> = vs.iter().map(|&v| v as i64).collect();
    Msg::new()
        .string(f::attr::NAME, name)
        .packed_ints(f::attr::INTS, &vs)
        .int(f::attr::TYPE, f::attr::INTS_TYPE)
}

fn attr_float(name: &str, v: f32) -> Msg {
    Msg::new()
        .string(f::attr::NAME, name)
        .float(f::attr::F, v)
        .int(f::attr::TYPE, f::attr::FLOAT)
}

/// ONNX `pads` (begin of each axis, then end of each) of a burn padding.
fn pads(p: &PaddingConfig2d, what: &str) -> Result<[usize; 4]> {
    match *p {
        PaddingConfig2d::Valid => Ok([0; 4]),
        PaddingConfig2d::Explicit(top, left, bottom, right) => Ok([top, left, bottom, right]),
        PaddingConfig2d::Same => Err(Error::Config(format!(
            "ONNX export: {what} uses 'same' padding, which this exporter does not write"
        ))),
    }
}

/// The sliding-window attributes Conv and MaxPool share.
fn window(
    name: &str,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: &PaddingConfig2d,
    dilation: [usize; 2],
) -> Result<Vec<Msg>> {
    Ok(vec![
        attr_ints("kernel_shape", &kernel),
        attr_ints("strides", &stride),
        attr_ints("pads", &pads(padding, name)?),
        attr_ints("dilations", &dilation),
    ])
}

fn values<const D: usize>(t: Tensor<D>, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
    let dims = t.dims().to_vec();
    let v = t
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Backend(format!("ONNX export: reading {name}: {e:?}")))?;
    Ok((dims, v))
}

/// Nodes and weights in the order they are added (already topological: each node's inputs
/// exist before it).
#[derive(Default)]
struct Graph {
    nodes: Vec<Msg>,
    initializers: Vec<Msg>,
}

impl Graph {
    fn initializer<const D: usize>(&mut self, name: &str, t: Tensor<D>) -> Result<String> {
        let (dims, v) = values(t, name)?;
        let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        let raw: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.initializers.push(
            Msg::new()
                .packed_ints(f::tensor::DIMS, &dims)
                .int(f::tensor::DATA_TYPE, f::tensor::FLOAT)
                .string(f::tensor::NAME, name)
                .bytes(f::tensor::RAW_DATA, &raw),
        );
        Ok(name.to_string())
    }

    /// Adds a node named `name`; returns its output's name (`{name}.out`).
    fn node(&mut self, name: &str, op: &str, inputs: &[&str], attrs: Vec<Msg>) -> String {
        let out = format!("{name}.out");
        self.node_to(name, op, inputs, attrs, &out);
        out
    }

    fn node_to(&mut self, name: &str, op: &str, inputs: &[&str], attrs: Vec<Msg>, output: &str) {
        let mut m = Msg::new();
        for i in inputs {
            m = m.string(f::node::INPUT, i);
        }
        m = m
            .string(f::node::OUTPUT, output)
            .string(f::node::NAME, name)
            .string(f::node::OP_TYPE, op);
        for a in &attrs {
            m = m.msg(f::node::ATTRIBUTE, a);
        }
        self.nodes.push(m);
    }

    fn conv(&mut self, name: &str, c: &Conv2d, x: &str) -> Result<String> {
        let w = self.initializer(&format!("{name}.weight"), c.weight.val())?;
        let mut inputs = vec![x.to_string(), w];
        if let Some(b) = &c.bias {
            inputs.push(self.initializer(&format!("{name}.bias"), b.val())?);
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let mut attrs = window(name, c.kernel_size, c.stride, &c.padding, c.dilation)?;
        attrs.push(attr_int("group", c.groups as i64));
        Ok(self.node(name, "Conv", &refs, attrs))
    }

    fn bn(&mut self, name: &str, bn: &BatchNorm, x: &str) -> Result<String> {
        let scale = self.initializer(&format!("{name}.weight"), bn.gamma.val())?;
        let bias = self.initializer(&format!("{name}.bias"), bn.beta.val())?;
        let mean = self.initializer(&format!("{name}.running_mean"), bn.running_mean.value())?;
        let var = self.initializer(&format!("{name}.running_var"), bn.running_var.value())?;
        let attrs = vec![attr_float("epsilon", bn.epsilon as f32)];
        Ok(self.node(
            name,
            "BatchNormalization",
            &[x, &scale, &bias, &mean, &var],
            attrs,
        ))
    }

    fn relu(&mut self, name: &str, x: &str) -> String {
        self.node(name, "Relu", &[x], Vec::new())
    }

    fn maxpool(&mut self, name: &str, p: &MaxPool2d, x: &str) -> Result<String> {
        let mut attrs = window(name, p.kernel_size, p.stride, &p.padding, p.dilation)?;
        attrs.push(attr_int("ceil_mode", p.ceil_mode as i64));
        Ok(self.node(name, "MaxPool", &[x], attrs))
    }

    /// A BasicBlock or Bottleneck, as `Block::forward` computes it.
    fn block(&mut self, name: &str, b: &Block, x: &str) -> Result<String> {
        let identity = match &b.downsample {
            Some(d) => {
                let y = self.conv(&format!("{name}.downsample.0"), &d.conv, x)?;
                self.bn(&format!("{name}.downsample.1"), &d.bn, &y)?
            }
            None => x.to_string(),
        };
        let mut y = self.conv(&format!("{name}.conv1"), &b.conv1, x)?;
        y = self.bn(&format!("{name}.bn1"), &b.bn1, &y)?;
        y = self.relu(&format!("{name}.relu1"), &y);
        y = self.conv(&format!("{name}.conv2"), &b.conv2, &y)?;
        y = self.bn(&format!("{name}.bn2"), &b.bn2, &y)?;
        if let (Some(c3), Some(b3)) = (&b.conv3, &b.bn3) {
            y = self.relu(&format!("{name}.relu2"), &y);
            y = self.conv(&format!("{name}.conv3"), c3, &y)?;
            y = self.bn(&format!("{name}.bn3"), b3, &y)?;
        }
        let sum = self.node(&format!("{name}.add"), "Add", &[&y, &identity], Vec::new());
        Ok(self.relu(&format!("{name}.relu"), &sum))
    }
}
