use burn::tensor::{Device, Int, Tensor, TensorData};
use leoclr_data::Rng;

/// FIFO ring of past keys, the negatives of InfoNCE, each with the dataset index of the image it
/// encodes (so a step can leave its own images' stale keys out of its negatives). Any batch size
/// works: a batch that does not divide the queue wraps around, a batch larger than the queue
/// keeps its newest keys.
#[derive(Clone, Debug)]
pub struct KeyQueue {
    /// `[K, dim]`, rows L2-normalised.
    pub keys: Tensor<2>,
    /// `[K]`: the image each key encodes; [`NO_IMAGE`] for the random keys a queue starts with.
    pub ids: Tensor<1, Int>,
    /// Next row to overwrite.
    pub ptr: usize,
}

/// The id of a key that encodes no image (the random start, a checkpoint older than ids).
pub const NO_IMAGE: i64 = -1;

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
            ids: Tensor::from_data(TensorData::new(vec![NO_IMAGE; size], [size]), device),
            ptr,
        }
    }

    /// The queue with the image ids given (`size` of them, as a checkpoint records them).
    pub fn with_ids(mut self, ids: Vec<i64>) -> Self {
        let n = ids.len();
        if n == self.len() {
            self.ids = Tensor::from_data(TensorData::new(ids, [n]), &self.keys.device());
        }
        self
    }

    pub fn len(&self) -> usize {
        self.keys.dims()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Enqueues `keys` (`[n, dim]`) of the images `ids` (`n` of them, in the keys' order).
    pub fn enqueue(&mut self, keys: Tensor<2>, ids: &[i64]) {
        let keys = keys.detach();
        let [n, dim] = keys.dims();
        let device = keys.device();
        let ids = match ids.len() == n {
            true => ids.to_vec(),
            false => vec![NO_IMAGE; n],
        };
        let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [n]), &device);
        let k = self.len();
        if n >= k {
            self.keys = keys.slice([n - k..n, 0..dim]);
            self.ids = ids.slice(n - k..n);
            self.ptr = 0;
            return;
        }
        let first = n.min(k - self.ptr);
        let q = std::mem::replace(&mut self.keys, Tensor::zeros([1, 1], &device));
        let mut q = q.slice_assign(
            [self.ptr..self.ptr + first, 0..dim],
            keys.clone().slice([0..first, 0..dim]),
        );
        let qi = std::mem::replace(&mut self.ids, Tensor::zeros([1], &device));
        let mut qi = qi.slice_assign(self.ptr..self.ptr + first, ids.clone().slice(0..first));
        if first < n {
            q = q.slice_assign([0..n - first, 0..dim], keys.slice([first..n, 0..dim]));
            qi = qi.slice_assign(0..n - first, ids.slice(first..n));
        }
        self.keys = q;
        self.ids = qi;
        self.ptr = (self.ptr + n) % k;
    }

    /// The image ids of the queue's keys, in queue order.
    pub fn ids_vec(&self) -> crate::Result<Vec<i64>> {
        self.ids
            .to_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .map_err(|e| crate::Error::Backend(format!("reading the queue's ids: {e:?}")))
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
        let ids = |from: usize, n: usize| (from..from + n).map(|i| i as i64).collect::<Vec<_>>();
        q.enqueue(keys(1, 2, &dev), &ids(1, 2));
        assert_eq!(rows(&q), [1., 2., 0., 0., 0.]);
        assert_eq!(q.ptr, 2);
        // 3 does not divide 5: the second batch of 3 wraps.
        q.enqueue(keys(3, 3, &dev), &ids(3, 3));
        assert_eq!(rows(&q), [1., 2., 3., 4., 5.]);
        assert_eq!(q.ptr, 0);
        q.enqueue(keys(6, 3, &dev), &ids(6, 3));
        q.enqueue(keys(9, 3, &dev), &ids(9, 3));
        assert_eq!(rows(&q), [11., 7., 8., 9., 10.]);
        assert_eq!(q.ptr, 1);
        // A short last batch.
        q.enqueue(keys(12, 1, &dev), &ids(12, 1));
        assert_eq!(rows(&q), [11., 12., 8., 9., 10.]);
        // The ids travel with their keys.
        assert_eq!(q.ids_vec().unwrap(), [11, 12, 8, 9, 10]);
        // Larger than the queue: the newest K keys win.
        q.enqueue(keys(20, 7, &dev), &ids(20, 7));
        assert_eq!(rows(&q), [22., 23., 24., 25., 26.]);
        assert_eq!(q.ids_vec().unwrap(), [22, 23, 24, 25, 26]);
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
