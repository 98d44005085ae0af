//! A query's result as a stream of batches under the gate's row cap and time
//! limit, for callers that send rows as they come (HTTP, Flight SQL) and for
//! the collecting path, which is built on it.
//!
//! Owns cutting the stream at the row cap, noting that it did, and ending
//! it with a timeout error at the deadline. It must not encode rows.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use futures::{Stream, StreamExt};
use tokio::time::{Instant, Sleep};

use super::QueryError;

/// Batches of one query, at most `max_rows` rows in all, ending with
/// [`QueryError::Timeout`] if the deadline passes first. Dropping it cancels
/// the query.
pub struct CappedStream {
    inner: SendableRecordBatchStream,
    schema: SchemaRef,
    planned_schema: SchemaRef,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    remaining: usize,
    truncated: bool,
    finished: bool,
    memory_limit_mib: usize,
}

impl CappedStream {
    pub(super) fn new(
        inner: SendableRecordBatchStream,
        planned_schema: SchemaRef,
        deadline: Instant,
        timeout: Duration,
        max_rows: usize,
        memory_limit_mib: usize,
    ) -> Self {
        Self {
            schema: inner.schema(),
            planned_schema,
            inner,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            timeout,
            remaining: max_rows,
            truncated: false,
            finished: false,
            memory_limit_mib,
        }
    }

    /// The schema of the batches, as executed (it may use view types).
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The schema the plan declared before it ran, as
    /// [`super::QueryEngine::describe`] gives it: the same for the same SQL
    /// and parameters, where [`CappedStream::schema`] may use view types.
    pub fn planned_schema(&self) -> SchemaRef {
        self.planned_schema.clone()
    }

    /// True once rows beyond the cap were seen and dropped. Final only after
    /// the stream has ended.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Reads the rest of the stream into memory.
    pub async fn collect_all(mut self) -> Result<super::QueryResult, QueryError> {
        let mut batches = Vec::new();
        while let Some(batch) = self.next().await {
            batches.push(batch?);
        }
        Ok(super::QueryResult {
            schema: self.schema.clone(),
            batches,
            truncated: self.truncated,
        })
    }
}

impl Stream for CappedStream {
    type Item = Result<RecordBatch, QueryError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.finished = true;
            return Poll::Ready(Some(Err(QueryError::Timeout(self.timeout))));
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.finished = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                self.finished = true;
                Poll::Ready(Some(Err(super::classify(error, self.memory_limit_mib))))
            }
            Poll::Ready(Some(Ok(batch))) => {
                if batch.num_rows() <= self.remaining {
                    self.remaining -= batch.num_rows();
                    return Poll::Ready(Some(Ok(batch)));
                }
                // Rows beyond the cap exist: keep what fits and stop, which
                // drops nothing yet; the query is cancelled when `self` drops.
                self.truncated = true;
                self.finished = true;
                let room = std::mem::take(&mut self.remaining);
                if room == 0 {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Ok(batch.slice(0, room))))
                }
            }
        }
    }
}
