//! Walking a whole history in bounded memory.
//!
//! [`EventStream`] fetches one page at a time with keyset pagination, so a
//! scan of millions of rows holds one page in memory and no long read
//! transaction blocks writers.

use std::collections::VecDeque;

use crate::{EventQuery, Page, Result, Store, StoredOutcome, StoredPrediction};

/// An iterator over every record matching a query, one page at a time.
pub struct EventStream<'a, T> {
    store: &'a dyn Store,
    query: EventQuery,
    fetch: fn(&dyn Store, &EventQuery) -> Result<Page<T>>,
    buffer: VecDeque<T>,
    done: bool,
}

impl<'a> EventStream<'a, StoredPrediction> {
    /// Streams predictions; `query.limit` is the page size.
    pub fn predictions(store: &'a dyn Store, query: EventQuery) -> Self {
        Self { store, query, fetch: |s, q| s.predictions(q), buffer: VecDeque::new(), done: false }
    }
}

impl<'a> EventStream<'a, StoredOutcome> {
    /// Streams outcomes; `query.limit` is the page size.
    pub fn outcomes(store: &'a dyn Store, query: EventQuery) -> Self {
        Self { store, query, fetch: |s, q| s.outcomes(q), buffer: VecDeque::new(), done: false }
    }
}

impl<T> Iterator for EventStream<'_, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buffer.is_empty() && !self.done {
            match (self.fetch)(self.store, &self.query) {
                Ok(page) => {
                    self.buffer.extend(page.items);
                    match page.next {
                        Some(c) => self.query.after = Some(c),
                        None => self.done = true,
                    }
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        self.buffer.pop_front().map(Ok)
    }
}
