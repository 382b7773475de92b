package engine

import (
	"testing"

	"github.com/google/uuid"

	"github.com/pushd/pushd/cluster"
	"github.com/pushd/pushd/shardstore"
)

// With maxNoteCalls replica notes under way, another is dropped and
// counted, not started.
func TestReplicaNotesPastTheBoundAreDropped(t *testing.T) {
	n := startExpiryNode(t, 0) // a standalone node, expiry off
	// A view with a second member, which holds every UAID's copy.
	n.view.Store(&view{ring: cluster.NewRing([]string{n.self, "other"}, 2), addrs: map[string]string{}})
	for range maxNoteCalls {
		n.noteCalls <- struct{}{}
	}
	n.replicateAck(uuid.New(), []shardstore.Ack{{Channel: uuid.New(), Version: 1}})
	if got := n.metrics.notesDropped.Load(); got != 1 {
		t.Fatalf("%d notes dropped, want 1", got)
	}
	if len(n.noteCalls) != maxNoteCalls {
		t.Fatalf("%d notes counted under way, want %d", len(n.noteCalls), maxNoteCalls)
	}
}
