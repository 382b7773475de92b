package engine_test

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/pushd/pushd/engine"
)

// gatedSyncFS is an in-memory FS whose WAL syncs wait while the gate is
// closed.
type gatedSyncFS struct {
	closed  atomic.Bool
	waiting atomic.Int32
	open    chan struct{}
	once    sync.Once
}

// release opens the gate for good.
func (g *gatedSyncFS) release() {
	g.once.Do(func() {
		g.closed.Store(false)
		close(g.open)
	})
}

func newGatedSyncFS() (*gatedSyncFS, vfs.FS) {
	g := &gatedSyncFS{open: make(chan struct{})}
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !g.closed.Load() || !strings.HasSuffix(op.Path, ".log") {
			return nil
		}
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			g.waiting.Add(1)
			<-g.open
		}
		return nil
	})
	return g, errorfs.Wrap(vfs.NewMem(), inj)
}

// The notification goes out while the version's store write is being
// synced; the app server's 200 only once it is durable (PROTOCOL.md 3).
func TestNotificationDoesNotWaitForTheSync(t *testing.T) {
	gate, fs := newGatedSyncFS()
	n := testNode(t, func(c *engine.Config) { c.StoreFS = fs })
	t.Cleanup(gate.release) // runs before the node's shutdown
	c := dial(t, n)
	c.hello("")
	chid := newUUID()
	ep := localEndpoint(n, c.register(chid))

	gate.closed.Store(true)
	res := putAsync(ep, 7)
	if got := c.expectNotification(); got[chid] != 7 {
		t.Fatalf("notification %v, want %s: 7", got, chid)
	}
	// The version's write reaches the WAL sync and is held there; the PUT
	// is not answered meanwhile.
	for deadline := time.Now().Add(10 * time.Second); gate.waiting.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the version's write never reached the WAL sync")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case r := <-res:
		t.Fatalf("PUT answered %d, %v before its write was synced", r.status, r.err)
	case <-time.After(50 * time.Millisecond):
	}
	gate.release()
	if st := await(t, res); st != http.StatusOK {
		t.Fatalf("PUT after the sync: %d, want 200", st)
	}
	c.ackDone(chid, 7)
}
