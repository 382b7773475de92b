package engine

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/pushd/pushd/cluster"
	"github.com/pushd/pushd/shardstore"
)

// UAID expiry (Config.UAIDTTL). Owner operations that show a device uses
// its UAID (a hello, a register, a REST poll) touch its seen record, at
// most once per expiryStep; so does the sweep below for a UAID it finds
// connected. Each touch is noted to the replicas. The sweep walks the
// whole store every expiryStep and drops, under the UAID's slot, every
// UAID idle past its cutoff, unless something touched or attached it
// meanwhile. A UAID whose records predate expiry (no seen record) is
// touched on its first sweep, so its clock starts then.
//
// The cutoff is the TTL plus two steps after the seen time: a use within
// a step of the last touch is not written (a step of margin), and the end
// of a connection is written when it happens, whatever the last touch
// (but not synced: after a crash, the floor below covers it). It is
// counted from the latest of the seen time, this process's start, and
// the time this node came to own the UAID's partition: the seen times a
// node holds are only as fresh as it was up and owning (a node that was
// down, or a replica whose notes were lost and that takes over, would
// otherwise drop UAIDs whose devices are still in use). The owner tells
// the replicas of each drop (noteDrop); a copy this node does not own,
// whose owner's word did not come, waits twice the TTL.

// expiryPage is how many UAIDs the sweep reads from the store at a time.
const expiryPage = 256

// expiryFloors are the times seen times are not taken to be older than.
type expiryFloors struct {
	started int64          // this process's start, Unix seconds
	gained  []atomic.Int64 // per partition: when this node came to own it
}

// gain records that this node came to own the partitions gained at now.
func (f *expiryFloors) gain(gained map[int]bool, now time.Time) {
	if f.gained == nil {
		return
	}
	for p := range gained {
		f.gained[p].Store(now.Unix())
	}
}

// floor returns the floor of u's seen time.
func (f *expiryFloors) floor(u uuid.UUID) int64 {
	return max(f.started, f.gained[cluster.PartitionOf(shardstore.RingHash(u))].Load())
}

// expiryStep is how often the sweep runs and how often a UAID in use has
// its seen record rewritten: an eighth of the TTL, at most an hour.
func (n *Node) expiryStep() time.Duration {
	return min(n.cfg.UAIDTTL/8, time.Hour)
}

// expireWait bounds how long the sweep waits for a UAID's slot: a busy
// UAID is in use, and is looked at again on the next sweep. A connected
// UAID, which the sweep touches, gets longer: a busy one would otherwise
// never be touched, and its copies would go.
const (
	expireWait   = 50 * time.Millisecond
	expireWaitIn = time.Second
)

// touchLocal records that u is in use when expiry is on, in this node's
// store only, and reports whether it wrote a new seen record.
// REQUIRES: u's slot held.
func (n *Node) touchLocal(u uuid.UUID) bool {
	return n.touch(u, n.expiryStep())
}

// touch is touchLocal with the least time between two writes of u's seen
// record.
// REQUIRES: u's slot held.
func (n *Node) touch(u uuid.UUID, every time.Duration) bool {
	if n.cfg.UAIDTTL <= 0 {
		return false
	}
	wrote, err := n.store.Touch(u, time.Now(), every)
	if err != nil {
		n.log.Warn("recording a UAID's use", "uaid", u, "err", err)
		return false
	}
	return wrote
}

// touchLocked is touchLocal, noting a new seen record to u's replicas.
// REQUIRES: u's slot held.
func (n *Node) touchLocked(u uuid.UUID) {
	if n.touchLocal(u) {
		n.noteSeen(u)
	}
}

// touchClosed records that u's connection just ended, however recent its
// last touch, and notes it to u's replicas: from here on the UAID is idle.
// REQUIRES: u's slot held.
func (n *Node) touchClosed(u uuid.UUID) {
	if n.touch(u, 0) {
		n.noteSeen(u)
	}
}

// noteSeen sends u's seen record to its replicas without waiting.
// REQUIRES: u's slot held.
func (n *Node) noteSeen(u uuid.UUID) {
	if n.replicas(n.view.Load()) <= 1 {
		return
	}
	kvs, err := n.store.Records(u, nil, true)
	if err != nil {
		n.log.Warn("recording a UAID's use", "uaid", u, "err", err)
		return
	}
	var b wbuf
	writeKVs(&b, kvs)
	n.note(u, mReplicate, b)
}

// expireLoop runs the expiry sweep every expiryStep until the node stops.
func (n *Node) expireLoop() {
	defer n.bg.Done()
	t := time.NewTicker(n.expiryStep())
	defer t.Stop()
	for {
		select {
		case <-n.quit:
			return
		case <-t.C:
			if !n.handingOff.Load() {
				n.expireOnce()
			}
		}
	}
}

