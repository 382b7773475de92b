package loadtest

import (
	"context"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// ackQueue holds delayed acks until they are due and writes them from
// one goroutine. The delay is the same for all, so the queue is FIFO.
type ackQueue struct {
	mu struct {
		sync.Mutex
		items []delayedAck
		head  int
	}
	wake chan struct{}
}

type delayedAck struct {
	gc    gnet.Conn
	due   int64 // unix ns
	frame []byte
}

func newAckQueue() *ackQueue { return &ackQueue{wake: make(chan struct{}, 1)} }

// push queues an ack frame (owned by the queue from now on). It never
// blocks: event loops call it.
func (q *ackQueue) push(gc gnet.Conn, due int64, frame []byte) {
	q.mu.Lock()
	q.mu.items = append(q.mu.items, delayedAck{gc, due, frame})
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// len is the number of acks not yet written.
func (q *ackQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.mu.items) - q.mu.head
}

// pop returns the head when it is due, else how long until it is (or
// zero with ok false when the queue is empty).
func (q *ackQueue) pop(now int64) (a delayedAck, wait time.Duration, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.mu.head == len(q.mu.items) {
		q.mu.items, q.mu.head = q.mu.items[:0], 0
		return a, 0, false
	}
	a = q.mu.items[q.mu.head]
	if a.due > now {
		return delayedAck{}, time.Duration(a.due - now), false
	}
	q.mu.items[q.mu.head] = delayedAck{}
	q.mu.head++
	if q.mu.head > 1024 && q.mu.head*2 > len(q.mu.items) {
		n := copy(q.mu.items, q.mu.items[q.mu.head:])
		q.mu.items, q.mu.head = q.mu.items[:n], 0
	}
	return a, 0, true
}

// run writes acks as they fall due until ctx ends.
func (q *ackQueue) run(ctx context.Context, rec *recorder) {
	for {
		a, wait, ok := q.pop(time.Now().UnixNano())
		if ok {
			if a.gc.AsyncWrite(a.frame, nil) == nil {
				rec.acks.Add(1)
			}
			continue
		}
		if wait == 0 {
			select {
			case <-q.wake:
			case <-ctx.Done():
				return
			}
			continue
		}
		if !sleepUntil(ctx, time.Now().Add(wait)) {
			return
		}
	}
}
