//! The three views contrastive training makes of an image, by name: two random crops and the
//! uncropped original. Everything that travels per view (pixels, parameters, tensors, keys) is a
//! [`Views`], never an array indexed 0/1/2.

use serde::{Deserialize, Serialize};

/// Which view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ViewKind {
    Crop1,
    Crop2,
    Original,
}

impl ViewKind {
    /// The order the loader renders them in (and the queue receives two-key methods' keys).
    pub const ALL: [ViewKind; 3] = [Self::Crop1, Self::Crop2, Self::Original];

    pub fn name(self) -> &'static str {
        match self {
            Self::Crop1 => "crop 1",
            Self::Crop2 => "crop 2",
            Self::Original => "original",
        }
    }

    /// A number for seeding per-view randomness (stable across versions: 0, 1, 2).
    pub fn seed(self) -> u64 {
        match self {
            Self::Crop1 => 0,
            Self::Crop2 => 1,
            Self::Original => 2,
        }
    }
}

impl std::fmt::Display for ViewKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One value per view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Views<T> {
    pub crop1: T,
    pub crop2: T,
    pub original: T,
}

impl<T> Views<T> {
    pub fn from_fn(mut f: impl FnMut(ViewKind) -> T) -> Self {
        Self {
            crop1: f(ViewKind::Crop1),
            crop2: f(ViewKind::Crop2),
            original: f(ViewKind::Original),
        }
    }

    pub fn get(&self, v: ViewKind) -> &T {
        match v {
            ViewKind::Crop1 => &self.crop1,
            ViewKind::Crop2 => &self.crop2,
            ViewKind::Original => &self.original,
        }
    }

    pub fn get_mut(&mut self, v: ViewKind) -> &mut T {
        match v {
            ViewKind::Crop1 => &mut self.crop1,
            ViewKind::Crop2 => &mut self.crop2,
            ViewKind::Original => &mut self.original,
        }
    }

    pub fn map<U>(self, mut f: impl FnMut(ViewKind, T) -> U) -> Views<U> {
        Views {
            crop1: f(ViewKind::Crop1, self.crop1),
            crop2: f(ViewKind::Crop2, self.crop2),
            original: f(ViewKind::Original, self.original),
        }
    }

    pub fn as_ref(&self) -> Views<&T> {
        Views {
            crop1: &self.crop1,
            crop2: &self.crop2,
            original: &self.original,
        }
    }

    /// `(view, value)` in [`ViewKind::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (ViewKind, &T)> {
        ViewKind::ALL.into_iter().map(move |v| (v, self.get(v)))
    }
}

impl<T> IntoIterator for Views<T> {
    type Item = (ViewKind, T);
    type IntoIter = std::array::IntoIter<(ViewKind, T), 3>;

    /// `(view, value)` in [`ViewKind::ALL`] order.
    fn into_iter(self) -> Self::IntoIter {
        [
            (ViewKind::Crop1, self.crop1),
            (ViewKind::Crop2, self.crop2),
            (ViewKind::Original, self.original),
        ]
        .into_iter()
    }
}

impl<T> Views<Option<T>> {
    /// The views that are there, in order.
    pub fn present(&self) -> impl Iterator<Item = (ViewKind, &T)> {
        self.iter().filter_map(|(v, t)| t.as_ref().map(|t| (v, t)))
    }
}

impl<T> std::ops::Index<ViewKind> for Views<T> {
    type Output = T;
    fn index(&self, v: ViewKind) -> &T {
        self.get(v)
    }
}

impl<T> std::ops::IndexMut<ViewKind> for Views<T> {
    fn index_mut(&mut self, v: ViewKind) -> &mut T {
        self.get_mut(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_are_reached_by_name_in_one_order() {
        let v = Views::from_fn(|k| k.seed() * 10);
        assert_eq!(v[ViewKind::Crop2], 10);
        let names: Vec<_> = v.iter().map(|(k, x)| format!("{k}={x}")).collect();
        assert_eq!(names, ["crop 1=0", "crop 2=10", "original=20"]);
        let some = Views {
            crop1: None,
            crop2: Some(2),
            original: Some(3),
        };
        assert_eq!(
            some.present().map(|(k, x)| (k, *x)).collect::<Vec<_>>(),
            [(ViewKind::Crop2, 2), (ViewKind::Original, 3)]
        );
        assert_eq!(v.map(|_, x| x + 1).original, 21);
    }
}
