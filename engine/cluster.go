package engine

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/pushd/pushd/cluster"
	"github.com/pushd/pushd/shardstore"
)

// This file makes a node a cluster member (PROTOCOL.md 6.3): gossip
// membership, the ring of owners, and the calls between nodes. A
// standalone node is a cluster of one: its ring holds only itself, every
// UAID routes to it, and nothing here runs beyond that ring.

// view is the cluster as this node sees it; immutable once published.
type view struct {
	ring    *cluster.Ring
	members []cluster.Member
	// addrs maps member names to their call addresses.
	addrs map[string]string
}

// ownerOf returns the node that owns u, and whether that is this node.
func (n *Node) ownerOf(u uuid.UUID) (string, bool) {
	owner := n.view.Load().ring.Owner(shardstore.RingHash(u))
	return owner, owner == n.self
}

// replicas is the replication factor in force: min(R, members).
func (n *Node) replicas(v *view) int {
	return min(n.cfg.Replicas, v.ring.Len())
}

// defaultNodeName is the host name and the client listener's port.
func defaultNodeName(wsAddr net.Addr) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "pushd"
	}
	if ta, ok := wsAddr.(*net.TCPAddr); ok {
		return fmt.Sprintf("%s:%d", host, ta.Port)
	}
	return host
}

