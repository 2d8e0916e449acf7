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

struct Collect {
    path: Vec<String>,
    params: Vec<Tensor<1>>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !is_buffer(&self.path) {
            self.params.push(param.val().detach().flatten(0, D - 1));
        }
    }
}

struct Blend {
    path: Vec<String>,
    online: std::vec::IntoIter<Tensor<1>>,
    m: f64,
}

impl ModuleMapper for Blend {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if is_buffer(&self.path) {
            return param;
        }
        let q = self
            .online
            .next()
            .expect("online and key encoders differ in structure");
        let m = self.m;
        param.map(|k| {
            let shape = k.shape();
            (k.detach().mul_scalar(m) + q.reshape(shape).mul_scalar(1.0 - m)).detach()
        })
    }
}

/// Returns the key encoder moved towards the online encoder.
pub fn ema_update<M: Module>(key: M, online: &M, m: f64) -> M {
    let mut c = Collect {
        path: Vec::new(),
        params: Vec::new(),
    };
    online.visit(&mut c);
    let mut b = Blend {
        path: Vec::new(),
        online: c.params.into_iter(),
        m,
    };
    let out = key.map(&mut b);
    debug_assert!(
        b.online.next().is_none(),
        "online encoder has more parameters than the key encoder"
    );
    out
}

/// Copies every float (parameters and BatchNorm buffers) of `source` into `target`, keeping the
/// target's own parameter ids. The key encoder is made this way: a `clone()` or a `load_record`
/// would give it the online encoder's ids (and a clone its BatchNorm state too).
pub fn copy_values<M: Module>(target: M, source: &M) -> M {
    struct All(Vec<Tensor<1>>);
    impl ModuleVisitor for All {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.val().detach().flatten(0, D - 1));
        }
    }
    struct Put(std::vec::IntoIter<Tensor<1>>);
    impl ModuleMapper for Put {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let v = self.0.next().expect("modules differ in structure");
            param.map(|t| {
                let shape = t.shape();
                let device = t.device();
                v.reshape(shape).to_device(&device).detach()
            })
        }
    }
    let mut all = All(Vec::new());
    source.visit(&mut all);
    target.map(&mut Put(all.0.into_iter()))
}

/// Flattened parameters (not buffers) of a module, for tests and diagnostics.
pub fn parameters<M: Module>(m: &M) -> Vec<Vec<f32>> {
    let mut c = Collect {
        path: Vec::new(),
        params: Vec::new(),
    };
    m.visit(&mut c);
    c.params
        .into_iter()
        .map(|t| t.into_data().try_to_vec::<f32>().expect("f32 params"))
        .collect()
}
