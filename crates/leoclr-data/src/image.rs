/// An 8-bit image, row-major, interleaved channels (HWC). 1 or 3 channels.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageU8 {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub data: Vec<u8>,
}

impl ImageU8 {
    pub fn new(width: usize, height: usize, channels: usize, data: Vec<u8>) -> Self {
        assert_eq!(data.len(), width * height * channels, "image buffer size");
        Self {
            width,
            height,
            channels,
            data,
        }
    }

    /// From planar CHW bytes (CIFAR's layout).
    pub fn from_chw(width: usize, height: usize, channels: usize, chw: &[u8]) -> Self {
        let plane = width * height;
        let mut data = vec![0u8; plane * channels];
        for c in 0..channels {
            for i in 0..plane {
                data[i * channels + c] = chw[c * plane + i];
            }
        }
        Self::new(width, height, channels, data)
    }

    #[inline]
    pub fn at(&self, x: usize, y: usize, c: usize) -> u8 {
        self.data[(y * self.width + x) * self.channels + c]
    }

    /// Converts to RGB for display: grayscale is replicated.
    pub fn to_rgb(&self) -> Vec<u8> {
        match self.channels {
            3 => self.data.clone(),
            1 => self.data.iter().flat_map(|&v| [v, v, v]).collect(),
            c => panic!("unsupported channel count {c}"),
        }
    }
}
