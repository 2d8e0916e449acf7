use burn::tensor::{Device, FloatDType};

use crate::{Error, Result};

/// Which burn runtime to train on, chosen at run time. `vulkan` and `cuda` exist only in builds
/// with the matching cargo feature (see `available`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// burn's pure-Rust CPU backend (`flex`).
    Cpu,
    /// burn-wgpu: Vulkan / Metal / DX12 (lavapipe on a CPU-only Linux machine), WGSL kernels.
    Wgpu,
    /// burn-wgpu pinned to Vulkan with SPIR-V kernels (feature `vulkan`).
    Vulkan,
    /// CUDA (feature `cuda`).
    Cuda,
}

impl std::str::FromStr for BackendKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let kind = match s {
            "cpu" | "flex" => Self::Cpu,
            "wgpu" | "gpu" => Self::Wgpu,
            "vulkan" => Self::Vulkan,
            "cuda" => Self::Cuda,
            other => {
                return Err(Error::Config(format!(
                    "unknown backend '{other}' (cpu, wgpu, vulkan, cuda)"
                )));
            }
        };
        kind.available()?;
        Ok(kind)
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Cpu => "cpu",
            Self::Wgpu => "wgpu",
            Self::Vulkan => "vulkan",
            Self::Cuda => "cuda",
        })
    }
}

/// Makes burn's *default* device the CPU backend for this process, unless `BURN_DEVICE` says
/// otherwise. This project passes its device explicitly everywhere; the default is used only
/// inside burn, e.g. where `ModuleOptimizer::load_record` materialises a resumed optimiser state
/// (moved to each parameter's device at the next step). Left to itself that default is wgpu, so
/// resuming a CPU run loaded the Vulkan driver. Call first thing in `main`, before any thread
/// starts (it sets an environment variable).
pub fn default_device_on_cpu() {
    if std::env::var_os("BURN_DEVICE").is_none() {
        // SAFETY: called at the top of `main`, while the process has a single thread, so no
        // other thread reads or writes the environment concurrently.
        unsafe { std::env::set_var("BURN_DEVICE", "flex") };
    }
}

impl BackendKind {
    /// Whether this build has the runtime; the error says how to get it.
    pub fn available(self) -> Result<()> {
        let (on, feature) = match self {
            Self::Cpu => (true, ""),
            Self::Wgpu => (
                cfg!(any(not(target_arch = "wasm32"), feature = "webgpu")),
                "webgpu",
            ),
            Self::Vulkan => (cfg!(feature = "vulkan"), "vulkan"),
            Self::Cuda => (cfg!(feature = "cuda"), "cuda"),
        };
        if on {
            Ok(())
        } else {
            Err(Error::Config(format!(
                "this build has no {feature} runtime: build with `--features {feature}` (on a machine \
                 with a GPU driver)"
            )))
        }
    }

    /// The plain (inference) device of this backend. A runtime missing from the build (only
    /// reachable through a checkpoint of another build; `available` is checked first) falls back
    /// to the CPU.
    pub fn device(self) -> Device {
        match self {
            Self::Cpu => Device::flex(),
            #[cfg(any(not(target_arch = "wasm32"), feature = "webgpu"))]
            Self::Wgpu => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
            #[cfg(feature = "vulkan")]
            Self::Vulkan => Device::vulkan(burn::tensor::DeviceKind::DefaultDevice),
            #[cfg(feature = "cuda")]
            Self::Cuda => Device::cuda(0),
            #[allow(unreachable_patterns)]
            _ => Device::flex(),
        }
    }
}

impl BackendKind {
    /// `n` devices of this backend for data-parallel training: the first `n` GPUs of a GPU
    /// runtime (`DiscreteGpu(i)` for wgpu and vulkan, `cuda(i)`); for the CPU backend, which has a
    /// single device, `n` handles to it (replicas sharing the CPU: the synchronisation is the same,
    /// the speed is not).
    pub fn devices(self, n: usize) -> Vec<Device> {
        if n <= 1 {
            return vec![self.device()];
        }
        (0..n)
            // The browser's viewer build has the CPU backend only, and no use for `i`.
            .map(|#[allow(unused_variables)] i| match self {
                Self::Cpu => Device::flex(),
                #[cfg(any(not(target_arch = "wasm32"), feature = "webgpu"))]
                Self::Wgpu => Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(i)),
                #[cfg(feature = "vulkan")]
                Self::Vulkan => Device::vulkan(burn::tensor::DeviceKind::DiscreteGpu(i)),
                #[cfg(feature = "cuda")]
                Self::Cuda => Device::cuda(i),
                #[allow(unreachable_patterns)]
                _ => Device::flex(),
            })
            .collect()
    }
}

/// The float type a device computes in. Reduced precision is the whole model (weights, EMA,
/// queue), not autocast: for measuring kernel speed, not yet a training recommendation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    F16,
    Bf16,
}

impl std::str::FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" | "fp32" => Ok(Self::F32),
            "f16" | "fp16" => Ok(Self::F16),
            "bf16" => Ok(Self::Bf16),
            other => Err(Error::Config(format!(
                "unknown precision '{other}' (f32, f16, bf16)"
            ))),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
        })
    }
}

impl BackendKind {
    /// The device with `precision` as its default float type. Only possible before the device's
    /// first tensor in this process (burn locks the defaults then), so one precision per process.
    pub fn device_with(self, precision: Precision) -> Result<Device> {
        let mut device = self.device();
        let dtype = match precision {
            Precision::F32 => return Ok(device),
            Precision::F16 => FloatDType::F16,
            Precision::Bf16 => FloatDType::BF16,
        };
        if !device.supports_dtype(dtype) {
            return Err(Error::Backend(format!(
                "the {self} backend does not support {precision} on this device"
            )));
        }
        device.configure(dtype).map_err(|e| {
            Error::Backend(format!(
                "cannot switch the {self} backend to {precision}: {e}"
            ))
        })?;
        Ok(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_missing_from_the_build_are_clear_errors() {
        assert_eq!("cpu".parse::<BackendKind>().unwrap(), BackendKind::Cpu);
        assert_eq!("wgpu".parse::<BackendKind>().unwrap(), BackendKind::Wgpu);
        for (name, on) in [
            ("vulkan", cfg!(feature = "vulkan")),
            ("cuda", cfg!(feature = "cuda")),
        ] {
            let r = name.parse::<BackendKind>();
            assert_eq!(r.is_ok(), on, "{r:?}");
            if let Err(e) = r {
                assert!(e.to_string().contains(&format!("--features {name}")), "{e}");
            }
        }
        assert!("tpu".parse::<BackendKind>().is_err());
    }
}
