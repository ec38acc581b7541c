//! Deterministic combinators: wait for all, or for the first.
//!
//! They poll their futures in order, so the order of the host calls they
//! cause is fixed by the code, never by timing.

use crate::Failure;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// One of two outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Either<A, B> {
    /// The first future finished first.
    Left(A),
    /// The second future finished first.
    Right(B),
}

/// Waits for every future; outputs in input order.
pub fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> JoinAll<F> {
    JoinAll {
        futures: futures.into_iter().map(|f| (Box::pin(f), None)).collect(),
    }
}

/// A future of [`join_all`] with its output once it has one.
type Slot<F> = (Pin<Box<F>>, Option<<F as Future>::Output>);

/// The future of [`join_all`].
pub struct JoinAll<F: Future> {
    futures: Vec<Slot<F>>,
}

// The futures are boxed: JoinAll never pins its fields in place.
impl<F: Future> Unpin for JoinAll<F> {}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut done = true;
        for (f, out) in self.futures.iter_mut() {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => done = false,
                }
            }
        }
        if !done {
            return Poll::Pending;
        }
        Poll::Ready(
            self.futures
                .iter_mut()
                .map(|(_, o)| o.take().expect("all done"))
                .collect(),
        )
    }
}

/// Waits for both futures.
pub async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let mut a = Box::pin(a);
    let mut b = Box::pin(b);
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(move |cx| {
        if ra.is_none()
            && let Poll::Ready(v) = a.as_mut().poll(cx)
        {
            ra = Some(v);
        }
        if rb.is_none()
            && let Poll::Ready(v) = b.as_mut().poll(cx)
        {
            rb = Some(v);
        }
        if ra.is_some() && rb.is_some() {
            Poll::Ready((ra.take().expect("a"), rb.take().expect("b")))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Waits for the first of two futures; the other is dropped (and its Cairn
/// operation cancelled).
pub fn select<A: Future, B: Future>(a: A, b: B) -> Select<A, B> {
    Select {
        a: Some(Box::pin(a)),
        b: Some(Box::pin(b)),
    }
}

/// The future of [`select`].
pub struct Select<A, B> {
    a: Option<Pin<Box<A>>>,
    b: Option<Pin<Box<B>>>,
}

impl<A: Future, B: Future> Future for Select<A, B> {
    type Output = Either<A::Output, B::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let a = self.a.as_mut().expect("select polled after it finished");
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            self.a = None;
            self.b = None;
            return Poll::Ready(Either::Left(v));
        }
        let b = self.b.as_mut().expect("select polled after it finished");
        if let Poll::Ready(v) = b.as_mut().poll(cx) {
            self.a = None;
            self.b = None;
            return Poll::Ready(Either::Right(v));
        }
        Poll::Pending
    }
}

/// Waits for the first of many futures: its index and output. The others
/// are dropped (their Cairn operations cancelled).
///
/// An empty list has no first: a non-retryable failure, not a wait forever.
pub async fn select_all<F: Future>(
    futures: impl IntoIterator<Item = F>,
) -> Result<(usize, F::Output), Failure> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    if futures.is_empty() {
        return Err(Failure::non_retryable(
            "select_all was given no futures: there is no first one to wait for",
        ));
    }
    Ok(std::future::poll_fn(move |cx| {
        for (i, f) in futures.iter_mut().enumerate() {
            if let Poll::Ready(v) = f.as_mut().poll(cx) {
                return Poll::Ready((i, v));
            }
        }
        Poll::Pending
    })
    .await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FailureKind;
    use std::task::Waker;

    fn poll_once<F: Future>(f: F) -> Poll<F::Output> {
        let mut f = std::pin::pin!(f);
        f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn select_all_of_nothing_is_a_non_retryable_failure() {
        let Poll::Ready(Err(failure)) =
            poll_once(select_all(Vec::<std::future::Ready<u32>>::new()))
        else {
            panic!("select_all of nothing must fail at once");
        };
        assert_eq!(failure.kind, FailureKind::NonRetryable);
        assert!(failure.message.contains("no futures"), "{failure}");
    }

    #[test]
    fn select_all_returns_the_first_ready_future_and_its_index() {
        let futures: Vec<Pin<Box<dyn Future<Output = u32>>>> = vec![
            Box::pin(std::future::pending()),
            Box::pin(std::future::ready(7)),
            Box::pin(std::future::ready(8)),
        ];
        assert_eq!(poll_once(select_all(futures)), Poll::Ready(Ok((1, 7))));
    }
}
