use burn::tensor::{Device, Tensor, TensorData};
use leoclr_data::Rng;

/// FIFO ring of past keys, the negatives of InfoNCE. Any batch size works: a batch that does not
/// divide the queue wraps around, a batch larger than the queue keeps its newest keys.
#[derive(Clone, Debug)]
pub struct KeyQueue {
    /// `[K, dim]`, rows L2-normalised.
    pub keys: Tensor<2>,
    /// Next row to overwrite.
    pub ptr: usize,
}

impl KeyQueue {
    /// Random unit vectors, drawn on the CPU from the seed so every backend starts alike.
    pub fn random(size: usize, dim: usize, seed: u64, device: &Device) -> Self {
        let mut rng = Rng::derive(seed, &[0x0_9E_0E]);
        let mut v: Vec<f32> = (0..size * dim).map(|_| rng.normal() as f32).collect();
        for row in v.chunks_exact_mut(dim) {
            let n = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            row.iter_mut().for_each(|x| *x /= n);
        }
        Self::from_vec(v, size, dim, 0, device)
    }

    pub fn from_vec(v: Vec<f32>, size: usize, dim: usize, ptr: usize, device: &Device) -> Self {
        Self {
            keys: Tensor::from_data(TensorData::new(v, [size, dim]), device),
            ptr,
        }
    }

    pub fn len(&self) -> usize {
        self.keys.dims()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn enqueue(&mut self, keys: Tensor<2>) {
        let keys = keys.detach();
        let [n, dim] = keys.dims();
        let k = self.len();
        if n >= k {
            self.keys = keys.slice([n - k..n, 0..dim]);
            self.ptr = 0;
            return;
        }
        let first = n.min(k - self.ptr);
        let q = std::mem::replace(&mut self.keys, Tensor::zeros([1, 1], &keys.device()));
        let mut q = q.slice_assign(
            [self.ptr..self.ptr + first, 0..dim],
            keys.clone().slice([0..first, 0..dim]),
        );
        if first < n {
            q = q.slice_assign([0..n - first, 0..dim], keys.slice([first..n, 0..dim]));
        }
        self.keys = q;
        self.ptr = (self.ptr + n) % k;
    }

    pub fn to_vec(&self) -> crate::Result<Vec<f32>> {
        self.keys
            .to_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| crate::Error::Backend(format!("reading the queue: {e:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(q: &KeyQueue) -> Vec<f32> {
        q.to_vec().unwrap().chunks(2).map(|r| r[0]).collect()
    }

    fn keys(from: usize, n: usize, dev: &Device) -> Tensor<2> {
        let v: Vec<f32> = (from..from + n)
            .flat_map(|i| [i as f32, -(i as f32)])
            .collect();
        Tensor::from_data(TensorData::new(v, [n, 2]), dev)
    }

    #[test]
    fn fifo_with_wraparound_short_and_oversized_batches() {
        let dev = Device::flex();
        let mut q = KeyQueue::from_vec(vec![0.0; 10], 5, 2, 0, &dev);
        q.enqueue(keys(1, 2, &dev));
        assert_eq!(rows(&q), [1., 2., 0., 0., 0.]);
        assert_eq!(q.ptr, 2);
        // 3 does not divide 5: the second batch of 3 wraps.
        q.enqueue(keys(3, 3, &dev));
        assert_eq!(rows(&q), [1., 2., 3., 4., 5.]);
        assert_eq!(q.ptr, 0);
        q.enqueue(keys(6, 3, &dev));
        q.enqueue(keys(9, 3, &dev));
        assert_eq!(rows(&q), [11., 7., 8., 9., 10.]);
        assert_eq!(q.ptr, 1);
        // A short last batch.
        q.enqueue(keys(12, 1, &dev));
        assert_eq!(rows(&q), [11., 12., 8., 9., 10.]);
        // Larger than the queue: the newest K keys win.
        q.enqueue(keys(20, 7, &dev));
        assert_eq!(rows(&q), [22., 23., 24., 25., 26.]);
        assert_eq!(q.ptr, 0);
        assert_eq!(q.to_vec().unwrap()[1], -22.0);
    }

    #[test]
    fn random_queue_rows_are_unit_and_seeded() {
        let dev = Device::flex();
        let a = KeyQueue::random(16, 8, 3, &dev).to_vec().unwrap();
        assert_eq!(a, KeyQueue::random(16, 8, 3, &dev).to_vec().unwrap());
        for r in a.chunks(8) {
            let n: f32 = r.iter().map(|x| x * x).sum();
            assert!((n - 1.0).abs() < 1e-5);
        }
    }
}
