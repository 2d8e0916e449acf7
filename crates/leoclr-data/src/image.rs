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

    /// Converts to RGB for display: grayscale is replicated (an image of another channel count,
    /// which no reader produces, shows its first channel).
    pub fn to_rgb(&self) -> Vec<u8> {
        match self.channels {
            3 => self.data.clone(),
            c => self
                .data
                .chunks_exact(c.max(1))
                .flat_map(|p| [p[0], p[0], p[0]])
                .collect(),
        }
    }

    /// Converts to `channels` (1 or 3): RGB to gray by ITU-R 601 luma, gray replicated to RGB.
    /// Lets a dropped colour photo reach a grayscale model and the reverse.
    pub fn to_channels(&self, channels: usize) -> Self {
        let data = match (self.channels, channels) {
            (a, b) if a == b => self.data.clone(),
            (3, 1) => self
                .data
                .chunks_exact(3)
                .map(|p| {
                    (0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32).round() as u8
                })
                .collect(),
            (_, 3) => self.to_rgb(),
            // Other counts (no reader produces them; models take 1 or 3): the channel mean,
            // repeated.
            (a, b) => self
                .data
                .chunks_exact(a.max(1))
                .flat_map(|p| {
                    let mean = p.iter().map(|&v| v as u32).sum::<u32>() / a.max(1) as u32;
                    std::iter::repeat_n(mean as u8, b)
                })
                .collect(),
        };
        Self::new(self.width, self.height, channels, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_conversion() {
        let rgb = ImageU8::new(2, 1, 3, vec![255, 0, 0, 10, 20, 30]);
        let g = rgb.to_channels(1);
        assert_eq!(g.data, vec![76, 18]);
        assert_eq!(g.to_channels(3).data, vec![76, 76, 76, 18, 18, 18]);
        assert_eq!(rgb.to_channels(3), rgb);
        // Channel counts no reader produces convert without a panic.
        let two = ImageU8::new(1, 1, 2, vec![10, 30]);
        assert_eq!(two.to_channels(1).data, vec![20]);
        assert_eq!(two.to_channels(3).data, vec![10, 10, 10]);
        assert_eq!(rgb.to_channels(2).data, vec![85, 85, 20, 20]);
    }
}
