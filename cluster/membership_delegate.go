package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"log/slog"
	"maps"
	"strings"
	"sync"

	"github.com/hashicorp/memberlist"
)

// gossipKeyLabel is hashed before the cluster secret to derive memberlist's
// key, so that the gossip key is not the secret itself (which other parts of
// pushd may use) and differs from any other key derived from it.
const gossipKeyLabel = "pushd cluster gossip key v1\x00"

// deriveGossipKey returns the 32-byte memberlist SecretKey (AES-256) for the
// cluster secret: SHA-256 of gossipKeyLabel followed by secret.
func deriveGossipKey(secret []byte) []byte {
	h := sha256.New()
	h.Write([]byte(gossipKeyLabel))
	h.Write(secret)
	return h.Sum(nil)
}

// delegate gives memberlist this node's metadata. memberlist calls it from
// its own goroutines, concurrently; it only returns a fixed slice.
type delegate struct {
	meta []byte // encoded Meta; never modified, so memberlist may keep it
}

var _ memberlist.Delegate = (*delegate)(nil)

// NodeMeta returns the encoded Meta, which Start checked fits limit.
func (d *delegate) NodeMeta(limit int) []byte {
	if len(d.meta) > limit {
		return nil
	}
	return d.meta
}

// NotifyMsg ignores user messages: pushd sends none over gossip.
func (d *delegate) NotifyMsg([]byte) {}

// GetBroadcasts has nothing to piggyback.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState has no state to push.
func (d *delegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState ignores remote state: there is none.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {}

// eventDelegate keeps the live member set as memberlist's events report
// it, and wakes the reporter goroutine on every change.
//
// memberlist calls it with its node lock held, from its packet and stream
// handlers and from Create and Leave, so it must not block or call back
// into memberlist: it copies the node under its own short-held mutex and
// leaves a token on poke (if one is not already there). The copy is what
// Members reads. memberlist's own Members hands out pointers to nodes it
// later updates under that lock (a dead member's address when a node
// reclaims its name), so reading them is a data race; the *memberlist.Node
// arguments here are read only during the call and not retained.
//
// Lock order: memberlist's node lock -> eventDelegate.mu.
type eventDelegate struct {
	poke chan<- struct{} // 1-buffered

	mu struct {
		sync.Mutex
		live map[string]liveNode // alive or suspect, by name
	}
}

// liveNode is a member as the last event about it left it.
type liveNode struct {
	addr string // gossip host:port
	meta []byte // encoded Meta, not yet checked
}

var _ memberlist.EventDelegate = (*eventDelegate)(nil)

func newEventDelegate(poke chan<- struct{}) *eventDelegate {
	e := &eventDelegate{poke: poke}
	e.mu.live = make(map[string]liveNode)
	return e
}

// NotifyJoin records a member that joined or came back from dead or left.
func (e *eventDelegate) NotifyJoin(n *memberlist.Node) { e.set(n) }

// NotifyUpdate records a member whose metadata changed.
func (e *eventDelegate) NotifyUpdate(n *memberlist.Node) { e.set(n) }

// NotifyLeave forgets a member that left or was declared dead.
func (e *eventDelegate) NotifyLeave(n *memberlist.Node) {
	e.mu.Lock()
	delete(e.mu.live, n.Name)
	e.mu.Unlock()
	e.changed()
}

func (e *eventDelegate) set(n *memberlist.Node) {
	ln := liveNode{addr: n.Address(), meta: bytes.Clone(n.Meta)}
	e.mu.Lock()
	e.mu.live[n.Name] = ln
	e.mu.Unlock()
	e.changed()
}

func (e *eventDelegate) changed() {
	select {
	case e.poke <- struct{}{}:
	default: // a report is already due
	}
}

// snapshot returns a copy of the live set. The meta slices are shared but
// never modified.
func (e *eventDelegate) snapshot() map[string]liveNode {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.mu.live)
}

// logWriter turns memberlist's log lines ("[LEVEL] memberlist: text") into
// debug records on a slog.Logger; memberlist writes each line with one
// Write call, through a log.Logger that serialises them. The level
// memberlist gave the line is kept as the attribute ml_level.
type logWriter struct {
	logger *slog.Logger
}

func (w *logWriter) Write(p []byte) (int, error) {
	ctx := context.Background()
	if !w.logger.Enabled(ctx, slog.LevelDebug) {
		return len(p), nil
	}
	line := strings.TrimRight(string(p), "\r\n")
	level := ""
	if strings.HasPrefix(line, "[") {
		if i := strings.IndexByte(line, ']'); i > 0 {
			level, line = line[1:i], strings.TrimSpace(line[i+1:])
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	w.logger.LogAttrs(ctx, slog.LevelDebug, "memberlist", slog.String("ml_level", level), slog.String("detail", line))
	return len(p), nil
}

// badMetaLog remembers which peers' undecodable metadata has been logged,
// so that each bad value is logged once rather than at every report.
type badMetaLog struct {
	mu   sync.Mutex
	seen map[string][]byte // node name -> bad meta already logged
}

// badMetaLogMax bounds badMetaLog: past it, the memory is cleared and bad
// peers are logged again.
const badMetaLogMax = 1024

func (l *badMetaLog) warn(logger *slog.Logger, name string, meta []byte, err error) {
	l.mu.Lock()
	prev, ok := l.seen[name]
	if ok && bytes.Equal(prev, meta) {
		l.mu.Unlock()
		return
	}
	if l.seen == nil || len(l.seen) >= badMetaLogMax {
		l.seen = make(map[string][]byte)
	}
	l.seen[name] = bytes.Clone(meta)
	l.mu.Unlock()
	logger.Warn("cluster: ignoring member with bad metadata", "member", name, "meta_len", len(meta), "err", err)
}
