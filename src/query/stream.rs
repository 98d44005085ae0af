//! A query's result as a stream of batches under the gate's row cap and time
//! limit, for callers that send rows as they come (HTTP, Flight SQL) and for
//! the collecting path, which is built on it.
//!
//! Owns cutting the stream at the row cap, noting that it did, ending it
//! with a timeout error at the deadline, and handing a whole result to the
//! result cache, or replaying one from it. It must not encode rows.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::EmptyRecordBatchStream;
use futures::{Stream, StreamExt};
use tokio::time::{Instant, Sleep};

use super::cache::{KeptResult, ResultCache};
use super::QueryError;

/// Batches of one query, at most `max_rows` rows in all, ending with
/// [`QueryError::Timeout`] if the deadline passes first. The query is
/// cancelled, and its turn handed on, when the stream ends or is dropped.
pub struct CappedStream {
    inner: SendableRecordBatchStream,
    /// The query's place among those computed at once; none for a replay.
    turn: Option<super::turns::Turn>,
    schema: SchemaRef,
    planned_schema: SchemaRef,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    remaining: usize,
    truncated: bool,
    finished: bool,
    memory_limit_mib: usize,
    recorder: Option<Recorder>,
}

/// The batches streamed so far of a result that may be kept.
struct Recorder {
    cache: Arc<ResultCache>,
    plan: LogicalPlan,
    batches: Vec<RecordBatch>,
    bytes: usize,
}

impl CappedStream {
    pub(super) fn new(
        turn: super::turns::Turn,
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
            turn: Some(turn),
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            timeout,
            remaining: max_rows,
            truncated: false,
            finished: false,
            memory_limit_mib,
            recorder: None,
        }
    }

    /// Hands the whole result to `cache` under `plan` if the stream ends
    /// normally (cut at the row cap included) and the result is small enough.
    pub(super) fn recorded(mut self, cache: Arc<ResultCache>, plan: LogicalPlan) -> Self {
        self.recorder = Some(Recorder {
            cache,
            plan,
            batches: Vec::new(),
            bytes: 0,
        });
        self
    }

    /// A kept result streamed again, as it was the first time.
    pub(super) fn replay(kept: &KeptResult) -> Self {
        let batches: Vec<_> = kept.batches.iter().cloned().map(Ok).collect();
        let inner =
            RecordBatchStreamAdapter::new(kept.schema.clone(), futures::stream::iter(batches));
        Self {
            schema: kept.schema.clone(),
            planned_schema: kept.planned_schema.clone(),
            inner: Box::pin(inner),
            turn: None,
            // Nothing is computed, so nothing can run late.
            deadline: Box::pin(tokio::time::sleep(Duration::from_secs(86_400 * 365))),
            timeout: Duration::ZERO,
            remaining: usize::MAX,
            truncated: kept.truncated,
            finished: false,
            memory_limit_mib: 0,
            recorder: None,
        }
    }

    fn record(&mut self, batch: &RecordBatch) {
        if let Some(recorder) = &mut self.recorder {
            recorder.bytes += batch.get_array_memory_size();
            if recorder.bytes > recorder.cache.largest_result() {
                self.recorder = None;
            } else {
                recorder.batches.push(batch.clone());
            }
        }
    }

    /// Stops the query: its operators are dropped, whatever they still had
    /// under way (a query cut at the row cap may be computing more), and
    /// its turn goes to the next query.
    fn finish(&mut self) {
        self.finished = true;
        self.inner = Box::pin(EmptyRecordBatchStream::new(self.schema.clone()));
        self.turn = None;
    }

    fn keep(&mut self) {
        if let Some(recorder) = self.recorder.take() {
            let result = KeptResult {
                schema: self.schema.clone(),
                planned_schema: self.planned_schema.clone(),
                batches: recorder.batches,
                truncated: self.truncated,
            };
            recorder.cache.insert(recorder.plan, result, recorder.bytes);
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
            self.finish();
            self.recorder = None;
            return Poll::Ready(Some(Err(QueryError::Timeout(self.timeout))));
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.finish();
                self.keep();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                self.finish();
                self.recorder = None;
                Poll::Ready(Some(Err(super::classify(error, self.memory_limit_mib))))
            }
            Poll::Ready(Some(Ok(batch))) => {
                if batch.num_rows() <= self.remaining {
                    self.remaining -= batch.num_rows();
                    self.record(&batch);
                    return Poll::Ready(Some(Ok(batch)));
                }
                // Rows beyond the cap exist: keep what fits and stop the query.
                self.truncated = true;
                self.finish();
                let room = std::mem::take(&mut self.remaining);
                if room == 0 {
                    self.keep();
                    Poll::Ready(None)
                } else {
                    let kept = batch.slice(0, room);
                    self.record(&kept);
                    self.keep();
                    Poll::Ready(Some(Ok(kept)))
                }
            }
        }
    }
}
