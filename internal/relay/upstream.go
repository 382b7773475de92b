// Package relay is the PUSH RELAY's upstream side: a multi-UAID client
// (client.Multi) to a pushd cluster that carries every UAID registered
// through the relay. Registrations go up it (engine.Upstream); UPDATE
// packets come down it, are made durable in the relay's own node, and only
// then acked upstream, so that from the ack on, delivery is the relay's
// job, even across a restart.
//
// Concurrency: Upstream's methods are safe for concurrent use.
package relay

import (
	"log/slog"

	"github.com/google/uuid"

	"github.com/pushd/pushd/client"
	"github.com/pushd/pushd/engine"
	"github.com/pushd/pushd/shardstore"
)

// Upstream is the relay's connection to its upstream cluster. It
// implements engine.Upstream: its Register and Unregister are
// client.Multi's.
type Upstream struct {
	*client.Multi
	node *engine.Node
	log  *slog.Logger
}

var _ engine.Upstream = (*Upstream)(nil)

// New returns an upstream for url (ws://host:port/). Attach the relay's
// node with SetNode before Run.
func New(url string, log *slog.Logger) *Upstream {
	up := &Upstream{log: log}
	m, err := client.NewMulti(client.MultiConfig{
		URL:      url,
		Logger:   log,
		UAIDs:    up.uaids,
		OnUpdate: up.update,
	})
	if err != nil {
		panic(err) // only an empty URL, a programming error
	}
	up.Multi = m
	return up
}

// SetNode gives the upstream the node that stores and delivers what comes
// down. It must be called before Run.
func (up *Upstream) SetNode(n *engine.Node) { up.node = n }

// uaids names every UAID the relay's store holds.
func (up *Upstream) uaids() ([]uuid.UUID, error) {
	var all []uuid.UUID
	err := up.node.UAIDs(func(u uuid.UUID) bool { all = append(all, u); return true })
	return all, err
}

// update stores a packet's versions in the node (Node.Store: durable, and
// delivered or queued behind the device's own UPDATE in flight) and returns
// the UAIDs whose versions all are durable. A version the store failed
// leaves its UAID unacked; upstream sends it again after its ack timeout.
func (up *Upstream) update(packet map[uuid.UUID]map[uuid.UUID]uint64) (ack []uuid.UUID) {
	for u, chans := range packet {
		durable := true
		for chid, v := range chans {
			st, err := up.node.Store(u, chid, shardstore.Put{Version: v})
			if err != nil || st == engine.PutBusy {
				durable = false
				up.log.Debug("relay: version not stored yet", "uaid", u, "status", st, "err", err)
			}
		}
		if durable {
			ack = append(ack, u)
		}
	}
	return ack
}