// clusterTokenKey derives the endpoint token key shared by a cluster's
// nodes from the cluster key, so that any node opens any node's endpoints.
func clusterTokenKey(clusterKey string) string {
	m := hmac.New(sha256.New, []byte(clusterKey))
	m.Write([]byte("pushd endpoint token key v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// startCluster starts the call listener and joins the gossip, and returns
// once the first member list is in force (so that the node never answers
// for UAIDs it does not own). A standalone node only sets its ring.
func (n *Node) startCluster() error {
	n.edges.on = n.cfg.ClusterAddr != ""
	if n.cfg.ClusterAddr == "" {
		n.view.Store(&view{ring: cluster.NewRing([]string{n.self}, 1), addrs: map[string]string{}})
		return nil
	}
	rpcAddr := n.cfg.ClusterRPCAddr
	if rpcAddr == "" {
		host, _, err := net.SplitHostPort(n.cfg.ClusterAddr)
		if err != nil {
			return fmt.Errorf("engine: -cluster-addr: %w", err)
		}
		rpcAddr = net.JoinHostPort(host, "0")
	}
	tr, err := cluster.NewTransport(cluster.TransportConfig{
		Name:    n.self,
		Addr:    rpcAddr,
		Key:     []byte(n.cfg.ClusterKey),
		Handler: n.serveCall,
		Logger:  n.log.With("component", "transport"),
	})
	if err != nil {
		return fmt.Errorf("engine: call listener: %w", err)
	}
	n.tr = tr
	n.view.Store(&view{ring: cluster.NewRing(nil, 1), addrs: map[string]string{}})
	n.viewReady = make(chan struct{})
	ml, err := cluster.Start(cluster.Config{
		Name:     n.self,
		BindAddr: n.cfg.ClusterAddr,
		Join:     n.cfg.Join,
		Key:      []byte(n.cfg.ClusterKey),
		Meta: cluster.Meta{RPCAddr: tr.Addr(), WSAddr: n.WSAddr().String(), HTTPAddr: n.HTTPAddr().String(),
			UAIDTTL: max(n.cfg.UAIDTTL, 0)},
		Logger:   n.log.With("component", "membership"),
		OnChange: n.membersChanged,
	})
	if err != nil {
		_ = tr.Close()
		return fmt.Errorf("engine: join cluster: %w", err)
	}
	n.ml = ml
	select {
	case <-n.viewReady:
		return nil
	case <-time.After(30 * time.Second):
		_ = ml.Shutdown()
		_ = tr.Close()
		return errors.New("engine: no member list from the cluster")
	}
}

// membersChanged puts a new member list in force: it rebuilds the ring,
// fetches the UAIDs this node now holds from the nodes that held them,
// takes over the presence of those it now owns, and pushes what it held to
// the nodes that hold it now. Calls come from the membership's one
// goroutine.
func (n *Node) membersChanged(members []cluster.Member) {
	n.handoffMu.Lock()
	defer n.handoffMu.Unlock()
	n.handingOff.Store(true)
	defer n.handingOff.Store(false)
	names := make([]string, 0, len(members))
	addrs := make(map[string]string, len(members))
	for _, m := range members {
		names = append(names, m.Name)
		addrs[m.Name] = m.Meta.RPCAddr
	}
	if !slices.Contains(names, n.self) {
		// Left: keep the last ring so that handing over uses it.
		return
	}
	n.checkSettings(members)
	old := n.view.Load()
	next := &view{ring: cluster.NewRing(names, n.cfg.Replicas), members: members, addrs: addrs}
	n.metrics.ringChanges.Inc()
	n.log.Info("cluster members changed", "members", len(names), "share", next.ring.Share(n.self))
	if old.ring.Len() == 0 {
		// Joining: the UAIDs this node holds were held by the others
		// meanwhile, and may have changed there.
		old = &view{ring: cluster.NewRing(slices.DeleteFunc(slices.Clone(names), func(s string) bool { return s == n.self }), n.cfg.Replicas), addrs: addrs}
	}
	fetch := n.planFetch(old, next)
	gained := n.gainedPartitions(old, next)
	for p := range gained {
		n.fills[p].Store(&fill{done: make(chan struct{})})
	}
	n.expiry.gain(gained, time.Now())
	n.view.Store(next)
	n.readyOnce.Do(func() { close(n.viewReady) }) // serving may start: gained partitions wait for their fill
	start := time.Now()
	n.fetch(fetch)
	// The records are in: operations go ahead. A PUT that comes before its
	// UAID's presence is taken over is stored (202) and sent when it is.
	for p := range gained {
		close(n.fills[p].Swap(nil).done)
	}
	n.takePresence(next, gained)
	n.releaseLost(next)
	n.announce(old, next)
	handed := n.push(old, next)
	n.log.Info("cluster handoff done", "partitions_fetched", len(fetch), "partitions_handed", len(handed), "took", time.Since(start))
	n.dropLater(handed)
}

// checkSettings warns about members whose settings differ from this
// node's where every member must share them: -uaid-ttl (a node with a
// shorter TTL, or with expiry off, drops or keeps copies the others do
// not expect; a member that does not say predates expiry's seen records).
func (n *Node) checkSettings(members []cluster.Member) {
	mine := max(n.cfg.UAIDTTL, 0).Truncate(time.Second)
	for _, m := range members {
		switch {
		case m.Name == n.self:
		case m.Meta.UAIDTTL < 0 && mine > 0:
			n.log.Warn("cluster member does not report its -uaid-ttl (an earlier release): run every node on this release before turning expiry on",
				"member", m.Name, "uaid_ttl", mine)
		case m.Meta.UAIDTTL >= 0 && m.Meta.UAIDTTL != mine:
			n.log.Warn("cluster member runs with a different -uaid-ttl: give every node the same",
				"member", m.Name, "its_uaid_ttl", m.Meta.UAIDTTL, "uaid_ttl", mine)
		}
	}
}

// dropLater deletes, after the handoff grace, the records of the handed
// partitions this node still does not hold then. The grace lets the new
// holders finish fetching, and a quick return of a member keep its data.
func (n *Node) dropLater(handed []int) {
	if len(handed) == 0 {
		return
	}
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		select {
		case <-n.quit:
			return
		case <-time.After(n.cfg.HandoffGrace):
		}
		// Not while a member list is put in force: a partition gained
		// back must not be dropped after it was fetched.
		n.handoffMu.Lock()
		defer n.handoffMu.Unlock()
		v := n.view.Load()
		var ranges []shardstore.Range
		dropped := 0
		for _, p := range handed {
			if slices.Contains(n.preference(v, p), n.self) {
				continue
			}
			dropped++
			lo, hi := cluster.PartitionRange(p)
			if k := len(ranges) - 1; k >= 0 && ranges[k].Hi+1 == lo {
				ranges[k].Hi = hi
			} else {
				ranges = append(ranges, shardstore.Range{Lo: lo, Hi: hi})
			}
		}
		if len(ranges) == 0 {
			return
		}
		if err := n.store.DropRanges(ranges); err != nil {
			n.log.Error("handoff: dropping handed partitions", "err", err)
			return
		}
		n.metrics.partitionsDropped.Add(uint64(dropped))
		n.log.Info("handoff: dropped partitions held elsewhere", "ranges", len(ranges))
	}()
}

// fill marks a partition this node just came to own while its UAIDs'
// records are still arriving: owner operations on them wait for done.
type fill struct{ done chan struct{} }

// acquire takes u's lock slot for an owner operation (see
// lockTable.acquire), first waiting, within the same deadline, for u's
// partition to be filled if this node is taking it over.
func (n *Node) acquire(u uuid.UUID, idle bool, deadline time.Time) bool {
	return n.filled(u, deadline) && n.locks.acquire(u, idle, deadline)
}

// do carries out op with u's slot held, queued on the slot if it is held
// (see lockTable.do), once u's partition is filled. It reports false, and
// op is not carried out, when the fill outlasted opWait or the slot's
// queue was full (and not must).
func (n *Node) do(u uuid.UUID, must bool, op func()) bool {
	if !n.filled(u, time.Now().Add(opWait)) {
		return false
	}
	if !n.locks.do(u, must, op) {
		n.metrics.queueDrops.Inc()
		return false
	}
	return true
}

// filled waits until deadline at most for u's partition to be filled, if
// this node is taking it over, and reports whether it is.
func (n *Node) filled(u uuid.UUID, deadline time.Time) bool {
	f := n.fills[cluster.PartitionOf(shardstore.RingHash(u))].Load()
	if f == nil {
		return true
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-f.done:
		return true
	case <-t.C:
		n.metrics.fillWaits.Inc()
		return false
	}
}

// preference returns p's preference list in v: the nodes that hold its
// UAIDs, owner first.
func (n *Node) preference(v *view, p int) []string {
	return v.ring.PartitionPreference(p, n.replicas(v))
}

// planFetch returns, for every partition this node holds in next but did
// not in old, the members of old's preference list still alive in next:
// where its records are.
func (n *Node) planFetch(old, next *view) map[int][]string {
	plan := make(map[int][]string)
	for p := range cluster.Partitions {
		if !slices.Contains(n.preference(next, p), n.self) {
			continue
		}
		before := n.preference(old, p)
		if slices.Contains(before, n.self) {
			continue
		}
		var from []string
		for _, m := range before {
			if _, alive := next.addrs[m]; alive {
				from = append(from, m)
			}
		}
		if len(from) > 0 {
			plan[p] = from
		}
	}
	return plan
}

// gainedPartitions returns the partitions this node owns in next and did
// not own in old.
func (n *Node) gainedPartitions(old, next *view) map[int]bool {
	gained := make(map[int]bool)
	for p := range cluster.Partitions {
		if next.ring.OwnerOfPartition(p) == n.self && old.ring.OwnerOfPartition(p) != n.self {
			gained[p] = true
		}
	}
	return gained
}

// retry runs f up to three times, a second apart, until it succeeds or
// peer is no longer a member (gossip has declared it gone since the list
// being put in force): a handoff outlives a peer's brief trouble (records
// are merged, so a repeat is harmless) but does not wait on a dead one.
func (n *Node) retry(peer string, f func() error) error {
	var err error
	for i := range 3 {
		if i > 0 {
			time.Sleep(time.Second)
			if !n.isMember(peer) {
				return fmt.Errorf("%s %w: %w", peer, errPeerLeft, err)
			}
		}
		if err = f(); err == nil {
			return nil
		}
	}
	return err
}

// errPeerLeft marks a retry given up because the peer left the member
// list meanwhile.
var errPeerLeft = errors.New("left the cluster")

// isMember reports whether gossip lists node now.
func (n *Node) isMember(node string) bool {
	if n.ml == nil {
		return false
	}
	for _, m := range n.ml.Members() {
		if m.Name == node {
			return true
		}
	}
	return false
}

// handoffCallTimeout bounds one export or push call of a handoff.
const handoffCallTimeout = 10 * time.Second

// exportPage bounds the bytes of one export or push call.
const exportPage = 4 << 20

// fetch copies the records of the planned partitions from the nodes that
// held them.
func (n *Node) fetch(plan map[int][]string) {
	bySource := make(map[string][]int)
	for p, from := range plan {
		for _, m := range from {
			bySource[m] = append(bySource[m], p)
		}
	}
	for src, parts := range bySource {
		slices.Sort(parts)
		err := n.retry(src, func() error {
			records, err := n.fetchFrom(src, parts)
			n.metrics.handoffRecords.Add(uint64(records))
			return err
		})
		if err != nil {
			n.log.Error("handoff: fetching records", "from", src, "partitions", len(parts), "err", err)
		}
	}
}

// fetchFrom pages the records of parts from src into the store.
func (n *Node) fetchFrom(src string, parts []int) (records int, err error) {
	idx, after := 0, []byte(nil)
	for idx < len(parts) {
		var b wbuf
		b.uvarint(len(parts) - idx)
		for _, p := range parts[idx:] {
			b.u32(uint32(p))
		}
		b.optBytes(after)
		resp, err := n.call(src, mExport, b, handoffCallTimeout)
		if err != nil {
			return records, err
		}
		r := rbuf{b: resp}
		kvs := readKVs(&r)
		done := r.u32()
		after = r.optBytes()
		if err := r.err(); err != nil {
			return records, err
		}
		if err := n.importLocked(kvs, false); err != nil {
			return records, err
		}
		records += len(kvs)
		idx += int(done)
		if done == 0 && after == nil {
			return records, errors.New("export made no progress")
		}
	}
	return records, nil
}

// serveExport answers mExport: records of the named partitions, from the
// first one on and after the given key, up to exportPage bytes. The answer
// says how many partitions it finished and where to go on in the next.
func (n *Node) serveExport(r *rbuf) ([]byte, error) {
	parts := make([]int, r.count(4))
	for i := range parts {
		parts[i] = int(r.u32())
	}
	after := r.optBytes()
	if err := r.err(); err != nil {
		return nil, err
	}
	var kvs []shardstore.KV
	size, done := 0, 0
	for _, p := range parts {
		if p >= cluster.Partitions || p < 0 {
			return nil, errWire
		}
		lo, hi := cluster.PartitionRange(p)
		page, next, err := n.store.Export(lo, hi, after, 0, exportPage-size)
		if err != nil {
			return nil, err
		}
		kvs = append(kvs, page...)
		for _, kv := range page {
			size += len(kv.Key) + len(kv.Value)
		}
		after = next
		if next != nil {
			break
		}
		done++
		if size >= exportPage {
			break
		}
	}
	var out wbuf
	writeKVs(&out, kvs)
	out.u32(uint32(done))
	out.optBytes(after)
	return out, nil
}

func writeKVs(b *wbuf, kvs []shardstore.KV) {
	b.uvarint(len(kvs))
	for _, kv := range kvs {
		b.bytes(kv.Key)
		b.bytes(kv.Value)
	}
}

func readKVs(r *rbuf) []shardstore.KV {
	kvs := make([]shardstore.KV, r.count(2))
	for i := range kvs {
		kvs[i] = shardstore.KV{Key: r.bytes(), Value: r.bytes()}
	}
	return kvs
}

// importLocked merges records from another node under their UAIDs' slots.
// With flush, UAIDs this node owns and whose connection is idle are sent
// what became pending.
func (n *Node) importLocked(kvs []shardstore.KV, flush bool) error {
	if len(kvs) == 0 {
		return nil
	}
	uaids := shardstore.TransferUAIDs(kvs)
	slices.SortFunc(uaids, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	deadline := time.Now().Add(opWait)
	var held []uuid.UUID
	defer func() {
		for _, u := range held {
			n.locks.release(u)
		}
	}()
	for _, u := range uaids {
		if !n.locks.acquire(u, false, deadline) {
			return errors.New("import: UAID busy")
		}
		held = append(held, u)
	}
	if err := n.store.Import(kvs); err != nil {
		return err
	}
	if flush {
		for _, u := range uaids {
			if _, local := n.ownerOf(u); !local {
				continue
			}
			h := n.hub.get(u)
			switch {
			case h.none():
				n.waiters.wake(u)
			case n.locks.markDirty(u):
				// In flight: sent once the ack comes.
			default:
				n.sendPendingLocked(h, u)
			}
		}
	}
	return nil
}

// takePresence learns, from every member, the connections of the UAIDs in
// the partitions this node now owns, and attaches them.
func (n *Node) takePresence(next *view, gained map[int]bool) {
	if len(gained) == 0 {
		return
	}
	var req wbuf
	req.uvarint(len(gained))
	for p := range gained {
		req.u32(uint32(p))
	}
	for _, m := range next.members {
		var conns []edgeConn
		if m.Name == n.self {
			conns = n.edges.in(gained)
		} else {
			resp, err := n.call(m.Name, mPresence, req, callTimeout)
			if err != nil {
				n.log.Warn("handoff: presence", "from", m.Name, "err", err)
				continue
			}
			r := rbuf{b: resp}
			conns = make([]edgeConn, r.count(20))
			for i := range conns {
				conns[i] = edgeConn{uaid: r.uuid(), id: r.u32()}
			}
			if r.err() != nil {
				continue
			}
		}
		for _, ec := range conns {
			if m.Name == n.self {
				// Through the mailbox, behind a hello still being carried
				// out: its answer must precede any version.
				if c := n.edges.get(ec.uaid, ec.id); c != nil {
					c.enqueue(n, job{kind: jobAttach, uaid: ec.uaid})
				}
				continue
			}
			if n.locks.acquire(ec.uaid, false, time.Now().Add(opWait)) {
				n.attachIfFree(remoteHolder(m.Name, ec.id), ec.uaid)
				n.locks.release(ec.uaid)
			}
		}
	}
}

// attachIfFree attaches h as u's connection unless u has one: a hello that
// reached this node since it took u over is newer. Then it sends u's
// pending versions.
// REQUIRES: u's slot held.
func (n *Node) attachIfFree(h holder, u uuid.UUID) {
	if n.hub.get(u).none() {
		n.hub.set(u, h)
		n.flushLocked(h, u)
	}
}

// reattach attaches c, a connection of this node, as the connection of u
// after this node took u over (jobAttach).
func (n *Node) reattach(c *client, u uuid.UUID) {
	if n.edges.get(u, c.id) != c {
		return // the hello it queued behind named another UAID after all
	}
	if _, local := n.ownerOf(u); !local {
		return // moved on again; its owner takes it over from the edges
	}
	if n.acquire(u, false, time.Now().Add(opWait)) {
		n.attachIfFree(localHolder(c), u)
		n.locks.release(u)
	}
}

// announce tells the new owners of UAIDs whose owner changed which of
// their connections this node holds. Their owners also ask (takePresence),
// but a hello this node sent by its old member list may have reached the
// old owner after that.
func (n *Node) announce(old, next *view) {
	moved := make(map[int]bool)
	for p := range cluster.Partitions {
		if o := next.ring.OwnerOfPartition(p); o != n.self && o != old.ring.OwnerOfPartition(p) {
			moved[p] = true
		}
	}
	if len(moved) == 0 {
		return
	}
	byOwner := make(map[string][]edgeConn)
	for _, ec := range n.edges.in(moved) {
		o := next.ring.Owner(shardstore.RingHash(ec.uaid))
		byOwner[o] = append(byOwner[o], ec)
	}
	for owner, conns := range byOwner {
		var b wbuf
		b.uvarint(len(conns))
		for _, ec := range conns {
			b.uuid(ec.uaid)
			b.u32(ec.id)
		}
		if _, err := n.call(owner, mAdopt, b, callTimeout); err != nil {
			n.log.Warn("handoff: announcing connections", "to", owner, "err", err)
		}
	}
}

// serveAdopt answers mAdopt: attach the caller's connections of UAIDs this
// node owns that have none.
func (n *Node) serveAdopt(from string, r *rbuf) ([]byte, error) {
	conns := make([]edgeConn, r.count(20))
	for i := range conns {
		conns[i] = edgeConn{uaid: r.uuid(), id: r.u32()}
	}
	if err := r.err(); err != nil {
		return nil, err
	}
	for _, ec := range conns {
		if _, local := n.ownerOf(ec.uaid); !local {
			continue
		}
		if n.acquire(ec.uaid, false, time.Now().Add(opWait)) {
			n.attachIfFree(remoteHolder(from, ec.id), ec.uaid)
			n.locks.release(ec.uaid)
		}
	}
	return nil, nil
}

// servePresence answers mPresence: the connections this node holds for
// UAIDs in the named partitions.
func (n *Node) servePresence(r *rbuf) ([]byte, error) {
	parts := make(map[int]bool)
	for range r.count(4) {
		parts[int(r.u32())] = true
	}
	if err := r.err(); err != nil {
		return nil, err
	}
	conns := n.edges.in(parts)
	var out wbuf
	out.uvarint(len(conns))
	for _, ec := range conns {
		out.uuid(ec.uaid)
		out.u32(ec.id)
	}
	return out, nil
}

// releaseLost forgets presence and flights of UAIDs this node no longer
// owns (their new owner takes the presence over from the edges) and
// presence on nodes that are gone (their clients reconnect elsewhere).
func (n *Node) releaseLost(next *view) {
	n.hub.each(func(u uuid.UUID) bool {
		h := n.hub.get(u)
		owned := next.ring.Owner(shardstore.RingHash(u)) == n.self
		if owned && (h.r == nil || next.addrs[h.r.node] != "") {
			return true
		}
		if n.locks.acquire(u, false, time.Now().Add(opWait)) {
			if h := n.hub.get(u); !h.none() {
				n.hub.remove(u, h)
			}
			if f := n.locks.flightOf(u); f != nil && (!owned || f.to.is(h)) {
				n.locks.setFlight(u, nil)
			}
			n.locks.release(u)
		}
		return true
	})
}

// push sends the records of every partition this node held in old to the
// nodes that hold it in next and did not in old: writes this node took
// before it learned of the change reach them too. It returns, sorted, the
// partitions this node held in old, does not hold in next, and handed to
// every new holder.
func (n *Node) push(old, next *view) (handed []int) {
	byTarget := make(map[string][]int)
	leaving := make(map[int]bool)
	for p := range cluster.Partitions {
		before := n.preference(old, p)
		if !slices.Contains(before, n.self) {
			continue
		}
		after := n.preference(next, p)
		if !slices.Contains(after, n.self) {
			leaving[p] = true
		}
		for _, m := range after {
			if m != n.self && !slices.Contains(before, m) {
				byTarget[m] = append(byTarget[m], p)
			}
		}
	}
	for target, parts := range byTarget {
		slices.Sort(parts)
		if err := n.retry(target, func() error { return n.pushTo(target, parts) }); err != nil {
			if errors.Is(err, errPeerLeft) {
				// Whole-cluster stops end here: the target is going too,
				// and the next member list decides who holds the range.
				n.log.Warn("handoff: target left before the push", "to", target, "partitions", len(parts), "err", err)
			} else {
				n.log.Error("handoff: pushing records", "to", target, "partitions", len(parts), "err", err)
			}
			for _, p := range parts {
				delete(leaving, p) // keep what may be the only copy
			}
		}
	}
	for p := range leaving {
		handed = append(handed, p)
	}
	slices.Sort(handed)
	return handed
}

// pushTo sends the records of parts to target in pages.
func (n *Node) pushTo(target string, parts []int) error {
	var kvs []shardstore.KV
	size := 0
	send := func() error {
		if len(kvs) == 0 {
			return nil
		}
		var b wbuf
		writeKVs(&b, kvs)
		kvs, size = kvs[:0], 0
		_, err := n.call(target, mReplicate, b, handoffCallTimeout)
		return err
	}
	for _, p := range parts {
		lo, hi := cluster.PartitionRange(p)
		var after []byte
		for {
			page, next, err := n.store.Export(lo, hi, after, 0, exportPage)
			if err != nil {
				return err
			}
			for _, kv := range page {
				kvs = append(kvs, kv)
				size += len(kv.Key) + len(kv.Value)
			}
			if size >= exportPage {
				if err := send(); err != nil {
					return err
				}
			}
			if next == nil {
				break
			}
			after = next
		}
	}
	return send()
}

// replicaTargets returns the nodes besides this one that hold u's records:
// the rest of its preference list.
func (n *Node) replicaTargets(u uuid.UUID) []string {
	v := n.view.Load()
	r := n.replicas(v)
	if r <= 1 {
		return nil
	}
	var buf [8]string
	pref := v.ring.AppendPreference(buf[:0], shardstore.RingHash(u), r)
	return slices.DeleteFunc(pref, func(s string) bool { return s == n.self })
}

// replicate copies the records a write changed (u's channels chids, and
// its meta and seen records with meta) to u's replicas and returns once every one
// has them durably: a version is answered 200/202 only then.
// REQUIRES: u's slot held.
func (n *Node) replicate(u uuid.UUID, chids []uuid.UUID, meta bool) error {
	targets := n.replicaTargets(u)
	if len(targets) == 0 {
		return nil
	}
	kvs, err := n.store.Records(u, chids, meta)
	if err != nil {
		return fmt.Errorf("%w: replicate: %w", ErrStore, err)
	}
	var b wbuf
	writeKVs(&b, kvs)
	return n.callAll(targets, mReplicate, b)
}

// maxNoteCalls bounds the replica notes (see note) under way at once. At
// the 5 s call timeout, a replica that stopped answering holds one per ack
// for that long; beyond the bound notes are not sent.
const maxNoteCalls = 4096

// note makes a call to u's replicas that nobody waits for, and that a
// replica may miss: an ack (a replica that misses it sends the version
// again after a failover, which at-least-once delivery allows), or a
// UAID's last use or drop (a replica that misses them drops its copy of
// an idle UAID itself, after twice the TTL).
// For the same reason it drops the call when maxNoteCalls are under way.
func (n *Node) note(u uuid.UUID, method uint8, req wbuf) {
	targets := n.replicaTargets(u)
	if len(targets) == 0 {
		return
	}
	select {
	case n.noteCalls <- struct{}{}:
	default:
		n.metrics.notesDropped.Inc()
		return
	}
	started := n.goAsync(func() {
		defer func() { <-n.noteCalls }()
		if err := n.callAll(targets, method, req); err != nil {
			n.log.Debug("replica note", "method", methodName(method), "uaid", u, "err", err)
		}
	})
	if !started {
		<-n.noteCalls
	}
}

// replicateAck clears acknowledged versions on u's replicas, without
// waiting (see note).
func (n *Node) replicateAck(u uuid.UUID, acks []shardstore.Ack) {
	if n.replicas(n.view.Load()) <= 1 {
		return
	}
	var b wbuf
	b.uuid(u)
	b.uvarint(len(acks))
	for _, a := range acks {
		b.uuid(a.Channel)
		b.u64(a.Version)
	}
	n.note(u, mReplicaAck, b)
}

// callAll makes the same call to every target at once and returns the
// first error.
func (n *Node) callAll(targets []string, method uint8, req []byte) error {
	errs := make(chan error, len(targets))
	for _, t := range targets {
		go func() {
			_, err := n.call(t, method, req, callTimeout)
			if err != nil {
				err = fmt.Errorf("%s: %w", t, err)
			}
			errs <- err
		}()
	}
	var first error
	for range targets {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		n.metrics.replicationFailures.Inc()
		return fmt.Errorf("%w: replica: %w", ErrStore, first)
	}
	return nil
}

// serveClusterCall carries out the calls between replicas and the handoff
// calls.
func (n *Node) serveClusterCall(from string, method uint8, r *rbuf) ([]byte, error) {
	switch method {
	case mReplicate:
		kvs := readKVs(r)
		if err := r.err(); err != nil {
			return nil, err
		}
		return nil, n.importLocked(kvs, true)
	case mReplicaAck:
		u := r.uuid()
		acks := make([]shardstore.Ack, r.count(24))
		for i := range acks {
			acks[i] = shardstore.Ack{Channel: r.uuid(), Version: r.u64()}
		}
		if err := r.err(); err != nil {
			return nil, err
		}
		if !n.locks.acquire(u, false, time.Now().Add(opWait)) {
			return nil, errors.New("UAID busy")
		}
		defer n.locks.release(u)
		_, err := n.store.Ack(u, acks)
		return nil, err
	case mReplicaDrop:
		u, seen := r.uuid(), int64(r.u64())
		if err := r.err(); err != nil {
			return nil, err
		}
		return nil, n.serveReplicaDrop(u, seen)
	case mReplicaUnregister:
		// Sent by nodes that predate tombstones (which now travel in
		// mReplicate); served so that their unregisters still land
		// during a rolling upgrade.
		u, chid := r.uuid(), r.uuid()
		if err := r.err(); err != nil {
			return nil, err
		}
		if !n.locks.acquire(u, false, time.Now().Add(opWait)) {
			return nil, errors.New("UAID busy")
		}
		defer n.locks.release(u)
		return nil, n.store.Unregister(u, chid)
	case mExport:
		return n.serveExport(r)
	case mPresence:
		return n.servePresence(r)
	case mAdopt:
		return n.serveAdopt(from, r)
	case mStats:
		var out wbuf
		out.u64(uint64(n.nconns.Load()))
		out.u64(uint64(n.hub.n.Load()))
		out.u64(uint64(n.locks.inflight.Load()))
		return out, nil
	}
	return nil, fmt.Errorf("unknown method %d from %s", method, from)
}

// leave hands this node's UAIDs over before it stops: it leaves the
// gossip, waits for the others to route around it, and pushes its records
// to the nodes that hold them without it.
func (n *Node) leave() {
	if n.ml == nil {
		return
	}
	old := n.view.Load()
	if err := n.ml.Leave(2 * time.Second); err != nil {
		n.log.Warn("leaving the cluster", "err", err)
	}
	rest := slices.DeleteFunc(slices.Clone(old.ring.Members()), func(s string) bool { return s == n.self })
	if len(rest) == 0 {
		return
	}
	// Calls already on their way here still land; give them the time the
	// others need to see the leave.
	time.Sleep(cluster.DefaultDebounce + 300*time.Millisecond)
	// From here on, calls that would add state are refused (their callers
	// retry at the new owners), so the records pushed are final.
	n.leaving.Store(true)
	// Owner operations that passed the check before it finish their write
	// and its replication in well under this.
	time.Sleep(200 * time.Millisecond)
	next := &view{ring: cluster.NewRing(rest, n.cfg.Replicas), members: old.members, addrs: old.addrs}
	// After any handoff still running: what it fetched is pushed too.
	n.handoffMu.Lock()
	n.push(old, next)
	n.handoffMu.Unlock()
	n.log.Info("cluster: handed over and left")
}

// goAsync runs f, a call whose answer nobody waits for, on its own
// goroutine, unless the node is stopping its calls (stopCluster); it
// reports whether it started f.
func (n *Node) goAsync(f func()) bool {
	n.asyncMu.RLock()
	defer n.asyncMu.RUnlock()
	if n.asyncDone {
		return false
	}
	n.async.Add(1)
	go func() {
		defer n.async.Done()
		f()
	}()
	return true
}

// stopCluster waits for calls without a waiter, and shuts the gossip and
// the call listener down.
func (n *Node) stopCluster() error {
	n.asyncMu.Lock()
	n.asyncDone = true
	n.asyncMu.Unlock()
	n.async.Wait()
	var errs []error
	if n.ml != nil {
		errs = append(errs, n.ml.Shutdown())
	}
	if n.tr != nil {
		errs = append(errs, n.tr.Close())
	}
	return errors.Join(errs...)
}
