package engine_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/pushd/pushd/engine"
)

// The notification goes out while the version's store write is being
// synced; the app server's 200 only once it is durable (PROTOCOL.md 3).
func TestNotificationDoesNotWaitForTheSync(t *testing.T) {
	_, disk, c, chid, ep := heldSyncDevice(t, nil)
	res := putAsync(ep, 7)
	if got := c.expectNotification(); got[chid] != 7 {
		t.Fatalf("notification %v, want %s: 7", got, chid)
	}
	// The version's write reaches the WAL sync and is held there; the PUT
	// is not answered meanwhile.
	awaitHeldSync(t, disk)
	select {
	case r := <-res:
		t.Fatalf("PUT answered %d, %v before its write was synced", r.status, r.err)
	case <-time.After(50 * time.Millisecond):
	}
	disk.release()
	if st := await(t, res); st != http.StatusOK {
		t.Fatalf("PUT after the sync: %d, want 200", st)
	}
	c.ackDone(chid, 7)
}

// A device that acks a version whose store write is still syncing does
// not hold up the node's workers: the ack is queued on the UAID and
// carried out when the PUT ends, so the flight ends and the next version
// goes out at once.
func TestAckDuringTheSyncIsQueued(t *testing.T) {
	n, disk, a, chid, ep := heldSyncDevice(t, func(c *engine.Config) {
		c.Workers = 1 // an ack waiting in it would stall every client
	})
	res := putAsync(ep, 7)
	if got := a.expectNotification(); got[chid] != 7 {
		t.Fatalf("notification %v, want %s: 7", got, chid)
	}
	a.ack(chid, 7)
	awaitHeldSync(t, disk)
	// The only worker is free: another device's hello is answered while
	// the PUT still waits for its sync.
	b := dial(t, n)
	b.hello("")
	select {
	case r := <-res:
		t.Fatalf("PUT answered %d, %v before its write was synced", r.status, r.err)
	default:
	}

	disk.release()
	if st := await(t, res); st != http.StatusOK {
		t.Fatalf("PUT after the sync: %d, want 200", st)
	}
	// The queued ack ended the flight: version 8 is delivered, not held
	// back behind 7 until the lock wait runs out (503).
	if st := putVersion(t, ep, 8); st != http.StatusOK {
		t.Fatalf("PUT of the next version: %d, want 200", st)
	}
	if got := a.expectNotification(); got[chid] != 8 {
		t.Fatalf("notification %v, want %s: 8", got, chid)
	}
	a.ackDone(chid, 8)
}

// heldSyncDevice starts a node whose store syncs can be held and a device
// with one registered channel, then holds the syncs: the next store write
// waits until disk.release.
func heldSyncDevice(t *testing.T, mod func(*engine.Config)) (n *engine.Node, disk *heldSyncFS, c *wsClient, chid, ep string) {
	t.Helper()
	disk, fs := newHeldSyncFS()
	n = testNode(t, func(c *engine.Config) {
		c.StoreFS = fs
		if mod != nil {
			mod(c)
		}
	})
	t.Cleanup(disk.release) // runs before the node's shutdown
	c = dial(t, n)
	c.hello("")
	chid = newUUID()
	ep = localEndpoint(n, c.register(chid))
	disk.held.Store(true)
	return n, disk, c, chid, ep
}

// awaitHeldSync returns once a store write waits in a held sync.
func awaitHeldSync(t *testing.T, disk *heldSyncFS) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); disk.waiting.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no write reached the store's sync")
		}
		time.Sleep(time.Millisecond)
	}
}

// A connection's close is queued behind a PUT's sync like an ack, but is
// never dropped, even when acks have filled the UAID's queue: the device
// is then offline, and the next version is stored for it (202).
func TestCloseBehindAFullQueueIsNotLost(t *testing.T) {
	n, disk, a, chid, ep := heldSyncDevice(t, nil)
	res := putAsync(ep, 7)
	a.expectNotification()
	awaitHeldSync(t, disk)
	for range 17 { // one more than a UAID's queue takes
		a.ack(chid, 7)
	}
	eventually(t, 10*time.Second, func() bool {
		v, _ := metric(t, n, "pushd_acks_dropped_total")
		return v == 1
	}, "the ack past the queue's bound to be dropped")
	a.closeNow()
	eventually(t, 10*time.Second, func() bool {
		v, _ := metric(t, n, "pushd_connections")
		return v == 0
	}, "the node to see the close")

	disk.release()
	if st := await(t, res); st != http.StatusOK {
		t.Fatalf("PUT 7: %d, want 200", st)
	}
	eventually(t, 10*time.Second, func() bool {
		v, _ := metric(t, n, "pushd_uaids_connected")
		return v == 0
	}, "the closed connection's presence to be removed")
	if st := putVersion(t, ep, 8); st != http.StatusAccepted {
		t.Fatalf("PUT 8 for the closed device: %d, want 202", st)
	}
}
