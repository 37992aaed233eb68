//! [`Schedule`]: which change may start when. A change starts only once every change it depends
//! on (within this plan) has completed; when one fails, or never starts, everything that depends
//! on it, directly or not, is blocked: never sent, never charged. Ready changes come out in plan
//! order. Pure bookkeeping: no I/O, no clock, no provider.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use crate::model::Address;

/// The changes of one run and what each still waits for.
pub struct Schedule<T> {
    items: Vec<Option<T>>,
    /// Per change, how many changes it depends on have not completed yet.
    waiting: Vec<usize>,
    /// Per change, the changes that depend on it.
    dependents: Vec<Vec<usize>>,
    ready: BinaryHeap<Reverse<usize>>,
    /// Changes neither finished nor blocked yet (started ones included).
    open: usize,
}

impl<T> Schedule<T> {
    /// `address` and `depends_on` describe each change. A dependency on an address no change in
    /// this plan has is already satisfied (the resource exists); a change depends on every change
    /// of an address it names.
    pub fn new(
        items: Vec<T>,
        address: impl Fn(&T) -> Address,
        depends_on: impl Fn(&T) -> &[Address],
    ) -> Self {
        // Only addresses some change depends on are indexed: most changes of a large plan (new
        // cards) have no dependents, and an index of every address was the run's largest
        // structure after the changes themselves.
        let wanted: BTreeSet<&Address> = items.iter().flat_map(&depends_on).collect();
        let mut by_address: BTreeMap<Address, Vec<usize>> = BTreeMap::new();
        if !wanted.is_empty() {
            for (i, item) in items.iter().enumerate() {
                let at = address(item);
                if wanted.contains(&at) {
                    by_address.entry(at).or_default().push(i);
                }
            }
        }
        let mut waiting = vec![0; items.len()];
        let mut dependents = vec![Vec::new(); items.len()];
        for (i, item) in items.iter().enumerate() {
            for dep in depends_on(item) {
                for &d in by_address.get(dep).into_iter().flatten() {
                    if d != i {
                        waiting[i] += 1;
                        dependents[d].push(i);
                    }
                }
            }
        }
        let ready = (0..items.len())
            .filter(|&i| waiting[i] == 0)
            .map(Reverse)
            .collect();
        let open = items.len();
        Schedule {
            items: items.into_iter().map(Some).collect(),
            waiting,
            dependents,
            ready,
            open,
        }
    }

    /// The next change that may start, first in plan order.
    pub fn next_ready(&mut self) -> Option<(usize, T)> {
        let Reverse(i) = self.ready.pop()?;
        self.items[i].take().map(|item| (i, item))
    }

    /// Records how change `id` ended. When it completed, the changes waiting only on it become
    /// ready; otherwise every change that depends on it is blocked and returned (in plan order),
    /// with the change that blocked it.
    pub fn finish(&mut self, id: usize, completed: bool) -> Vec<(T, usize)> {
        self.open -= 1;
        if completed {
            for d in std::mem::take(&mut self.dependents[id]) {
                self.waiting[d] -= 1;
                if self.waiting[d] == 0 && self.items[d].is_some() {
                    self.ready.push(Reverse(d));
                }
            }
            return Vec::new();
        }
        let mut blocked = Vec::new();
        let mut stack = std::mem::take(&mut self.dependents[id]);
        while let Some(d) = stack.pop() {
            if let Some(item) = self.items[d].take() {
                self.open -= 1;
                blocked.push((d, item));
                stack.extend(std::mem::take(&mut self.dependents[d]));
            }
        }
        blocked.sort_by_key(|(d, _)| *d);
        blocked.into_iter().map(|(_, item)| (item, id)).collect()
    }

    /// Changes that can never start because what they wait for never finishes (a dependency
    /// cycle): called once nothing is ready or running.
    pub fn stranded(&mut self) -> Vec<T> {
        let left: Vec<T> = self.items.iter_mut().filter_map(Option::take).collect();
        self.open -= left.len();
        left
    }

    /// Changes neither finished nor blocked yet.
    pub fn open(&self) -> usize {
        self.open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct C {
        at: Address,
        deps: Vec<Address>,
    }

    fn c(key: &str, deps: &[&str]) -> C {
        C {
            at: Address::card(key),
            deps: deps.iter().map(|d| Address::card(*d)).collect(),
        }
    }

    fn schedule(items: Vec<C>) -> Schedule<C> {
        Schedule::new(items, |c| c.at.clone(), |c| &c.deps)
    }

    fn keys(v: &[(usize, C)]) -> Vec<&str> {
        v.iter().map(|(_, c)| c.at.key.as_str()).collect()
    }

    #[test]
    fn without_dependencies_everything_is_ready_in_plan_order() {
        let mut s = schedule(vec![c("a", &[]), c("b", &[]), c("z", &["not-in-plan"])]);
        let mut started = Vec::new();
        while let Some(x) = s.next_ready() {
            started.push(x);
        }
        assert_eq!(keys(&started), ["a", "b", "z"]);
        for (id, _) in &started {
            assert!(s.finish(*id, true).is_empty());
        }
        assert_eq!(s.open(), 0);
    }

    #[test]
    fn a_change_starts_only_after_what_it_depends_on_completed() {
        let mut s = schedule(vec![
            c("card", &["holder"]),
            c("holder", &["user"]),
            c("user", &[]),
        ]);
        let (u, _) = s.next_ready().unwrap();
        assert!(
            s.next_ready().is_none(),
            "holder and card must wait for user"
        );
        s.finish(u, true);
        let (h, holder) = s.next_ready().unwrap();
        assert_eq!(holder.at.key, "holder");
        assert!(s.next_ready().is_none());
        s.finish(h, true);
        assert_eq!(s.next_ready().unwrap().1.at.key, "card");
    }

    #[test]
    fn a_failure_blocks_its_dependents_transitively_and_nothing_else() {
        let mut s = schedule(vec![
            c("user", &[]),
            c("holder", &["user"]),
            c("card", &["holder"]),
            c("other", &[]),
        ]);
        let (u, _) = s.next_ready().unwrap();
        let (o, other) = s.next_ready().unwrap();
        assert_eq!(other.at.key, "other");
        let blocked = s.finish(u, false);
        let names: Vec<&str> = blocked.iter().map(|(c, _)| c.at.key.as_str()).collect();
        assert_eq!(names, ["holder", "card"]);
        assert!(blocked.iter().all(|(_, by)| *by == u));
        assert!(s.next_ready().is_none());
        s.finish(o, true);
        assert_eq!(s.open(), 0);
    }

    #[test]
    fn a_cycle_is_stranded_not_started() {
        let mut s = schedule(vec![c("a", &["b"]), c("b", &["a"]), c("c", &[])]);
        let (id, _) = s.next_ready().unwrap();
        s.finish(id, true);
        assert!(s.next_ready().is_none());
        assert_eq!(s.stranded().len(), 2);
        assert_eq!(s.open(), 0);
    }
}
