//! [`Exchange`]: the meeting point where the replicas' threads hand in one contribution
//! each per round and take back one delivery each.
//!
//! A round completes when every replica has contributed; the last one to arrive combines
//! all contributions (in replica order, so which thread that is does not matter) into one
//! delivery per replica and wakes the others. A replica that panics or leaves closes the
//! exchange, and every replica waiting in, or later entering, a round gets
//! [`Closed`] instead of waiting forever.

use std::sync::{Condvar, Mutex, MutexGuard};

/// The exchange was closed before the round completed: a replica panicked or left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed;

struct State<C, D> {
    contributions: Vec<Option<C>>,
    deliveries: Vec<Option<D>>,
    arrived: usize,
    /// Completed rounds; a waiter knows its round is done when this moves on.
    round: u64,
    closed: bool,
}

/// See the module docs. `C` is what a replica hands in, `D` what it takes back.
pub(crate) struct Exchange<C, D> {
    replicas: usize,
    state: Mutex<State<C, D>>,
    done: Condvar,
}

impl<C, D> Exchange<C, D> {
    /// An exchange for `replicas` (>= 1) threads.
    pub fn new(replicas: usize) -> Self {
        Self {
            replicas,
            state: Mutex::new(State {
                contributions: (0..replicas).map(|_| None).collect(),
                deliveries: (0..replicas).map(|_| None).collect(),
                arrived: 0,
                round: 0,
                closed: false,
            }),
            done: Condvar::new(),
        }
    }

    /// A seat for `replica`: it closes the exchange when dropped, so that a replica that
    /// stops (by panicking, or by a protocol error) cannot leave the others waiting.
    pub fn seat(&self, replica: usize) -> Seat<'_, C, D> {
        assert!(replica < self.replicas, "replica {replica} out of range");
        Seat {
            exchange: self,
            replica,
        }
    }

    /// The state, also after a panic while it was held: a panicking replica closes the
    /// exchange, and the others only need to see that.
    fn lock(&self) -> MutexGuard<'_, State<C, D>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn close(&self) {
        self.lock().closed = true;
        self.done.notify_all();
    }
}

/// One replica's place at an [`Exchange`].
pub(crate) struct Seat<'a, C, D> {
    exchange: &'a Exchange<C, D>,
    replica: usize,
}

impl<C, D> Seat<'_, C, D> {
    /// Hands in `contribution` and waits for the round to complete; the last replica to
    /// arrive runs `combine` on all contributions (indexed by replica), which must return
    /// one delivery per replica.
    ///
    /// # Errors
    /// [`Closed`] if the exchange was closed before this round completed.
    ///
    /// # Panics
    /// If `combine` returns another number of deliveries than there are replicas.
    pub fn round(
        &self,
        contribution: C,
        combine: impl FnOnce(Vec<C>) -> Vec<D>,
    ) -> Result<D, Closed> {
        let exchange = self.exchange;
        let mut state = exchange.lock();
        if state.closed {
            return Err(Closed);
        }
        debug_assert!(state.contributions[self.replica].is_none());
        state.contributions[self.replica] = Some(contribution);
        state.arrived += 1;
        let round = state.round;
        if state.arrived == exchange.replicas {
            let all = state
                .contributions
                .iter_mut()
                .map(|slot| slot.take().expect("every replica contributed"))
                .collect();
            let deliveries = combine(all);
            assert_eq!(
                deliveries.len(),
                exchange.replicas,
                "one delivery per replica"
            );
            state.deliveries = deliveries.into_iter().map(Some).collect();
            state.arrived = 0;
            state.round += 1;
            exchange.done.notify_all();
        } else {
            while state.round == round && !state.closed {
                state = exchange
                    .done
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            if state.round == round {
                return Err(Closed);
            }
        }
        // A round's deliveries are replaced only when the next round completes, which
        // needs this replica's next contribution: this one is still here.
        Ok(state.deliveries[self.replica]
            .take()
            .expect("one delivery per replica and round"))
    }
}

impl<C, D> Drop for Seat<'_, C, D> {
    fn drop(&mut self) {
        self.exchange.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_replica_gets_its_own_delivery_of_the_combined_round() {
        let exchange = Exchange::<usize, Vec<usize>>::new(3);
        let results: Vec<Vec<Vec<usize>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..3)
                .map(|replica| {
                    let exchange = &exchange;
                    scope.spawn(move || {
                        let seat = exchange.seat(replica);
                        (0..4)
                            .map(|round| {
                                seat.round(10 * round + replica, |all| {
                                    (0..all.len())
                                        .map(|r| all.iter().map(|c| c + r).collect())
                                        .collect()
                                })
                                .unwrap()
                            })
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (replica, rounds) in results.iter().enumerate() {
            for (round, delivery) in rounds.iter().enumerate() {
                let expected: Vec<usize> = (0..3).map(|c| 10 * round + c + replica).collect();
                assert_eq!(delivery, &expected, "replica {replica}, round {round}");
            }
        }
    }

    #[test]
    fn a_replica_that_leaves_releases_the_others() {
        let exchange = Exchange::<(), ()>::new(2);
        std::thread::scope(|scope| {
            let waiting = scope.spawn(|| exchange.seat(0).round((), |_| vec![(), ()]));
            drop(exchange.seat(1));
            assert_eq!(waiting.join().unwrap(), Err(Closed));
        });
    }

    #[test]
    fn a_panic_while_combining_releases_the_others() {
        let exchange = Exchange::<(), ()>::new(2);
        std::thread::scope(|scope| {
            let first = scope.spawn(|| exchange.seat(0).round((), |_| panic!("combine failed")));
            let second = scope.spawn(|| exchange.seat(1).round((), |_| panic!("combine failed")));
            // Exactly one of them combined and panicked; the other was released.
            let outcomes = [first.join(), second.join()];
            assert_eq!(outcomes.iter().filter(|o| o.is_err()).count(), 1);
            assert!(outcomes.iter().any(|o| matches!(o, Ok(Err(Closed)))));
        });
    }
}
