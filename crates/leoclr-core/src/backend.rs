use burn::tensor::{Device, DeviceKind};

/// Which burn runtime to train on, chosen at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// burn's pure-Rust CPU backend (`flex`).
    Cpu,
    /// burn-wgpu: Vulkan / Metal / DX12 (lavapipe on a CPU-only Linux machine).
    Wgpu,
}

impl std::str::FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" | "flex" => Ok(Self::Cpu),
            "wgpu" | "gpu" => Ok(Self::Wgpu),
            other => Err(format!("unknown backend '{other}' (cpu, wgpu)")),
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Cpu => "cpu",
            Self::Wgpu => "wgpu",
        })
    }
}

impl BackendKind {
    /// The plain (inference) device of this backend.
    pub fn device(self) -> Device {
        match self {
            Self::Cpu => Device::flex(),
            Self::Wgpu => Device::wgpu(DeviceKind::DefaultDevice),
        }
    }
}
