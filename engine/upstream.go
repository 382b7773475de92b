package engine

import (
	"context"

	"github.com/google/uuid"
)

// Upstream is the pushd cluster a PUSH RELAY carries version events from.
// When a node is given one, its devices' channels are registered upstream
// as well, and the endpoints it hands out are the upstream's: app servers
// keep PUTting to the public cluster, and the relay stores and delivers
// what the upstream sends it.
//
// Register and Unregister are called from worker goroutines or the waiting
// lane's (see waitLane), one at a time per UAID; they may block on the network (bounded by ctx) and must be safe
// for concurrent use.
type Upstream interface {
	// Register registers (uaid, chid) upstream and returns the upstream
	// endpoint.
	Register(ctx context.Context, uaid, chid uuid.UUID) (endpoint string, err error)
	// Unregister drops (uaid, chid) upstream.
	Unregister(ctx context.Context, uaid, chid uuid.UUID) error
}

// UAIDs calls fn for every UAID the node's store holds (a relay names them
// all to its upstream), until fn returns false.
func (n *Node) UAIDs(fn func(uuid.UUID) bool) error {
	return n.store.EachUAID(fn)
}
