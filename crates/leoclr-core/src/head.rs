use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

/// MLP projection head: Linear-ReLU per hidden width, then a final Linear.
#[derive(Module, Debug)]
pub struct ProjectionHead {
    pub layers: Vec<Linear>,
}

impl ProjectionHead {
    pub fn new(input: usize, hidden: &[usize], out: usize, device: &Device) -> Self {
        let mut dims = vec![input];
        dims.extend_from_slice(hidden);
        dims.push(out);
        let layers = dims
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect();
        Self { layers }
    }

    pub fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        for (i, l) in self.layers.iter().enumerate() {
            x = l.forward(x);
            if i < last {
                x = relu(x);
            }
        }
        x
    }
}

/// Rows scaled to unit L2 norm.
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x
        .clone()
        .powf_scalar(2.0)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-12);
    x / norm
}