// expireOnce walks the store once, dropping the UAIDs idle past their
// cutoff and touching those found connected or without a seen record.
func (n *Node) expireOnce() {
	var (
		after            []byte
		dropped, touched int
	)
	for {
		page, next, err := n.store.SeenPage(after, expiryPage)
		if err != nil {
			n.log.Error("expiry: reading the store", "err", err)
			return
		}
		now := time.Now()
		for _, e := range page {
			select {
			case <-n.quit:
				return
			default:
			}
			switch n.expire(e, now) {
			case expireDropped:
				dropped++
			case expireTouched:
				touched++
			}
		}
		if next == nil {
			break
		}
		after = next
	}
	if dropped > 0 {
		n.log.Info("expiry: dropped idle UAIDs", "uaids", dropped, "touched", touched, "ttl", n.cfg.UAIDTTL)
	}
}

type expireOutcome int

const (
	expireKept expireOutcome = iota
	expireTouched
	expireDropped
)

// expire decides the fate of one UAID of the sweep. The cheap checks come
// first, without the slot; a UAID to touch or drop is looked at again
// under it.
func (n *Node) expire(e shardstore.UAIDSeen, now time.Time) expireOutcome {
	connected := !n.hub.get(e.UAID).none()
	if e.Seen > 0 && !connected && !n.idle(e.UAID, e.Seen, now) {
		return expireKept
	}
	if e.Seen > 0 && connected && now.Unix()-e.Seen < int64(n.expiryStep()/time.Second) {
		return expireKept
	}
	u := e.UAID
	wait := expireWait
	if connected {
		wait = expireWaitIn
	}
	if !n.acquire(u, false, time.Now().Add(wait)) {
		return expireKept // busy: in use, or next time
	}
	defer n.locks.release(u)
	seen, err := n.store.Seen(u)
	if err != nil {
		n.log.Error("expiry: reading a UAID's last use", "uaid", u, "err", err)
		return expireKept
	}
	_, owned := n.ownerOf(u)
	switch {
	case seen == 0 && !owned:
		// A copy that got no seen record (its note was lost): start its
		// clock here only, not the owner's.
		n.touchLocal(u)
		return expireTouched
	case seen == 0 || !n.hub.get(u).none() || n.locks.flightOf(u) != nil:
		n.touchLocked(u)
		return expireTouched
	}
	if !n.idle(u, seen, now) {
		return expireKept
	}
	if err := n.store.DropUAID(u); err != nil {
		n.log.Error("expiry: dropping a UAID", "uaid", u, "err", err)
		return expireKept
	}
	n.metrics.expired.Inc()
	if owned {
		n.noteDrop(u, seen)
	}
	return expireDropped
}

// noteDrop tells u's replicas, without waiting, that its owner dropped it
// as unused since seen, so that they drop their copies now rather than
// after twice the TTL (a copy that outlives its owner's drop comes back
// as the UAID's if its holder takes the UAID over).
// REQUIRES: u's slot held.
func (n *Node) noteDrop(u uuid.UUID, seen int64) {
	if n.replicas(n.view.Load()) <= 1 {
		return
	}
	var b wbuf
	b.uuid(u)
	b.u64(uint64(seen))
	n.note(u, mReplicaDrop, b)
}

// serveReplicaDrop drops this node's copy of u on its owner's word (see
// noteDrop), unless the copy knows of a later use than the owner's, or
// this node owns u now.
func (n *Node) serveReplicaDrop(u uuid.UUID, seen int64) error {
	if _, local := n.ownerOf(u); local {
		return nil
	}
	if !n.locks.acquire(u, false, time.Now().Add(opWait)) {
		return errors.New("UAID busy")
	}
	defer n.locks.release(u)
	cur, err := n.store.Seen(u)
	if err != nil || cur > seen {
		return err
	}
	if err := n.store.DropUAID(u); err != nil {
		return err
	}
	n.metrics.expiredCopies.Inc()
	return nil
}

// idle reports whether u, last touched in the second seen (Unix seconds),
// is past its cutoff (see the top of this file), counted from the end of
// that second.
func (n *Node) idle(u uuid.UUID, seen int64, now time.Time) bool {
	ttl := n.cfg.UAIDTTL
	if _, local := n.ownerOf(u); !local {
		ttl *= 2
	}
	ttl += 2 * n.expiryStep()
	return now.Sub(time.Unix(max(seen, n.expiry.floor(u))+1, 0)) > ttl
}
