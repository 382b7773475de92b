package engine

import (
	"sync/atomic"
	"time"
)

// laneIdle is how long a goroutine of the waiting lane waits for another
// job before it ends.
const laneIdle = 10 * time.Second

// waitLane carries out, off the workers, client messages that may wait on
// another machine (a call to the UAID's owner node or its replicas, an
// upstream's register: see Node.mayWait), so that a stuck owner or
// upstream holds up only the connections whose messages wait on it, not
// the few workers that serve every connection. Each job runs with the rest of its connection's
// mailbox, so a connection's jobs stay in order.
//
// Its goroutines outlive their job, up to laneIdle without another: a
// fresh goroutine grows its stack again for every job (the store's reads
// run deep), which cost a seventh of the node's CPU in a connection ramp
// when every hello was handed over.
type waitLane struct {
	limit int64
	// jobs hands a job to an idle lane goroutine; unbuffered, so a send
	// succeeds only when one is waiting for it.
	jobs chan laneJob
	// alive counts the lane's goroutines, busy those carrying out a job
	// (a metric).
	alive, busy atomic.Int64
}

// laneJob is a connection's job handed to the lane.
type laneJob struct {
	c *client
	j job
}

// init sets the most goroutines the lane runs; with limit <= 0 it takes
// no jobs.
func (l *waitLane) init(limit int) {
	l.limit = int64(limit)
	l.jobs = make(chan laneJob)
}

// take hands j, and with it the rest of c's mailbox, to an idle lane
// goroutine or a new one, and reports false when the lane is full (or
// off): the caller then carries j out itself.
// REQUIRES: the caller is draining c (it is scheduled).
func (l *waitLane) take(n *Node, c *client, j *job) bool {
	if l.limit <= 0 {
		return false
	}
	select {
	case l.jobs <- laneJob{c, *j}:
		n.metrics.laneJobs.Inc()
		return true
	default:
	}
	if l.alive.Add(1) > l.limit {
		l.alive.Add(-1)
		return false
	}
	n.metrics.laneJobs.Inc()
	n.wg.Add(1) // the caller, a worker, keeps wg above zero meanwhile
	go l.run(n, laneJob{c, *j})
	return true
}

// run carries out lj, then the jobs handed to it, until it has been idle
// for laneIdle or the node shuts down.
func (l *waitLane) run(n *Node, lj laneJob) {
	defer n.wg.Done()
	defer l.alive.Add(-1)
	idle := time.NewTimer(laneIdle)
	defer idle.Stop()
	for {
		l.busy.Add(1)
		n.run(lj.c, &lj.j)
		n.drain(lj.c, false)
		l.busy.Add(-1)
		idle.Reset(laneIdle)
		select {
		case lj = <-l.jobs:
		case <-idle.C:
			return
		case <-n.quit:
			return
		}
	}
}
