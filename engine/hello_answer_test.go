package engine_test

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/pushd/pushd/engine"
)

// heldSyncFS is an in-memory FS whose WAL syncs wait while it is held.
type heldSyncFS struct {
	held    atomic.Bool
	waiting atomic.Int32
	open    chan struct{}
	once    sync.Once
}

func newHeldSyncFS() (*heldSyncFS, vfs.FS) {
	h := &heldSyncFS{open: make(chan struct{})}
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !h.held.Load() || !strings.HasSuffix(op.Path, ".log") {
			return nil
		}
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			h.waiting.Add(1)
			<-h.open
		}
		return nil
	})
	return h, errorfs.Wrap(vfs.NewMem(), inj)
}

// release lets every held sync go, for good.
func (h *heldSyncFS) release() {
	h.once.Do(func() {
		h.held.Store(false)
		close(h.open)
	})
}

// stalledNode starts a node with one worker whose store syncs can be held,
// and returns a client whose register is stuck in a held sync: every
// message of any other client then waits behind it.
func stalledNode(t *testing.T, mod func(*engine.Config)) (*engine.Node, *heldSyncFS, *wsClient) {
	t.Helper()
	disk, fs := newHeldSyncFS()
	n := testNode(t, func(c *engine.Config) {
		c.StoreFS = fs
		c.Workers = 1
		if mod != nil {
			mod(c)
		}
	})
	t.Cleanup(disk.release) // runs before the node's shutdown
	a := dial(t, n)
	a.hello("")
	disk.held.Store(true)
	a.send(map[string]any{"messageType": "register", "channelID": newUUID()})
	awaitHeldSync(t, disk)
	return n, disk, a
}

// A hello the node received but did not answer within -hello-timeout
// closes the connection with 1013: come back later.
func TestUnansweredHelloClosesWith1013(t *testing.T) {
	n, disk, a := stalledNode(t, func(c *engine.Config) { c.HelloTimeout = time.Second })
	b := dial(t, n)
	b.send(map[string]any{"messageType": "hello", "uaid": "", "channelIDs": []string{}})
	b.expectClose(1013)
	disk.release()
	a.expect("register", 200)
	// The one worker takes messages in order: once a's next register is
	// answered, b's queued hello has been reached, and skipped.
	a.register(newUUID())
	if v, _ := metric(t, n, "pushd_hello_answer_timeouts_total"); v != 1 {
		t.Errorf("pushd_hello_answer_timeouts_total = %v, want 1", v)
	}
	if v, _ := metric(t, n, "pushd_hellos_total"); v != 1 {
		t.Errorf("pushd_hellos_total = %v, want 1 (a's; b's queued hello skipped)", v)
	}
}
