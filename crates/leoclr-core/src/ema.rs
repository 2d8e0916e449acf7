//! Momentum (EMA) update of the key encoder: k <- m k + (1 - m) q, over parameters only.
//!
//! BatchNorm running statistics are buffers, not parameters: as in MoCo they are left to the key
//! encoder's own forward passes. Parameters are matched by visiting order, which is the same for two
//! modules of one type and config.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

fn is_buffer(path: &[String]) -> bool {
    path.last()
        .is_some_and(|n| n == "running_mean" || n == "running_var")
}

/// Flattened floats of a module in visiting order; BatchNorm buffers only when asked.
struct Collect {
    path: Vec<String>,
    buffers: bool,
    values: Vec<Tensor<1>>,
}

impl Collect {
    fn of<M: Module>(m: &M, buffers: bool) -> Vec<Tensor<1>> {
        let mut c = Collect {
            path: Vec::new(),
            buffers,
            values: Vec::new(),
        };
        m.visit(&mut c);
        c.values
    }
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.buffers || !is_buffer(&self.path) {
            self.values.push(param.val().detach().flatten(0, D - 1));
        }
    }
}

/// Maps the floats `Collect` gathered (same `buffers` setting) into a module: `t <- m t + (1 - m) s`.
struct Blend {
    path: Vec<String>,
    buffers: bool,
    source: std::vec::IntoIter<Tensor<1>>,
    m: f64,
}

impl ModuleMapper for Blend {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    #[allow(
        clippy::expect_used,
        reason = "both modules are built from one ModelConfig (the only callers), so they have the \
                  same parameters in the same order; a mapper cannot return an error"
    )]
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if !self.buffers && is_buffer(&self.path) {
            return param;
        }
        let s = self
            .source
            .next()
            .expect("the two modules differ in structure");
        let m = self.m;
        param.map(|t| {
            let s = s.reshape(t.shape());
            if m == 0.0 {
                s.detach()
            } else {
                (t.detach().mul_scalar(m) + s.mul_scalar(1.0 - m)).detach()
            }
        })
    }
}

fn blend<M: Module>(target: M, source: &M, m: f64, buffers: bool) -> M {
    let mut b = Blend {
        path: Vec::new(),
        buffers,
        source: Collect::of(source, buffers).into_iter(),
        m,
    };
    let out = target.map(&mut b);
    debug_assert!(
        b.source.next().is_none(),
        "the source module has more floats than the target"
    );
    out
}

/// Returns the key encoder moved towards the online encoder (parameters only).
pub fn ema_update<M: Module>(key: M, online: &M, m: f64) -> M {
    blend(key, online, m, false)
}

/// Copies every float (parameters and BatchNorm buffers) of `source` into `target`, keeping the
/// target's own parameter ids. The key encoder is made this way: a `clone()` or a `load_record`
/// would give it the online encoder's ids (and a clone its BatchNorm state too).
pub fn copy_values<M: Module>(target: M, source: &M) -> M {
    blend(target, source, 0.0, true)
}

/// Every float of a module (parameters and BatchNorm buffers), flattened, in visiting order: what
/// a snapshot reads back (asynchronously in the browser, where WebGPU cannot block) to rebuild the
/// module on another device with [`with_values`].
pub fn values<M: Module>(m: &M) -> Vec<Tensor<1>> {
    Collect::of(m, true)
}

/// `target` with every float replaced by `values` (as [`values`] lists them, from any device;
/// moved to the target's), keeping the target's parameter ids. The count and each length must
/// match: the error says where they do not.
pub fn with_values<M: Module>(
    target: M,
    values: Vec<burn::tensor::TensorData>,
) -> crate::Result<M> {
    let own = Collect::of(&target, true);
    if own.len() != values.len() {
        return Err(crate::Error::Config(format!(
            "a snapshot of {} tensors for a module of {}",
            values.len(),
            own.len()
        )));
    }
    let mut source = Vec::with_capacity(values.len());
    for (i, (t, v)) in own.iter().zip(values).enumerate() {
        if v.num_elements() != t.dims()[0] {
            return Err(crate::Error::Config(format!(
                "snapshot tensor {i} has {} values, the module's {}",
                v.num_elements(),
                t.dims()[0]
            )));
        }
        source.push(Tensor::<1>::from_data(v, &t.device()));
    }
    let mut b = Blend {
        path: Vec::new(),
        buffers: true,
        source: source.into_iter(),
        m: 0.0,
    };
    Ok(target.map(&mut b))
}

/// Flattened parameters (not buffers) of a module, for tests and diagnostics.
pub fn parameters<M: Module>(m: &M) -> Vec<Vec<f32>> {
    Collect::of(m, false)
        .into_iter()
        .map(|t| {
            // Converted to f32 first, so reading f32 back cannot fail.
            t.into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap_or_default()
        })
        .collect()
}
