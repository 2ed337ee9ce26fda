//! The child elements of an [`Element`], shared between copies of a document.
//!
//! A device's state is copied at every poll (the cached one stays as it is while the poll
//! builds the next); most of it does not change. Each child is
//! therefore kept behind an [`Arc`]: copying an element copies one pointer per child, and a
//! child is copied only when it is changed through a mutable access ([`Arc::make_mut`]).
//! Reading works like a slice of elements.

use super::Element;
use std::sync::Arc;

/// The children of an element, in document order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Children(Vec<Arc<Element>>);

impl Children {
    /// Appends `el`.
    pub fn push(&mut self, el: Element) {
        self.0.push(Arc::new(el));
    }

    /// Appends every element of `els`.
    pub fn extend(&mut self, els: impl IntoIterator<Item = Element>) {
        self.0.extend(els.into_iter().map(Arc::new));
    }

    /// Removes and returns the child at `index` (panics past the end, like [`Vec::remove`]).
    pub fn remove(&mut self, index: usize) -> Element {
        Arc::unwrap_or_clone(self.0.remove(index))
    }

    /// Keeps the children for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Element) -> bool) {
        self.0.retain(|c| keep(c));
    }

    /// The children.
    pub fn iter(&self) -> Iter<'_> {
        self.0.iter().map(|c| &**c)
    }

    /// The children, mutable (each one copied first if another document shares it).
    pub fn iter_mut(&mut self) -> IterMut<'_> {
        self.into_iter()
    }
}

impl std::ops::Deref for Children {
    type Target = [Arc<Element>];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::Index<usize> for Children {
    type Output = Element;
    fn index(&self, i: usize) -> &Element {
        &self.0[i]
    }
}

impl std::ops::IndexMut<usize> for Children {
    fn index_mut(&mut self, i: usize) -> &mut Element {
        Arc::make_mut(&mut self.0[i])
    }
}

/// The iterator of [`Children::iter`].
pub type Iter<'a> =
    std::iter::Map<std::slice::Iter<'a, Arc<Element>>, fn(&'a Arc<Element>) -> &'a Element>;

impl<'a> IntoIterator for &'a Children {
    type Item = &'a Element;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The iterator of `&mut Children`.
pub type IterMut<'a> = std::iter::Map<
    std::slice::IterMut<'a, Arc<Element>>,
    fn(&'a mut Arc<Element>) -> &'a mut Element,
>;

impl<'a> IntoIterator for &'a mut Children {
    type Item = &'a mut Element;
    type IntoIter = IterMut<'a>;
    fn into_iter(self) -> IterMut<'a> {
        self.0.iter_mut().map(Arc::make_mut)
    }
}

impl FromIterator<Element> for Children {
    fn from_iter<I: IntoIterator<Item = Element>>(iter: I) -> Children {
        Children(iter.into_iter().map(Arc::new).collect())
    }
}

impl From<Vec<Element>> for Children {
    fn from(v: Vec<Element>) -> Children {
        v.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(name: &str) -> Element {
        Element::new(name)
    }

    #[test]
    fn a_copy_shares_children_until_one_is_changed() {
        let mut a = el("state");
        a.children.push(el("device"));
        a.children.push(el("msgs"));
        let mut b = a.clone();
        assert!(Arc::ptr_eq(&a.children.0[1], &b.children.0[1]));
        b.children[0].set_attr("sn", "1");
        assert!(!Arc::ptr_eq(&a.children.0[0], &b.children.0[0]));
        assert!(Arc::ptr_eq(&a.children.0[1], &b.children.0[1]));
        assert_eq!(a.children[0].attr("sn"), None);
        assert_eq!(b.children[0].attr("sn"), Some("1"));
    }

    #[test]
    fn reads_like_a_list_of_elements() {
        let mut c: Children = vec![el("a"), el("b"), el("c")].into();
        c.retain(|e| e.name != "b");
        let names: Vec<&str> = (&c).into_iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(c.remove(0).name, "a");
        assert_eq!(c.len(), 1);
        c.push(el("z"));
        for e in c.iter_mut() {
            e.text.push('x');
        }
        assert_eq!(c[1].text, "x");
        let names: Vec<&str> = c.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["c", "z"]);
    }
}
