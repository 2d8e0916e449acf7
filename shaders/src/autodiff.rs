//! The extension under autodiff: each forward recorded as one graph node whose backward runs our
//! gradient kernels (burn's own `Conv2DNoBias` node is the template): the convolution (input and
//! weight gradients), BatchNorm in training (input, gamma and beta in one pass), max pooling
//! (gradients routed to the winners the forward kept).

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::tensor::ops::ConvOptions;

use std::sync::Arc;

use burn::backend::{AutodiffBackend, TensorMetadata};
use burn::tensor::Shape;

use crate::cpu::pool::PoolGeometry;
use crate::extension::ConvKernels;
use crate::flex::{
    input_grad, norm_backward, norm_forward, pool_backward, pool_forward, pool_geometry,
    weight_grad,
};

#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 2> for ConvBackward {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, w_state, options) = ops.state;
        let x: FlexTensor = checkpointer.retrieve_node_output(x_state);
        let w: FlexTensor = checkpointer.retrieve_node_output(w_state);
        if let Some(node) = node_x {
            let dx = input_grad(x.clone(), w.clone(), grad.clone(), &options);
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_w {
            grads.register::<Flex>(node.id, weight_grad(x, w, grad, &options));
        }
    }
}

impl<C: CheckpointStrategy> ConvKernels for Autodiff<Flex, C> {
    fn leoclr_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        match ConvBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let w_state = prep.checkpoint(&weight);
                let y = Flex::leoclr_conv2d(
                    x.into_primitive(),
                    weight.into_primitive(),
                    options.clone(),
                );
                prep.finish((x_state, w_state, options), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::leoclr_conv2d(
                x.into_primitive(),
                weight.into_primitive(),
                options,
            )),
        }
    }

    fn leoclr_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        norm_train::<C>(x, gamma, beta, epsilon)
    }

    fn leoclr_max_pool2d(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self> {
        pool::<C>(x, kernel, stride, padding)
    }
}

#[derive(Debug)]
struct NormBackward;

impl Backward<Flex, 3> for NormBackward {
    /// (x, gamma, the batch mean, `1 / std`)
    type State = (NodeId, NodeId, Arc<Vec<f32>>, Arc<Vec<f32>>);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, gamma_state, mean, inv_std) = ops.state;
        let x: FlexTensor = checkpointer.retrieve_node_output(x_state);
        let gamma: FlexTensor = checkpointer.retrieve_node_output(gamma_state);
        let (dx, dgamma, dbeta) = norm_backward(x, gamma, grad, &mean, &inv_std);
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, dgamma);
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, dbeta);
        }
    }
}

#[derive(Debug)]
struct PoolBackward;

impl Backward<Flex, 1> for PoolBackward {
    /// (the input's shape, the pooling, each output's winner)
    type State = (Shape, PoolGeometry, Arc<Vec<u32>>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (shape, g, argmax) = ops.state;
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, pool_backward(shape, &g, grad, &argmax));
        }
    }
}

/// A value computed beside the graph (a batch statistic): an autodiff tensor without history.
fn untracked<C: CheckpointStrategy>(t: FlexTensor) -> FloatTensor<Autodiff<Flex, C>> {
    <Autodiff<Flex, C> as AutodiffBackend>::from_inner(t)
}

type Ad<C> = FloatTensor<Autodiff<Flex, C>>;

fn norm_train<C: CheckpointStrategy>(
    x: Ad<C>,
    gamma: Ad<C>,
    beta: Ad<C>,
    epsilon: f64,
) -> (Ad<C>, Ad<C>, Ad<C>) {
    match NormBackward
        .prepare::<C>([x.node(), gamma.node(), beta.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            let gamma_state = prep.checkpoint(&gamma);
            let (out, mean, var, inv) = norm_forward(
                x.into_primitive(),
                gamma.into_primitive(),
                beta.into_primitive(),
                epsilon,
            );
            let mean_host = Arc::new(mean.as_slice::<f32>().unwrap_or(&[]).to_vec());
            let out = prep.finish((x_state, gamma_state, mean_host, Arc::new(inv)), out);
            (out, untracked::<C>(mean), untracked::<C>(var))
        }
        OpsKind::UnTracked(prep) => {
            let (out, mean, var, _) = norm_forward(
                x.into_primitive(),
                gamma.into_primitive(),
                beta.into_primitive(),
                epsilon,
            );
            (prep.finish(out), untracked::<C>(mean), untracked::<C>(var))
        }
    }
}

fn pool<C: CheckpointStrategy>(
    x: Ad<C>,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Ad<C> {
    match PoolBackward
        .prepare::<C>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let x = x.into_primitive();
            let (shape, g) = (x.shape(), pool_geometry(&x, kernel, stride, padding));
            let (y, argmax) = pool_forward(x, kernel, stride, padding, true);
            prep.finish((shape, g, Arc::new(argmax)), y)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(pool_forward(x.into_primitive(), kernel, stride, padding, false).0)
        }
    }
}
